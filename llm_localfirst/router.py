"""The Router: facts -> sensitivity -> policy.decide -> egress guard -> provider -> audit.

This module owns the request lifecycle shared by every face: building the
``Request``, running the detectors (failing closed), deciding, dispatching with
failover along the decision's chain (never from local to cloud for a sensitive
request; only before the first byte reaches the caller), and writing exactly
one audit row per request. It never formats wire errors; faces do that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ._loop import LoopThread
from .audit import AuditStore, AuditWriter, open_store
from .audit.record import Attempt, AuditRecord, new_id, utc_now_iso
from .config import Settings, policy_from_settings
from .errors import (
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    PrivacyViolation,
    RoutingError,
    UpstreamError,
)
from .health import Health, http_probe
from .policy import Assessment, Policy, decide, declared_reasons, load_policy
from .providers import make_provider
from .providers.base import AttemptFailed, ChatResult, EgressTicket, Provider, egress_guard
from .registry import Destination
from .request import Completion, Decision, Request, StreamChunk, Usage
from .sensitivity import scanner_for
from .stream import RoutedStream, chunk_text, exc_decision_id

__all__ = ["RoutedStream", "Router"]

log = logging.getLogger("llm_localfirst")
_SCAN_CACHE_MIN_CHARS = 512
_SCAN_CACHE_SIZE = 8192
T = TypeVar("T")
Listener = Callable[[AuditRecord], None]
ProviderFactory = Callable[[Any], Provider]


class _Outcome:
    """Mutable facts gathered while one request runs, turned into its audit row."""

    __slots__ = ("assessment", "attempts", "completion_chars", "decision", "error", "outcome",
                 "started", "tokens_in", "tokens_out")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.assessment: Assessment | None = None
        self.decision: Decision | None = None
        self.attempts: list[Attempt] = []
        self.error: BaseException | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.completion_chars = 0
        self.outcome = "ok"


class Router:
    """Routes requests between local and cloud destinations by a policy.

    Build one with :meth:`from_env` or :meth:`from_policy`. It is safe to share
    between threads and tasks. Call :meth:`close` (or use it as a context manager)
    to flush the audit log and close pooled connections.

    Args:
        policy: The validated policy.
        settings: Settings (probe TTL, limits, audit location).
        audit: An audit store; by default the one ``LF_AUDIT_URL`` names.
        provider_factory: Builds a provider for a destination (tests inject fakes).
        probe_ttl: Seconds a reachability probe stays fresh (default ``LF_PROBE_TTL``).
        policy_source: Where the policy came from, for ``doctor``.
    """

    def __init__(self, policy: Policy, *, settings: Settings | None = None,
                 audit: AuditStore | None = None,
                 provider_factory: ProviderFactory | None = None,
                 probe_ttl: float | None = None, policy_source: str = "<policy>") -> None:
        self.settings = settings or Settings.load()
        self.policy_source = policy_source
        self._provider_factory = provider_factory or make_provider
        self._audit_store = audit
        self._writer: AuditWriter | None = None
        self._listeners: list[Listener] = []
        self._retired: list[Provider] = []
        self._loop = LoopThread()
        self._probe_ttl = self.settings.probe_ttl if probe_ttl is None else probe_ttl
        self._install(policy)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_env(cls, **overrides: Any) -> Router:
        """Build from ``LF_*`` variables: ``LF_POLICY`` if set, else the default policy.

        Raises:
            ConfigError: invalid settings.
            PolicyError: invalid policy.
        """
        settings = Settings.load(**overrides)
        if settings.policy is not None:
            return cls(load_policy(settings.policy), settings=settings,
                       policy_source=str(settings.policy))
        return cls(policy_from_settings(settings), settings=settings,
                   policy_source="<LF_* settings>")

    @classmethod
    def from_policy(cls, path: str | Path, **kwargs: Any) -> Router:
        """Build from a YAML policy file.

        Raises:
            PolicyError: the file is missing or invalid.
        """
        return cls(load_policy(path), policy_source=str(path), **kwargs)

    def _install(self, policy: Policy) -> None:
        # Providers are built on first use, so deciding never imports a provider SDK.
        providers: dict[str, Provider] = {}

        async def probe(dest: Destination) -> tuple[bool, str]:
            if self._provider_factory is make_provider:
                return await http_probe(dest)
            try:  # injected providers (tests, custom back ends) probe themselves
                return await self._provider(dest.name, providers, policy).probe()
            except AttemptFailed as failure:
                return False, str(failure)

        self.policy = policy
        self.providers = providers
        self.health = Health(policy.destinations, probe, trusted=policy.trusted,
                             ttl=self._probe_ttl)
        self._scanner = scanner_for(policy.sensitivity.detectors)
        self._scan_cache: dict[bytes, frozenset[str]] = {}

    def _provider(self, name: str, providers: dict[str, Provider] | None = None,
                  policy: Policy | None = None) -> Provider:
        """The provider of one destination, built on first use."""
        providers = self.providers if providers is None else providers
        provider = providers.get(name)
        if provider is None:
            dest = (policy or self.policy).destinations[name]
            try:
                provider = self._provider_factory(dest)
            except ImportError as exc:  # a missing extra: this destination cannot be used
                raise AttemptFailed("error", f"{name}: {exc}", retryable=True) from None
            providers[name] = provider
        return provider

    def warm(self) -> None:
        """Build every destination's provider now (importing its SDK).

        Servers call this at start-up so the first request to, say, an Anthropic
        destination does not stall the event loop for the SDK's import. A
        destination whose extra is missing is logged and left for request time,
        where it fails over like any other failed attempt.
        """
        for name in self.policy.destinations:
            try:
                self._provider(name)
            except AttemptFailed as failure:
                log.warning("destination %s is unusable: %s", name, failure)

    def reload(self, policy: Policy, *, source: str | None = None) -> None:
        """Swap in a new, already-validated policy. In-flight requests keep the old one."""
        old_policy, old_providers = self.policy, self.providers
        self._install(policy)
        if source:
            self.policy_source = source
        for name, provider in old_providers.items():
            if policy.destinations.get(name) == old_policy.destinations[name]:
                self.providers[name] = provider  # unchanged destination: keep its pool
            else:
                # Requests in flight may still use it; it is closed with the router.
                self._retired.append(provider)

    @property
    def audit(self) -> AuditStore:
        """The audit store (opened on first use, never at construction)."""
        if self._audit_store is None:
            self._audit_store = open_store(self.settings.audit_url,
                                           data_dir=self.settings.resolved_data_dir)
        return self._audit_store

    @property
    def writer(self) -> AuditWriter:
        """The batching audit writer (started on first use)."""
        if self._writer is None:
            self._writer = AuditWriter(self.audit)
        return self._writer

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(record)`` for every audit row (metrics, tests). Must be fast."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ facts + decide

    def build_request(self, prompt: str | None = None, **kwargs: Any) -> Request:
        """Validate loose arguments into a Request (limits from settings).

        Raises:
            InvalidRequest: bad or oversized input.
        """
        kwargs.setdefault("max_input_chars", self.settings.max_input_chars)
        return Request.build(prompt, **kwargs)

    def assess(self, request: Request) -> Assessment:
        """Run the detectors over every message. A failing detector makes the request sensitive."""
        try:
            fired: frozenset[str] = frozenset()
            for text in request.texts():
                if text:
                    fired |= self._scan(text)
        except Exception as exc:  # fail closed: a broken detector means sensitive
            log.warning("detector failed (%s); treating the request as sensitive",
                        type(exc).__name__)
            return Assessment(reasons=("detector_error",))
        return Assessment(reasons=tuple(f"detector:{d}" for d in sorted(fired)), detectors=fired)

    def _scan(self, text: str) -> frozenset[str]:
        """Scan one message, remembering long ones by digest.

        Chat clients resend the whole history every turn; a digest costs ~1/20 of a
        scan, and only the digest is kept, never the text.
        """
        if len(text) < _SCAN_CACHE_MIN_CHARS:
            return self._scanner.scan(text)
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        cache = self._scan_cache
        found = cache.get(key)
        if found is None:
            found = self._scanner.scan(text)
            if len(cache) >= _SCAN_CACHE_SIZE:
                cache.clear()
            cache[key] = found
        return found

    def decide_request(self, request: Request, *,
                       assessment: Assessment | None = None) -> Decision:
        """Decide for a built request with the cached health (no probing, no I/O)."""
        if assessment is None:
            assessment = self.assess(request)
        return decide(self.policy, request, assessment=assessment, is_up=self.health.is_up)

    async def adecide_request(self, request: Request, *,
                              assessment: Assessment | None = None) -> Decision:
        """Refresh stale probes of the candidates, then decide.

        Raises:
            ModelNotAllowed, PrivacyViolation, LocalUnavailable: see :func:`policy.decide`.
        """
        if self.health.stale():
            await self.health.refresh()
        return self.decide_request(request, assessment=assessment)

    def decide(self, prompt: str | None = None, **kwargs: Any) -> Decision:
        """Where would this request run? Probes local reachability (cached); calls no model.

        Accepts the same arguments as :meth:`complete`; the prompt is optional.

        Raises:
            ModelNotAllowed: ``model`` is not allowlisted.
            PrivacyViolation: sensitive request with an explicit cloud model.
            LocalUnavailable: sensitive request and no local destination is up.
        """
        kwargs.setdefault("allow_empty", True)
        return self.decide_for(self.build_request(prompt, **kwargs))

    def decide_for(self, request: Request) -> Decision:
        """Sync :meth:`adecide_request`: refresh stale probes, then decide.

        Raises:
            ModelNotAllowed, PrivacyViolation, LocalUnavailable: see :func:`policy.decide`.
        """
        if self.health.stale():
            self._loop.run(self.health.refresh(), timeout=30)
        return self.decide_request(request)

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the router's private loop (where its pooled clients live)."""
        return self._loop.run(coro, timeout)

    async def adecide(self, prompt: str | None = None, **kwargs: Any) -> Decision:
        """Async :meth:`decide`."""
        kwargs.setdefault("allow_empty", True)
        return await self.adecide_request(self.build_request(prompt, **kwargs))

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: Request, decision: Decision, out: _Outcome,
                        op: Callable[[Provider, EgressTicket], Awaitable[T]]) -> tuple[T, str]:
        """Try the decision's chain in order; fail over on retryable failures.

        The policy and providers are read once, before the first await, so a reload
        while the request is in flight cannot change where it may go. On success
        ``out.decision`` names the destination that answered.
        """
        policy, providers = self.policy, self.providers
        last: AttemptFailed | None = None
        for name in decision.chain:
            dest = policy.destinations[name]
            ticket = egress_guard(dest, sensitive=decision.sensitive)
            started = time.perf_counter()
            try:
                result = await op(self._provider(name, providers, policy), ticket)
            except AttemptFailed as failure:
                ms = (time.perf_counter() - started) * 1000
                out.attempts.append(Attempt(name, failure.outcome, round(ms, 3), failure.status,
                                            str(failure)[:300]))
                self.health.record_failure(name, hard=failure.outcome == "connect_error")
                last = failure
                if not failure.retryable:
                    break
                continue
            except asyncio.CancelledError:
                ms = (time.perf_counter() - started) * 1000
                out.attempts.append(Attempt(name, "cancelled", round(ms, 3)))
                raise
            ms = (time.perf_counter() - started) * 1000
            out.attempts.append(Attempt(name, "ok", round(ms, 3)))
            self.health.record_success(name)
            out.decision = self._answered(decision, name, policy)
            return result, name
        raise self._exhausted(decision, last)

    def _exhausted(self, decision: Decision, last: AttemptFailed | None) -> RoutingError:
        tried = ", ".join(decision.chain)
        if last is not None and not last.retryable:
            err: RoutingError = UpstreamError(str(last), destination=None, status=last.status,
                                              attempts=len(decision.chain))
        elif decision.sensitive:
            err = LocalUnavailable(
                f"request is sensitive and no local destination answered ({tried}); "
                "failing closed, nothing was sent to the cloud", candidates=decision.chain,
                rule=decision.rule, sensitive_reasons=decision.sensitive_reasons)
        else:
            err = UpstreamError(f"every destination failed ({tried}): {last}",
                                status=last.status if last else None,
                                attempts=len(decision.chain))
        if isinstance(err, UpstreamError) and last is not None:
            err.body = last.body
        return err

    @staticmethod
    def _answered(decision: Decision, name: str, policy: Policy) -> Decision:
        if name == decision.destination:
            return decision
        dest = policy.destinations[name]
        return dataclasses.replace(
            decision, destination=name, model=dest.model, fell_back=True,
            target="local" if dest.is_local else "cloud",
            reason=f"{decision.reason}; {decision.destination!r} failed, answered by {name!r}")

    def chat_body(self, request: Request) -> dict[str, Any]:
        """The OpenAI chat body for a request (messages + sampling + pass-through fields)."""
        body: dict[str, Any] = dict(request.extra)
        body["messages"] = [dict(m) for m in request.messages]
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    async def route_call(self, request: Request,
                         op: Callable[[Provider, EgressTicket], Awaitable[T]], *,
                         endpoint: str, decision_id: str | None = None,
                         ) -> tuple[T, Decision, str]:
        """Decide, dispatch ``op`` with failover, audit. The core every face uses.

        Returns:
            ``(result, decision, audit_id)``; the decision names the destination that answered.

        Raises:
            LocalFirstError: refusals and failures (audited before raising).
        """
        out = _Outcome()
        audit_id = decision_id or new_id()
        try:
            out.assessment = self.assess(request)
            decision = await self.adecide_request(request, assessment=out.assessment)
            out.decision = decision
            result, _ = await self._dispatch(request, decision, out, op)
            if isinstance(result, ChatResult):
                out.tokens_in, out.tokens_out = result.input_tokens, result.output_tokens
                out.completion_chars = len(result.text)
            return result, out.decision, audit_id
        except asyncio.CancelledError as exc:
            out.outcome, out.error = "cancelled", exc
            raise
        except LocalFirstError as exc:
            exc_decision_id(exc, audit_id)
            out.outcome = "refused" if isinstance(exc, (PrivacyViolation, LocalUnavailable)) \
                or not isinstance(exc, RoutingError) else "error"
            out.error = exc
            raise
        except Exception as exc:
            out.outcome, out.error = "error", exc
            raise
        finally:
            self.record(request, out, endpoint=endpoint, audit_id=audit_id)

    async def acomplete_request(self, request: Request) -> Completion:
        """Complete a built request (chat endpoint)."""
        body = self.chat_body(request)

        async def op(provider: Provider, ticket: EgressTicket) -> ChatResult:
            return await provider.chat(ticket, body)

        result, decision, audit_id = await self.route_call(request, op, endpoint="complete")
        tokens_in = result.input_tokens or request.estimated_tokens
        return Completion(text=result.text, decision=decision,
                          usage=Usage(tokens_in, result.output_tokens), audit_id=audit_id,
                          finish_reason=result.finish_reason, raw=result.body)

    async def acomplete(self, prompt: str | None = None, *, face: str = "python",
                        **kwargs: Any) -> Completion:
        """Run a completion on the destination the policy picks.

        Args:
            prompt: The instruction.
            face: Which face is calling (audit).
            **kwargs: ``source``, ``system``, ``messages``, ``kind``, ``sensitive``,
                ``model``, ``tags``, ``headers``, ``metadata``, ``ab_key``,
                ``max_tokens``, ``temperature``.

        Raises:
            InvalidRequest: bad input.
            ModelNotAllowed: ``model`` is not allowlisted.
            PrivacyViolation: sensitive request with an explicit cloud model.
            LocalUnavailable: sensitive request and no local destination answered.
            UpstreamError: every candidate failed.
        """
        request = self._build_audited(prompt, face=face, endpoint="complete", **kwargs)
        return await self.acomplete_request(request)

    def complete(self, prompt: str | None = None, *, face: str = "python",
                 **kwargs: Any) -> Completion:
        """Synchronous :meth:`acomplete` (runs on the router's private loop thread)."""
        return self._loop.run(self.acomplete(prompt, face=face, **kwargs))

    def _build_audited(self, prompt: str | None, *, face: str, endpoint: str,
                       **kwargs: Any) -> Request:
        """Build a Request; an invalid one is still audited before the error propagates."""
        try:
            return self.build_request(prompt, face=face, **kwargs)
        except InvalidRequest as exc:
            self.record_rejected(face=face, endpoint=endpoint, error=exc,
                                 kind=str(kwargs.get("kind", "auto")),
                                 model=str(kwargs.get("model") or "auto"))
            raise

    # ------------------------------------------------------------------ streaming

    async def open_stream(self, request: Request, *, endpoint: str = "stream") -> RoutedStream:
        """Decide and connect, failing over until the first chunk arrives.

        Raises:
            LocalFirstError: before any byte reaches the caller (audited).
        """
        body = self.chat_body(request)
        first: list[Mapping[str, Any]] = []
        iterators: dict[str, AsyncIterator[Mapping[str, Any]]] = {}

        async def op(provider: Provider, ticket: EgressTicket) -> AsyncIterator[Mapping[str, Any]]:
            iterator = provider.stream_chat(ticket, body).__aiter__()
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                chunk = {}
            first.append(chunk)
            iterators[ticket.destination] = iterator
            return iterator

        out = _Outcome()
        audit_id = new_id()
        try:
            out.assessment = self.assess(request)
            decision = await self.adecide_request(request, assessment=out.assessment)
            out.decision = decision
            iterator, _ = await self._dispatch(request, decision, out, op)
        except BaseException as exc:
            out.outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else (
                "refused" if isinstance(exc, (PrivacyViolation, LocalUnavailable))
                or (isinstance(exc, LocalFirstError) and not isinstance(exc, RoutingError))
                else "error")
            out.error = exc
            if isinstance(exc, LocalFirstError):
                exc_decision_id(exc, audit_id)
            self.record(request, out, endpoint=endpoint, audit_id=audit_id)
            raise
        return RoutedStream(self, request, out, audit_id, endpoint, iterator, first[-1])

    async def astream(self, prompt: str | None = None, *, face: str = "python",
                      **kwargs: Any) -> AsyncIterator[StreamChunk]:
        """Stream a completion as text chunks (same arguments as :meth:`acomplete`).

        Raises:
            LocalFirstError: before the first chunk (refusal, fail-closed, all failed);
                ``UpstreamError`` if the destination fails mid-stream.
        """
        request = self._build_audited(prompt, face=face, endpoint="stream", **kwargs)
        stream = await self.open_stream(request)
        async with stream:
            async for chunk in stream:
                text, finish = chunk_text(chunk)
                if text or finish:
                    yield StreamChunk(text, finish, chunk)

    # ------------------------------------------------------------------ audit

    def record(self, request: Request, out: _Outcome, *, endpoint: str, audit_id: str) -> None:
        """Write the one audit row for a request (non-blocking)."""
        d = out.decision
        err = out.error
        if d is not None:
            reasons = d.sensitive_reasons
        else:
            reasons = tuple(dict.fromkeys([
                *declared_reasons(self.policy, request),
                *(out.assessment.reasons if out.assessment else ()),
                *getattr(err, "sensitive_reasons", ())]))
        record = AuditRecord(
            id=audit_id, ts=utc_now_iso(), face=request.face, endpoint=endpoint,
            outcome=out.outcome, kind=request.kind.value, request_model=request.model,
            sensitive=bool(reasons) or request.sensitive, sensitive_reasons=reasons,
            rule=d.rule if d else getattr(err, "rule", None), arm=d.arm if d else None,
            destination=d.destination if d else None, locality=d.target if d else None,
            model=d.model if d else None,
            fell_back=d.fell_back if d else False,
            attempts=tuple(out.attempts), error_class=type(err).__name__ if err else None,
            error_message=str(err)[:500] if err and isinstance(err, LocalFirstError) else None,
            tokens_in=out.tokens_in, tokens_out=out.tokens_out,
            latency_ms=round((time.perf_counter() - out.started) * 1000, 3),
            prompt_sha256=request.prompt_sha256(), prompt_chars=request.input_chars,
            completion_chars=out.completion_chars, tags=tuple(sorted(request.tags)),
            metadata={str(k): str(v) for k, v in request.metadata.items()})
        self._emit(record)

    def record_decision(self, request: Request, decision: Decision | None,
                        error: LocalFirstError | None = None, *, endpoint: str = "route") -> str:
        """Audit a dry-run decision (CLI ``route``, MCP ``route``). Returns the audit id."""
        out = _Outcome()
        out.decision = decision
        out.outcome = "dry_run" if error is None else "refused"
        out.error = error
        audit_id = new_id()
        if error is not None:
            exc_decision_id(error, audit_id)
        self.record(request, out, endpoint=endpoint, audit_id=audit_id)
        return audit_id

    def record_rejected(self, *, face: str, endpoint: str, error: BaseException,
                        kind: str = "auto", model: str = "auto") -> str:
        """Audit a request rejected before it could be built (bad input). Returns the audit id."""
        audit_id = new_id()
        if isinstance(error, LocalFirstError):
            exc_decision_id(error, audit_id)
        self._emit(AuditRecord(
            id=audit_id, ts=utc_now_iso(), face=face, endpoint=endpoint, outcome="error",
            kind=kind if kind in ("bulk", "reason", "auto") else "auto",
            request_model=model[:200], sensitive=False, sensitive_reasons=(), rule=None,
            arm=None, destination=None, locality=None, model=None, fell_back=False, attempts=(),
            error_class=type(error).__name__, error_message=str(error)[:500], tokens_in=None,
            tokens_out=None, latency_ms=0.0, prompt_sha256=None, prompt_chars=0,
            completion_chars=0, tags=(), metadata={}))
        return audit_id

    def _emit(self, record: AuditRecord) -> None:
        self.writer.submit(record)
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:  # a broken listener must not break routing
                log.exception("audit listener failed")

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close providers (in this loop) and flush the audit log."""
        for provider in [*self.providers.values(), *self._retired]:
            await provider.aclose()
        self._close_writer()

    def close(self) -> None:
        """Flush the audit log, close pooled connections, stop the loop thread."""
        if self._loop.started:
            for provider in [*self.providers.values(), *self._retired]:
                try:
                    self._loop.run(provider.aclose(), timeout=5)
                except (RuntimeError, TimeoutError):
                    log.debug("provider close failed")
            self._loop.stop()
        self._close_writer()

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every audit row submitted so far is durable."""
        if self._writer is not None:
            self._writer.flush(timeout)

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
