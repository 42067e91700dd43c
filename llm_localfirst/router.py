"""The Router: the small public API over the routing core.

This module owns what users call: building a router (:meth:`Router.from_env`,
:meth:`Router.from_policy`), asking where a request would run (:meth:`Router.decide`),
running it (:meth:`Router.complete`, :meth:`Router.acomplete`, :meth:`Router.astream`),
swapping the policy (:meth:`Router.reload`) and shutting down. It holds the state one
policy brings (health, spend) and the audit store.

A request's path (assess, decide, fail over, audit) lives in :mod:`.lifecycle`,
reached as ``router.lifecycle``; the faces (CLI, MCP, proxy, worker) call that, never
build audit rows themselves. This module never formats wire errors and never
imports a provider SDK, web or agent framework.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .audit import AuditStore, open_store
from .audit.budget_store import BudgetStore, budget_store_for
from .budget import Budget, Ledger, Spend
from .config import Settings, policy_from_settings
from .dispatch import ProviderFactory
from .health import Health, missing_credentials
from .lifecycle import Lifecycle, Listener
from .policy import Policy, load_policy
from .providers.base import AttemptFailed, Provider
from .request import Completion, Decision, Kind, Message, Request, StreamChunk
from .stream import RoutedStream, chunk_text

__all__ = ["RoutedStream", "Router"]

log = logging.getLogger("llm_localfirst")


class Router:
    """Routes requests between local and cloud destinations by a policy.

    Build one with :meth:`from_env` or :meth:`from_policy`. It is safe to share
    between threads and tasks. Call :meth:`close` (or use it as a context manager)
    to flush the audit log and close pooled connections.

    Attributes:
        policy: The active policy (swapped by :meth:`reload`).
        settings: The settings it was built with.
        policy_source: Where the policy came from (``doctor``, ``/admin``).
        health: Reachability of each destination (cached probes, circuit breaker).
        spend: Budgets over the shared store (``budget status``).
        budget: The per-process limits of ``LF_MAX_CLOUD_*``, if any.
        ledger: Calls, tokens and cost this process routed (``--usage``).
        lifecycle: What the faces call (preview, reject, call, stream); users need not.

    Args:
        policy: The validated policy.
        settings: Settings (probe TTL, limits, audit location). When omitted, the
            defaults: the constructor reads no environment and no ``.env``
            (:meth:`from_env` does).
        audit: An audit store; by default the one ``settings.audit_url`` names (else
            SQLite in the platform data directory).
        provider_factory: Builds a provider for a destination (tests inject fakes).
        probe_ttl: Seconds a reachability probe stays fresh (default ``settings.probe_ttl``).
        policy_source: Where the policy came from, for ``doctor``.
        classifier: Your own content classifier (see the policy's ``sensitivity.classifier``).
        budget: Per-process cloud limits.
        ledger: A ledger to account into (default: a new one).
        budget_store: Where shared budgets are kept (default: next to the audit store).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        settings: Settings | None = None,
        audit: AuditStore | None = None,
        provider_factory: ProviderFactory | None = None,
        probe_ttl: float | None = None,
        policy_source: str = "<policy>",
        classifier: Any = None,
        budget: Budget | None = None,
        ledger: Ledger | None = None,
        budget_store: BudgetStore | None = None,
    ) -> None:
        # The library constructor reads no environment and no .env: from_env() does.
        self.settings = settings or Settings()
        self.policy_source = policy_source
        self.budget = budget
        self.ledger = ledger or Ledger()
        self._budget_store = budget_store
        self._audit_store = audit
        self._audit_lock = threading.Lock()
        self._probe_ttl = self.settings.probe_ttl if probe_ttl is None else probe_ttl
        self.lifecycle = Lifecycle(self, provider_factory=provider_factory, classifier=classifier)
        self._install(policy)

    @classmethod
    def from_env(cls, **overrides: Any) -> Router:
        """Build from ``LF_*`` variables: ``LF_POLICY`` if set, else the default policy.

        Args:
            **overrides: Settings fields that win over the environment
                (``Settings.load(**overrides)``).

        Raises:
            ConfigError: invalid settings.
            PolicyError: invalid policy.
        """
        settings = Settings.load(**overrides)
        # 0.2.0's names: LF_PRICES over the policy's prices; LF_MAX_CLOUD_* as a
        # per-process budget for the life of the process (period "total").
        prices = settings.price_table()
        limits = Budget(
            max_cloud_calls=settings.max_cloud_calls,
            max_cloud_tokens=settings.max_cloud_tokens,
            max_cloud_cost=settings.max_cloud_cost,
        )
        budget = None if limits.is_empty else limits
        if settings.policy is not None:
            return cls(
                load_policy(settings.policy, prices=prices),
                settings=settings,
                policy_source=str(settings.policy),
                budget=budget,
            )
        return cls(
            policy_from_settings(settings),
            settings=settings,
            policy_source="<LF_* settings>",
            budget=budget,
        )

    @classmethod
    def from_policy(
        cls,
        path: str | Path,
        *,
        settings: Settings | None = None,
        audit: AuditStore | None = None,
        provider_factory: ProviderFactory | None = None,
        probe_ttl: float | None = None,
        classifier: Any = None,
        budget: Budget | None = None,
        ledger: Ledger | None = None,
        budget_store: BudgetStore | None = None,
    ) -> Router:
        """Build from a YAML policy file (other arguments as the constructor's).

        Reads no environment: pass ``settings=Settings.load()`` to apply ``LF_*``.

        Raises:
            PolicyError: the file is missing or invalid.
        """
        return cls(
            load_policy(path),
            settings=settings,
            audit=audit,
            provider_factory=provider_factory,
            probe_ttl=probe_ttl,
            policy_source=str(path),
            classifier=classifier,
            budget=budget,
            ledger=ledger,
            budget_store=budget_store,
        )

    def _install(self, policy: Policy) -> dict[str, Provider]:
        """Install ``policy``; returns the previous policy's providers (to retire).

        Everything is built before anything is swapped: a policy whose classifier
        or budgets cannot be built raises and leaves the previous one active.
        """
        # Providers are built on first use, so deciding never imports a provider SDK.
        providers: dict[str, Provider] = {}
        health = Health(
            policy.destinations,
            self.lifecycle.dispatcher.prober(policy, providers),
            trusted=policy.trusted,
            ttl=self._probe_ttl,
            credentials=missing_credentials,
        )
        assessor = self.lifecycle.assessor_for(policy, health)
        spend = Spend(
            policy, ledger=self.ledger, budget=self.budget, store_factory=self._open_budget_store
        )
        old_providers = self.lifecycle.install(assessor, providers)
        self.policy, self.health, self.spend = policy, health, spend
        return old_providers

    def _open_budget_store(self) -> BudgetStore:
        if self._budget_store is None:
            self._budget_store = budget_store_for(self.audit)
        return self._budget_store

    @property
    def audit(self) -> AuditStore:
        """The audit store, for queries (opened on first use, never at construction)."""
        store = self._audit_store
        if store is None:
            with self._audit_lock:  # two threads' first use must open one store
                if self._audit_store is None:
                    self._audit_store = open_store(
                        self.settings.audit_url, data_dir=self.settings.resolved_data_dir
                    )
                store = self._audit_store
        return store

    def reload(self, policy: Policy, *, source: str | None = None) -> None:
        """Swap in a new, already-validated policy. In-flight requests keep the old one.

        Unchanged destinations keep their connection pools; the others are closed
        once their last request ends.
        """
        old_policy, old_spend = self.policy, self.spend
        old_providers = self._install(policy)
        old_spend.close()  # its idle leases back to the store; calls in flight settle there
        if source:
            self.policy_source = source
        self.lifecycle.dispatcher.retire(old_policy, old_providers)

    def warm(self) -> None:
        """Build every destination's provider now (importing its SDK).

        Servers call this at start-up so the first request to, say, an Anthropic
        destination does not stall the event loop for the SDK's import. A
        destination whose extra is missing is logged and left for request time,
        where it fails over like any other failed attempt.
        """
        for name in self.policy.destinations:
            try:
                self.lifecycle.dispatcher.provider(name)
            except AttemptFailed as failure:
                log.warning("destination %s is unusable: %s", name, failure)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(record)`` for every audit row (metrics, tests). Must be fast."""
        self.lifecycle.add_listener(listener)

    # ------------------------------------------------------------------ the user API

    def decide(
        self,
        prompt: str | None = None,
        *,
        source: str | None = None,
        system: str | None = None,
        messages: Sequence[Message] | None = None,
        kind: Kind | str = Kind.AUTO,
        model: str | None = None,
        sensitive: bool = False,
        tags: Sequence[str] | frozenset[str] = (),
        headers: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        ab_key: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
        session: str | None = None,
        local_only: bool | Sequence[str] = False,
        face: str = "python",
    ) -> Decision:
        """Where would this request run? Probes local reachability (cached); calls no model.

        Takes the arguments of :meth:`complete`; the prompt is optional. Writes no
        audit row.

        Raises:
            InvalidRequest: bad input.
            ModelNotAllowed: ``model`` is not allowlisted.
            PrivacyViolation: sensitive request with an explicit cloud model.
            LocalUnavailable: sensitive request and no local destination is up.
        """
        request = Request.build(
            prompt,
            source=source,
            system=system,
            messages=messages,
            kind=kind,
            model=model,
            sensitive=sensitive,
            tags=tags,
            headers=headers,
            metadata=metadata,
            ab_key=ab_key,
            face=face,
            max_tokens=max_tokens,
            temperature=temperature,
            extra=extra,
            session=session,
            local_only=local_only,
            allow_empty=True,
            max_input_chars=self.settings.max_input_chars,
        )
        return self.lifecycle.assessor.decide(request)

    def complete(
        self,
        prompt: str | None = None,
        *,
        source: str | None = None,
        system: str | None = None,
        messages: Sequence[Message] | None = None,
        kind: Kind | str = Kind.AUTO,
        model: str | None = None,
        sensitive: bool = False,
        tags: Sequence[str] | frozenset[str] = (),
        headers: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        ab_key: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
        session: str | None = None,
        local_only: bool | Sequence[str] = False,
        face: str = "python",
    ) -> Completion:
        """Synchronous :meth:`acomplete` (runs on the router's private loop thread)."""
        request = self.lifecycle.build(
            prompt,
            face=face,
            endpoint="complete",
            source=source,
            system=system,
            messages=messages,
            kind=kind,
            model=model,
            sensitive=sensitive,
            tags=tags,
            headers=headers,
            metadata=metadata,
            ab_key=ab_key,
            max_tokens=max_tokens,
            temperature=temperature,
            extra=extra,
            session=session,
            local_only=local_only,
        )
        return self.lifecycle.run_sync(self.lifecycle.complete(request))

    async def acomplete(
        self,
        prompt: str | None = None,
        *,
        source: str | None = None,
        system: str | None = None,
        messages: Sequence[Message] | None = None,
        kind: Kind | str = Kind.AUTO,
        model: str | None = None,
        sensitive: bool = False,
        tags: Sequence[str] | frozenset[str] = (),
        headers: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        ab_key: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
        session: str | None = None,
        local_only: bool | Sequence[str] = False,
        face: str = "python",
    ) -> Completion:
        """Run a completion on the destination the policy picks.

        Args:
            prompt: The instruction.
            source: Text to work on, appended to the prompt as a delimited block.
            system: A system message.
            messages: A chat history (OpenAI message dicts), before the prompt.
            kind: ``bulk``, ``reason`` or ``auto``.
            model: An allowlisted destination name, or ``auto`` / ``None``.
            sensitive: Declare the request sensitive (it stays local).
            tags: Tags the policy rules can match (and the audit row keeps).
            headers: Request headers the policy rules can match.
            metadata: Kept in the audit row (keys starting ``lf.`` are the router's).
            ab_key: Sticky key for weighted arms.
            max_tokens: Output limit.
            temperature: Sampling temperature.
            extra: Pass-through body fields (scanned like the rest).
            session: A conversation id: once sensitive, it stays sensitive for the
                taint TTL.
            local_only: Keep the request on local destinations (``True``) or on the
                named local destinations; adds no sensitivity reason.
            face: Which face is calling (audit).

        Raises:
            InvalidRequest: bad input.
            ModelNotAllowed: ``model`` is not allowlisted.
            PrivacyViolation: sensitive request with an explicit cloud model.
            LocalUnavailable: sensitive request and no local destination answered.
            BudgetExceeded: a spent budget refuses the cloud call.
            UpstreamError: every candidate failed.
        """
        request = self.lifecycle.build(
            prompt,
            face=face,
            endpoint="complete",
            source=source,
            system=system,
            messages=messages,
            kind=kind,
            model=model,
            sensitive=sensitive,
            tags=tags,
            headers=headers,
            metadata=metadata,
            ab_key=ab_key,
            max_tokens=max_tokens,
            temperature=temperature,
            extra=extra,
            session=session,
            local_only=local_only,
        )
        return await self.lifecycle.complete(request)

    async def astream(
        self,
        prompt: str | None = None,
        *,
        source: str | None = None,
        system: str | None = None,
        messages: Sequence[Message] | None = None,
        kind: Kind | str = Kind.AUTO,
        model: str | None = None,
        sensitive: bool = False,
        tags: Sequence[str] | frozenset[str] = (),
        headers: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        ab_key: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
        session: str | None = None,
        local_only: bool | Sequence[str] = False,
        face: str = "python",
    ) -> AsyncIterator[StreamChunk]:
        """Stream a completion as text chunks (the arguments of :meth:`acomplete`).

        Raises:
            LocalFirstError: before the first chunk (refusal, fail-closed, all failed);
                ``UpstreamError`` if the destination fails mid-stream.
        """
        request = self.lifecycle.build(
            prompt,
            face=face,
            endpoint="stream",
            source=source,
            system=system,
            messages=messages,
            kind=kind,
            model=model,
            sensitive=sensitive,
            tags=tags,
            headers=headers,
            metadata=metadata,
            ab_key=ab_key,
            max_tokens=max_tokens,
            temperature=temperature,
            extra=extra,
            session=session,
            local_only=local_only,
        )
        stream = await self.lifecycle.stream(request)
        async with stream:
            async for chunk in stream:
                text, finish = chunk_text(chunk)
                if text or finish:
                    yield StreamChunk(text, finish, chunk)

    # ------------------------------------------------------------------ shutdown

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every audit row submitted so far is durable."""
        self.lifecycle.flush(timeout)

    async def aclose(self) -> None:
        """Close providers (in this loop) and flush the audit log."""
        await self.lifecycle.aclose()

    def close(self) -> None:
        """Flush the audit log, close pooled connections, stop the loop thread."""
        self.lifecycle.close()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
