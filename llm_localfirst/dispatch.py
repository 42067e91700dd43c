"""Dispatch: the pooled provider of each destination, and failover along a chain.

This module owns the :class:`Dispatcher`: it builds each destination's provider on
first use, leases it to the requests using it (a reload retires a changed one and
closes it when its last request ends), and tries a decision's chain in order
behind the egress guard, failing over on retryable failures (never from local to
cloud for a sensitive or local-only request; never after the first byte). It holds
cloud budget while an attempt runs and turns a chain that failed into one typed
error. It never decides, never writes audit rows (it asks the lifecycle for the
intent row) and never formats wire errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ._loop import LoopThread
from .audit.record import Attempt
from .budget import input_token_bound
from .budget_gate import Reservation
from .errors import (
    LocalUnavailable,
    RoutingError,
    UnsupportedEndpoint,
    UpstreamError,
    UpstreamTimeout,
)
from .health import http_probe
from .policy import Policy
from .providers import make_provider
from .providers.base import AttemptFailed, EgressTicket, Provider, egress_guard
from .registry import Destination
from .request import Decision, Request

if TYPE_CHECKING:
    from .lifecycle import Outcome
    from .router import Router

__all__ = ["Dispatcher", "Op", "Probe", "ProviderFactory"]

log = logging.getLogger("llm_localfirst")
T = TypeVar("T")
Op = Callable[[Provider, EgressTicket], Awaitable[T]]
ProviderFactory = Callable[[Any], Provider]
Intent = Callable[[Request, Decision, "Outcome", Destination], Awaitable[None]]
Probe = Callable[[Destination], Awaitable[tuple[bool, str]]]
Release = Callable[[], Awaitable[None]]


class Dispatcher:
    """The router's providers and its failover loop (``router.lifecycle.dispatcher``).

    Args:
        router: The router it serves (its current policy, health and spend).
        provider_factory: Builds a provider for a destination (tests inject fakes).
        loop: The router's private loop thread (where the sync API's pools live).
        intent: Commits an intent row before an attempt (``durability: intent``).
    """

    def __init__(
        self,
        router: Router,
        *,
        provider_factory: ProviderFactory | None,
        loop: LoopThread,
        intent: Intent,
    ) -> None:
        self.router = router
        self._provider_factory = provider_factory or make_provider
        self._loop = loop
        self._intent = intent
        self.providers: dict[str, Provider] = {}  # the current policy's, built on first use
        self._retired: list[Provider] = []
        self._leases: dict[int, int] = {}  # id(provider) -> requests using it now
        self._closing: set[asyncio.Task[None]] = set()

    def prober(self, policy: Policy, providers: dict[str, Provider]) -> Probe:
        """The health probe of ``policy``'s destinations (HTTP, or the injected providers)."""

        async def probe(dest: Destination) -> tuple[bool, str]:
            if self._provider_factory is make_provider:
                return await http_probe(dest, trusted=policy.trusted)
            try:  # injected providers (tests, custom back ends) probe themselves
                return await self.provider(dest.name, providers, policy).probe()
            except AttemptFailed as failure:
                return False, str(failure)

        return probe

    def provider(
        self, name: str, providers: dict[str, Provider] | None = None, policy: Policy | None = None
    ) -> Provider:
        """The provider of one destination, built on first use (importing its SDK).

        Raises:
            AttemptFailed: its extra is not installed (the attempt fails over).
        """
        providers = self.providers if providers is None else providers
        provider = providers.get(name)
        if provider is None:
            dest = (policy or self.router.policy).destinations[name]
            try:
                provider = self._provider_factory(dest)
            except ImportError as exc:  # a missing extra: this destination cannot be used
                raise AttemptFailed("error", f"{name}: {exc}", retryable=True) from None
            providers[name] = provider
        return provider

    def retire(self, old_policy: Policy, old_providers: dict[str, Provider]) -> None:
        """After a reload: keep unchanged destinations' pools, close the others when idle."""
        policy, providers = self.router.policy, self.providers
        for name, provider in old_providers.items():
            if policy.destinations.get(name) == old_policy.destinations[name]:
                providers[name] = provider  # unchanged destination: keep its pool
            elif self._leases.get(id(provider)):
                self._retired.append(provider)  # closed when its last request ends
            else:
                self._retire_now(provider)

    def _retire_now(self, provider: Provider) -> None:
        """Close a provider no request is using: now on this loop, else with the router."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a sync caller: its pools live on the private loop thread
            if self._loop.started:
                self._loop.submit(_close_provider(provider))
            else:
                self._retired.append(provider)
            return
        task = loop.create_task(_close_provider(provider))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def lease(self, provider: Provider) -> None:
        """A request starts using ``provider`` (a retired one stays open until released)."""
        key = id(provider)
        self._leases[key] = self._leases.get(key, 0) + 1

    async def unlease(self, provider: Provider) -> None:
        """A request is done with ``provider``; the last one out closes a retired provider."""
        key = id(provider)
        left = self._leases.get(key, 0) - 1
        if left > 0:
            self._leases[key] = left
            return
        self._leases.pop(key, None)
        if any(p is provider for p in self._retired):
            self._retired = [p for p in self._retired if p is not provider]
            await _close_provider(provider)

    async def run(self, request: Request, decision: Decision, out: Outcome, op: Op[T]) -> T:
        """Try the decision's chain in order; fail over on retryable failures.

        The policy and providers are read once, before the first await, so a reload
        while the request is in flight cannot change where it may go. On success
        ``out.decision`` names the destination that answered.
        """
        router = self.router
        # Read together, before any await: the trusted networks parsed once per policy.
        policy, providers, health = router.policy, self.providers, router.health
        trusted = health.trusted
        last: AttemptFailed | None = None
        unsupported: UnsupportedEndpoint | None = None
        chain = list(decision.chain)  # a spent budget may append the local chain
        for name in chain:
            dest = policy.destinations[name]
            locality = "local" if dest.is_local else "cloud"
            # A local-only request (the worker) is pinned local like a sensitive one.
            ticket = egress_guard(
                dest, sensitive=decision.sensitive or bool(request.local_only), trusted=trusted
            )
            started = time.perf_counter()
            try:
                unconfigured = health.unconfigured.get(name)
                if unconfigured is not None:  # no key: fail before importing its SDK
                    raise AttemptFailed("not_configured", f"{name}: {unconfigured}")
                if (
                    not dest.is_local
                    and router.spend.active
                    and await self._hold_budget(name, request, out, chain)
                ):
                    continue  # budget spent, on_exceeded: local
                # durability "intent": committed before anything is sent (AuditError if not).
                await self._intent(request, decision, out, dest)
                provider = self.provider(name, providers, policy)
                self.lease(provider)
                try:
                    result = await op(provider, ticket)
                finally:
                    await self.unlease(provider)
            except UnsupportedEndpoint as exc:  # nothing sent: try the next candidate
                self._release_budget(out)
                ms = (time.perf_counter() - started) * 1000
                out.attempts.append(
                    Attempt(
                        name,
                        "unsupported_endpoint",
                        round(ms, 3),
                        None,
                        exc.message[:300],
                        locality=locality,
                    )
                )
                unsupported = unsupported or exc
                continue
            except AttemptFailed as failure:
                self._release_budget(out)
                ms = (time.perf_counter() - started) * 1000
                out.attempts.append(
                    Attempt(
                        name,
                        failure.outcome,
                        round(ms, 3),
                        failure.status,
                        str(failure)[:300],
                        locality=locality,
                    )
                )
                health.record_failure(name, hard=failure.outcome in ("connect_error", "not_local"))
                last = failure
                if not failure.retryable:
                    break
                continue
            except asyncio.CancelledError:
                ms = (time.perf_counter() - started) * 1000
                out.attempts.append(Attempt(name, "cancelled", round(ms, 3), locality=locality))
                raise
            ms = (time.perf_counter() - started) * 1000
            out.attempts.append(Attempt(name, "ok", round(ms, 3), locality=locality))
            health.record_success(name)
            out.decision = _answered(decision, name, policy)
            if out.budget_local is not None:
                out.decision = dataclasses.replace(
                    out.decision,
                    budget=out.budget_local,
                    reason=f"{out.decision.reason}; budget {out.budget_local!r} is spent: "
                    "sent to the local chain",
                )
            return result
        if unsupported is not None and all(
            a.outcome == "unsupported_endpoint" for a in out.attempts
        ):
            raise unsupported  # no candidate has the endpoint
        raise self._exhausted(
            decision, last, local_only=bool(request.local_only), attempts=tuple(out.attempts)
        )

    async def open_stream(
        self, request: Request, decision: Decision, out: Outcome
    ) -> tuple[AsyncIterator[Mapping[str, Any]], Mapping[str, Any], Release]:
        """Fail over until a destination's stream yields its first chunk.

        Returns:
            ``(iterator, first_chunk, release)``: the provider stays leased (a reload
            must not close it) until ``release()`` is awaited when the stream ends.
        """
        body = request.chat_body()
        first: list[Mapping[str, Any]] = []
        held: list[Provider] = []

        async def op(provider: Provider, ticket: EgressTicket) -> Any:
            iterator = provider.stream_chat(ticket, body).__aiter__()
            # Held until the stream ends: a reload must not close it.
            self.lease(provider)
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                await self.unlease(provider)
                raise AttemptFailed(
                    "error", f"{ticket.destination}: the stream ended before its first chunk"
                ) from None
            except BaseException:
                await self.unlease(provider)
                raise
            first.append(chunk)
            held.append(provider)
            return iterator

        iterator: AsyncIterator[Mapping[str, Any]] = await self.run(request, decision, out, op)
        provider = held[-1]
        return iterator, first[-1], lambda: self.unlease(provider)

    async def _hold_budget(
        self, name: str, request: Request, out: Outcome, chain: list[str]
    ) -> bool:
        """Reserve budget for a cloud attempt; True when a spent budget sends it local.

        Raises:
            BudgetExceeded: a spent budget says ``refuse``.
        """
        if out.budget_local is not None:
            return True
        spend = self.router.spend
        extra = len(json.dumps(request.extra, default=str)) if request.extra else 0
        bound = input_token_bound(request.texts(), len(request.messages), extra)
        got = await spend.reserve(name, request.client_key, bound, request.max_tokens)
        if got is None or isinstance(got, Reservation):
            out.reservation = got
            return False
        out.budget_local = got.name
        chain.extend(n for n in spend.local if n not in chain)
        return True

    def _release_budget(self, out: Outcome) -> None:
        if out.reservation is not None:
            self.router.spend.settle(out.reservation, None)
            out.reservation = None

    def _exhausted(
        self,
        decision: Decision,
        last: AttemptFailed | None,
        *,
        local_only: bool = False,
        attempts: tuple[Attempt, ...] = (),
    ) -> RoutingError:
        tried = ", ".join(a.destination for a in attempts) or ", ".join(decision.chain)
        final = attempts[-1].destination if attempts else None
        error_type = (
            UpstreamTimeout if last is not None and last.outcome == "timeout" else UpstreamError
        )
        if last is not None and not last.retryable:
            err: RoutingError = error_type(
                str(last), destination=final, status=last.status, attempts=attempts
            )
        elif decision.sensitive or local_only:
            err = LocalUnavailable(
                f"request is {'sensitive' if decision.sensitive else 'local-only'} and no local "
                f"destination answered ({tried}); failing closed, nothing was sent to the cloud",
                candidates=decision.chain,
                rule=decision.rule,
                sensitive_reasons=decision.sensitive_reasons,
            )
        else:
            details = "; ".join(a.error or f"{a.destination}: {a.outcome}" for a in attempts)
            err = error_type(
                f"every destination failed ({tried}): {details or last}"
                f"{self._local_hint(attempts)}",
                destination=final,
                status=last.status if last else None,
                attempts=attempts,
            )
            # A missing key fails the same way until someone sets it: no point retrying,
            # unless some other attempt failed in a way that may pass (timeout, 5xx, 429).
            outcomes = {a.outcome for a in attempts}
            err.retryable = "not_configured" not in outcomes or bool(
                outcomes & {"timeout", "http_5xx", "http_429"}
            )
        if isinstance(err, UpstreamError) and last is not None:
            err.body = last.body
        return err

    def _local_hint(self, attempts: tuple[Attempt, ...]) -> str:
        """Say which local models were skipped as down or could not be reached, and what to do."""
        health, local_names = self.router.health, self.router.policy.local_names
        tried = {a.destination for a in attempts}
        skipped = [
            f"{n!r} ({health.status[n].detail})"
            for n in local_names
            if n not in tried and n in health.status and not health.is_up(n)
        ]
        unreachable = [
            repr(a.destination)
            for a in attempts
            if a.outcome == "connect_error" and a.destination in local_names
        ]
        said = []
        if skipped:
            said.append(f"the local model {', '.join(skipped)} was skipped as down")
        if unreachable:
            said.append(f"the local model {', '.join(unreachable)} is not running")
        if not said:
            return ""
        return (
            f"; {' and '.join(said)}: start it (for Ollama: `ollama serve`), "
            "then check with `llm-localfirst doctor`"
        )

    async def aclose(self) -> None:
        """Close every provider, retired ones too (in the running loop)."""
        for provider in [*self.providers.values(), *self._retired]:
            await provider.aclose()

    def close(self) -> None:
        """Close every provider on the private loop (if it ever ran)."""
        if not self._loop.started:
            return
        for provider in [*self.providers.values(), *self._retired]:
            try:
                self._loop.run(provider.aclose(), timeout=5)
            except (RuntimeError, TimeoutError):
                log.debug("provider close failed")


def _answered(decision: Decision, name: str, policy: Policy) -> Decision:
    """The decision as answered: by ``name``, a fallback if it was not the first choice."""
    if name == decision.destination:
        return decision
    dest = policy.destinations[name]
    return dataclasses.replace(
        decision,
        destination=name,
        model=dest.model,
        fell_back=True,
        target="local" if dest.is_local else "cloud",
        reason=f"{decision.reason}; {decision.destination!r} failed, answered by {name!r}",
    )


async def _close_provider(provider: Provider) -> None:
    try:
        await provider.aclose()
    except Exception:  # closing must not fail a request; the sockets go with the loop
        log.warning(
            "closing the retired provider of %s failed", provider.destination.name, exc_info=True
        )
