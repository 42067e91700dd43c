"""The request lifecycle every face shares: preview, reject, call and stream, with audit.

This module owns what happens to a built :class:`~llm_localfirst.request.Request`:
assessing it (through the router's :class:`~llm_localfirst.assessment.Assessor`),
deciding, dispatching along the decision's chain with failover (never from local to
cloud for a sensitive request; only before the first byte reaches the caller),
budget holds, intent rows, taint, and writing exactly one audit row per request.
It also owns the pooled providers (leased per request, retired on reload) and the
router's private loop thread for the sync API.

Faces reach it as ``router.lifecycle`` and never build an audit row themselves:
``build`` (bad input audited), ``preview``/``apreview`` (dry run), ``reject``
(input refused before routing), ``call``/``complete``/``stream`` and ``run_row``
(the worker's row for a whole delegation). It never formats wire errors; faces do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._loop import LoopThread
from .assessment import Assessor
from .audit import AuditWriter
from .audit.intent import AuditIntent
from .audit.record import Attempt, AuditRecord, new_id, utc_now_iso
from .budget import BudgetExceeded, input_token_bound
from .budget_gate import Reservation
from .errors import (
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    PrivacyViolation,
    RoutingError,
    UnsupportedEndpoint,
    UpstreamError,
    UpstreamTimeout,
)
from .health import http_probe
from .policy import Assessment, Policy, decide, declared_reasons
from .providers import make_provider
from .providers.base import AttemptFailed, ChatResult, EgressTicket, Provider, egress_guard
from .registry import Destination
from .request import Completion, Decision, Request, Usage
from .stream import RoutedStream, exc_decision_id

if TYPE_CHECKING:
    from .router import Router

__all__ = ["Lifecycle", "Listener", "Op", "Outcome", "ProviderFactory"]

log = logging.getLogger("llm_localfirst")
T = TypeVar("T")
Listener = Callable[[AuditRecord], None]
ProviderFactory = Callable[[Any], Provider]
Op = Callable[[Provider, EgressTicket], Awaitable[T]]
_REFUSALS = (PrivacyViolation, LocalUnavailable, BudgetExceeded)


class Outcome:
    """Mutable facts gathered while one request runs, turned into its audit row."""

    __slots__ = ("assessment", "attempts", "audit_id", "budget_local", "completion_chars",
                 "decision", "endpoint", "error", "outcome", "reservation", "started",
                 "tokens_in", "tokens_out")

    def __init__(self, endpoint: str = "complete", audit_id: str | None = None) -> None:
        # Set before dispatch: intent rows carry the decision row's id and endpoint.
        self.audit_id = audit_id or new_id()
        self.endpoint = endpoint
        self.reservation: Reservation | None = None  # a cloud call's budget hold
        self.budget_local: str | None = None  # a spent budget moved the call local
        self.started = time.perf_counter()
        self.assessment: Assessment | None = None
        self.decision: Decision | None = None
        self.attempts: list[Attempt] = []
        self.error: BaseException | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.completion_chars = 0
        self.outcome = "ok"

    def failed(self, exc: BaseException) -> None:
        """Classify an exception as this request's outcome (refused, error, cancelled)."""
        if isinstance(exc, asyncio.CancelledError):
            self.outcome = "cancelled"
        elif isinstance(exc, _REFUSALS) or (
                isinstance(exc, LocalFirstError) and not isinstance(exc, RoutingError)):
            self.outcome = "refused"
        else:
            self.outcome = "error"
        self.error = exc
        if isinstance(exc, LocalFirstError):
            exc_decision_id(exc, self.audit_id)


class Lifecycle:
    """What faces call on a router: one request from facts to its audit row.

    Built by the :class:`~llm_localfirst.Router` (``router.lifecycle``); users need not
    touch it. It reads the router's current policy, health, spend and audit store.

    Args:
        router: The router it serves.
        provider_factory: Builds a provider for a destination (tests inject fakes).
        classifier: A user's own classifier (``Router(classifier=...)``), if any.
    """

    def __init__(self, router: Router, *, provider_factory: ProviderFactory | None = None,
                 classifier: Any = None) -> None:
        self.router = router
        self._provider_factory = provider_factory or make_provider
        self._classifier_hook = classifier
        self.assessor: Assessor
        self._writer: AuditWriter | None = None
        self._writer_lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._retired: list[Provider] = []
        self._leases: dict[int, int] = {}  # id(provider) -> requests using it now
        self._closing: set[asyncio.Task[None]] = set()
        self._loop = LoopThread()

    # ------------------------------------------------------------------ policy + providers

    def install(self, policy: Policy, providers: dict[str, Provider]) -> Any:
        """Build the assessor for ``policy``; return the health probe over ``providers``."""
        router = self.router

        async def probe(dest: Destination) -> tuple[bool, str]:
            if self._provider_factory is make_provider:
                return await http_probe(dest, trusted=policy.trusted)
            try:  # injected providers (tests, custom back ends) probe themselves
                return await self.provider(dest.name, providers, policy).probe()
            except AttemptFailed as failure:
                return False, str(failure)

        self.assessor = Assessor(policy, settings=router.settings, store=lambda: router.audit,
                                 classifier=self._classifier_hook,
                                 ask_local_model=self._ask_local_model)
        return probe

    async def _ask_local_model(self, name: str, messages: list[dict[str, str]]) -> str:
        """The policy classifier's one call: a local destination, behind the egress guard."""
        dest = self.router.policy.destinations[name]
        ticket = egress_guard(dest, sensitive=True)  # the classifier reads everything
        body = {"messages": messages, "max_tokens": 8, "temperature": 0}
        result = await self.provider(name).chat(ticket, body)
        return result.text

    def provider(self, name: str, providers: dict[str, Provider] | None = None,
                 policy: Policy | None = None) -> Provider:
        """The provider of one destination, built on first use (importing its SDK).

        Raises:
            AttemptFailed: its extra is not installed (the attempt fails over).
        """
        providers = self.router.providers if providers is None else providers
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
        policy, providers = self.router.policy, self.router.providers
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

    def _lease(self, provider: Provider) -> None:
        """A request starts using ``provider`` (a retired one stays open until released)."""
        key = id(provider)
        self._leases[key] = self._leases.get(key, 0) + 1

    async def _unlease(self, provider: Provider) -> None:
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

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the router's private loop (where its pooled clients live)."""
        return self._loop.run(coro, timeout)

    # ------------------------------------------------------------------ audit plumbing

    @property
    def audit_durability(self) -> str:
        """``batch`` or ``intent``: ``LF_AUDIT_DURABILITY``, else the policy's."""
        return self.router.settings.audit_durability or self.router.policy.audit.durability

    @property
    def writer(self) -> AuditWriter:
        """The batching audit writer (started on first use; one per router, thread-safe)."""
        writer = self._writer
        if writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = AuditWriter(self.router.audit,
                                               durability=self.audit_durability)
                writer = self._writer
        return writer

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(record)`` for every audit row. Must be fast."""
        self._listeners.append(listener)

    def _emit(self, record: AuditRecord) -> None:
        self.writer.submit(record)
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:  # a broken listener must not break routing
                log.exception("audit listener failed")

    async def _intent(self, request: Request, decision: Decision, out: Outcome,
                      dest: Destination) -> None:
        """Commit an intent row before an upstream attempt (``durability: intent``).

        Raises:
            AuditError: it could not be committed; the attempt is not sent.
        """
        writer = self.writer
        if writer.durability != "intent":
            return
        await writer.aintent(AuditIntent(
            id=out.audit_id, attempt=len(out.attempts) + 1, ts=utc_now_iso(), face=request.face,
            endpoint=out.endpoint, kind=request.kind.value, destination=dest.name,
            locality="local" if dest.is_local else "cloud", model=dest.model,
            sensitive=decision.sensitive, sensitive_reasons=decision.sensitive_reasons,
            rule=decision.rule, prompt_sha256=request.prompt_sha256(),
            prompt_chars=request.input_chars))

    # ------------------------------------------------------------------ build, reject, preview

    def build(self, prompt: str | None = None, *, face: str = "python",
              endpoint: str = "complete", **fields: Any) -> Request:
        """Validate loose arguments (those of ``Request.build``) into a Request.

        The input limit comes from the settings. Invalid input is audited
        (:meth:`reject`) before the error propagates.

        Raises:
            InvalidRequest: bad or oversized input.
        """
        fields.setdefault("max_input_chars", self.router.settings.max_input_chars)
        try:
            return Request.build(prompt, face=face, **fields)
        except InvalidRequest as exc:
            self.reject(face=face, endpoint=endpoint, error=exc,
                        kind=str(fields.get("kind", "auto")),
                        model=str(fields.get("model") or "auto"))
            raise

    def reject(self, *, face: str, endpoint: str, error: BaseException,
               request: Request | None = None, kind: str = "auto", model: str = "auto") -> str:
        """Audit input refused before routing. Returns the audit id (also set on ``error``).

        With the ``request`` (it was built, then refused: a local-only run with no local
        destination) the row carries its facts and says ``refused``; without it (the
        input could not be read or built) the row says ``error`` and carries only
        ``kind`` and ``model``.
        """
        if request is not None:
            out = Outcome(endpoint)
            out.outcome, out.error = "refused", error
            if isinstance(error, LocalFirstError):
                exc_decision_id(error, out.audit_id)
            self.record(request, out)
            return out.audit_id
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

    def preview(self, request: Request, *, endpoint: str = "route") -> tuple[Decision, str]:
        """Dry run (sync): assess and decide, call no model, write one ``dry_run`` row.

        Returns:
            ``(decision, audit_id)``.

        Raises:
            ModelNotAllowed, PrivacyViolation, LocalUnavailable: audited as ``refused``.
        """
        try:
            decision = self.decide(request)
        except LocalFirstError as exc:
            self.reject(face=request.face, endpoint=endpoint, error=exc, request=request)
            raise
        return decision, self._dry_run(request, decision, endpoint)

    async def apreview(self, request: Request, *,
                       endpoint: str = "route") -> tuple[Decision, str]:
        """:meth:`preview` for async faces (taint read off the loop, classifier run)."""
        try:
            decision = await self.adecide(request,
                                          assessment=await self.assessor.aassess(request))
        except LocalFirstError as exc:
            self.reject(face=request.face, endpoint=endpoint, error=exc, request=request)
            raise
        return decision, self._dry_run(request, decision, endpoint)

    def _dry_run(self, request: Request, decision: Decision, endpoint: str) -> str:
        out = Outcome(endpoint)
        out.decision, out.outcome = decision, "dry_run"
        self.record(request, out)
        return out.audit_id

    # ------------------------------------------------------------------ decide

    def decide(self, request: Request) -> Decision:
        """Refresh stale probes (on the private loop), then decide. Writes no row.

        Raises:
            ModelNotAllowed, PrivacyViolation, LocalUnavailable: see :func:`policy.decide`.
        """
        health = self.router.health
        probed = health.stale()
        if probed:
            self._loop.run(health.refresh(), timeout=30)
        # The classifier (if configured) calls the local model: run it on the loop.
        assessment = (self._loop.run(self.assessor.aassess(request), timeout=120)
                      if self.assessor.classifier is not None else None)
        try:
            return self._decide_now(request, assessment)
        except LocalUnavailable as exc:
            again = self._cached_down(exc, probed)
            if not again:
                raise
            self._loop.run(health.refresh(again, force=True), timeout=30)
            return self._decide_now(request, assessment)

    async def adecide(self, request: Request, *,
                      assessment: Assessment | None = None) -> Decision:
        """Refresh stale probes of the candidates, then decide. Writes no row.

        Raises:
            ModelNotAllowed, PrivacyViolation, LocalUnavailable: see :func:`policy.decide`.
        """
        health = self.router.health
        probed = health.stale()
        if probed:
            await health.refresh()
        if assessment is None and self.assessor.classifier is not None:
            assessment = await self.assessor.aassess(request)
        try:
            return self._decide_now(request, assessment)
        except LocalUnavailable as exc:
            again = self._cached_down(exc, probed)
            if not again:
                raise
            await health.refresh(again, force=True)
            return self._decide_now(request, assessment)

    def _decide_now(self, request: Request, assessment: Assessment | None) -> Decision:
        """Decide with the cached health (no probing, no I/O but a sync taint read)."""
        if assessment is None:
            assessment = self.assessor.assess(request)
        return decide(self.router.policy, request, assessment=assessment,
                      is_up=self.router.health.is_up)

    def _cached_down(self, exc: LocalUnavailable, probed: list[str]) -> list[str]:
        """Local candidates found down by an earlier probe, to probe once more before failing.

        A cached "down" may be older than the local server (Ollama started a moment
        ago); a sensitive request must not fail on it for up to ``LF_PROBE_TTL``.
        """
        health = self.router.health
        names = exc.candidates or self.router.policy.local_names
        return [n for n in names if n not in probed and n in health.status
                and health.destinations[n].is_local]

    async def _assess_and_decide(self, request: Request, out: Outcome) -> Decision:
        """Assess (content and taint), decide, and remember the request if it is sensitive."""
        out.assessment = await self.assessor.aassess(request)
        try:
            decision = await self.adecide(request, assessment=out.assessment)
        except (PrivacyViolation, LocalUnavailable) as exc:
            if exc.sensitive_reasons:
                await asyncio.to_thread(self.assessor.remember, request)
            raise
        out.decision = decision
        if decision.sensitive:
            await asyncio.to_thread(self.assessor.remember, request)
        return decision

    # ------------------------------------------------------------------ call + stream

    @overload
    async def call(self, request: Request, op: None = None, *,
                   endpoint: str = "complete") -> tuple[ChatResult, Decision, str]: ...

    @overload
    async def call(self, request: Request, op: Op[T], *,
                   endpoint: str = "complete") -> tuple[T, Decision, str]: ...

    async def call(self, request: Request, op: Op[Any] | None = None, *,
                   endpoint: str = "complete") -> tuple[Any, Decision, str]:
        """Decide, dispatch ``op`` (default: the chat call) with failover, audit.

        Returns:
            ``(result, decision, audit_id)``; the decision names the destination that answered.

        Raises:
            LocalFirstError: refusals and failures (audited before raising).
        """
        if op is None:
            body = request.chat_body()

            async def chat(provider: Provider, ticket: EgressTicket) -> ChatResult:
                return await provider.chat(ticket, body)

            op = chat
        out = Outcome(endpoint)
        try:
            decision = await self._assess_and_decide(request, out)
            result = await self._dispatch(request, decision, out, op)
            if isinstance(result, ChatResult):
                out.tokens_in, out.tokens_out = result.input_tokens, result.output_tokens
                out.completion_chars = len(result.text)
            return result, out.decision or decision, out.audit_id
        except BaseException as exc:
            out.failed(exc)
            raise
        finally:
            self.record(request, out)

    async def complete(self, request: Request) -> Completion:
        """Complete a built request on the chat endpoint (see :meth:`call`)."""
        result, decision, audit_id = await self.call(request)
        tokens_in = result.input_tokens or request.estimated_tokens
        return Completion(text=result.text, decision=decision,
                          usage=Usage(tokens_in, result.output_tokens), audit_id=audit_id,
                          finish_reason=result.finish_reason, raw=result.body)

    async def stream(self, request: Request, *, endpoint: str = "stream") -> RoutedStream:
        """Decide and connect, failing over until the first chunk arrives.

        Raises:
            LocalFirstError: before any byte reaches the caller (audited).
        """
        body = request.chat_body()
        first: list[Mapping[str, Any]] = []
        held: list[Provider] = []

        async def op(provider: Provider, ticket: EgressTicket) -> Any:
            iterator = provider.stream_chat(ticket, body).__aiter__()
            self._lease(provider)  # held until the stream ends: a reload must not close it
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                await self._unlease(provider)
                raise AttemptFailed(
                    "error", f"{ticket.destination}: the stream ended before its first chunk"
                ) from None
            except BaseException:
                await self._unlease(provider)
                raise
            first.append(chunk)
            held.append(provider)
            return iterator

        out = Outcome(endpoint)
        try:
            decision = await self._assess_and_decide(request, out)
            iterator = await self._dispatch(request, decision, out, op)
        except BaseException as exc:
            out.failed(exc)
            self.record(request, out)
            raise
        provider = held[-1]
        return RoutedStream(self, request, out, iterator, first[-1],
                            release=lambda: self._unlease(provider))

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: Request, decision: Decision, out: Outcome,
                        op: Op[T]) -> T:
        """Try the decision's chain in order; fail over on retryable failures.

        The policy and providers are read once, before the first await, so a reload
        while the request is in flight cannot change where it may go. On success
        ``out.decision`` names the destination that answered.
        """
        router = self.router
        # Read together, before any await: the trusted networks parsed once per policy.
        policy, providers, health = router.policy, router.providers, router.health
        trusted = health.trusted
        last: AttemptFailed | None = None
        unsupported: UnsupportedEndpoint | None = None
        chain = list(decision.chain)  # a spent budget may append the local chain
        for name in chain:
            dest = policy.destinations[name]
            locality = "local" if dest.is_local else "cloud"
            # A local-only request (the worker) is pinned local like a sensitive one.
            ticket = egress_guard(dest, sensitive=decision.sensitive or bool(request.local_only),
                                  trusted=trusted)
            started = time.perf_counter()
            try:
                unconfigured = health.unconfigured.get(name)
                if unconfigured is not None:  # no key: fail before importing its SDK
                    raise AttemptFailed("not_configured", f"{name}: {unconfigured}")
                if not dest.is_local and router.spend.active and await self._hold_budget(
                        name, request, out, chain):
                    continue  # budget spent, on_exceeded: local
                # durability "intent": committed before anything is sent (AuditError if not).
                await self._intent(request, decision, out, dest)
                provider = self.provider(name, providers, policy)
                self._lease(provider)
                try:
                    result = await op(provider, ticket)
                finally:
                    await self._unlease(provider)
            except UnsupportedEndpoint as exc:  # nothing sent: try the next candidate
                self._release_budget(out)
                ms = (time.perf_counter() - started) * 1000
                out.attempts.append(Attempt(name, "unsupported_endpoint", round(ms, 3), None,
                                            exc.message[:300], locality=locality))
                unsupported = unsupported or exc
                continue
            except AttemptFailed as failure:
                self._release_budget(out)
                ms = (time.perf_counter() - started) * 1000
                out.attempts.append(Attempt(name, failure.outcome, round(ms, 3), failure.status,
                                            str(failure)[:300], locality=locality))
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
                    out.decision, budget=out.budget_local,
                    reason=f"{out.decision.reason}; budget {out.budget_local!r} is spent: "
                           "sent to the local chain")
            return result
        if unsupported is not None and all(
                a.outcome == "unsupported_endpoint" for a in out.attempts):
            raise unsupported  # no candidate has the endpoint
        raise self._exhausted(decision, last, local_only=bool(request.local_only),
                              attempts=tuple(out.attempts))

    async def _hold_budget(self, name: str, request: Request, out: Outcome,
                           chain: list[str]) -> bool:
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

    def _exhausted(self, decision: Decision, last: AttemptFailed | None, *,
                   local_only: bool = False, attempts: tuple[Attempt, ...] = ()) -> RoutingError:
        tried = ", ".join(a.destination for a in attempts) or ", ".join(decision.chain)
        final = attempts[-1].destination if attempts else None
        error_type = UpstreamTimeout if last is not None and last.outcome == "timeout" \
            else UpstreamError
        if last is not None and not last.retryable:
            err: RoutingError = error_type(str(last), destination=final, status=last.status,
                                           attempts=attempts)
        elif decision.sensitive or local_only:
            err = LocalUnavailable(
                f"request is {'sensitive' if decision.sensitive else 'local-only'} and no local "
                f"destination answered ({tried}); failing closed, nothing was sent to the cloud",
                candidates=decision.chain,
                rule=decision.rule, sensitive_reasons=decision.sensitive_reasons)
        else:
            details = "; ".join(a.error or f"{a.destination}: {a.outcome}" for a in attempts)
            err = error_type(f"every destination failed ({tried}): {details or last}"
                             f"{self._local_hint(attempts)}",
                             destination=final, status=last.status if last else None,
                             attempts=attempts)
            # A missing key fails the same way until someone sets it: no point retrying,
            # unless some other attempt failed in a way that may pass (timeout, 5xx, 429).
            outcomes = {a.outcome for a in attempts}
            err.retryable = "not_configured" not in outcomes or bool(
                outcomes & {"timeout", "http_5xx", "http_429"})
        if isinstance(err, UpstreamError) and last is not None:
            err.body = last.body
        return err

    def _local_hint(self, attempts: tuple[Attempt, ...]) -> str:
        """Say which local models were skipped as down or could not be reached, and what to do."""
        health, local_names = self.router.health, self.router.policy.local_names
        tried = {a.destination for a in attempts}
        skipped = [f"{n!r} ({health.status[n].detail})" for n in local_names
                   if n not in tried and n in health.status and not health.is_up(n)]
        unreachable = [repr(a.destination) for a in attempts if a.outcome == "connect_error"
                       and a.destination in local_names]
        said = []
        if skipped:
            said.append(f"the local model {', '.join(skipped)} was skipped as down")
        if unreachable:
            said.append(f"the local model {', '.join(unreachable)} is not running")
        if not said:
            return ""
        return (f"; {' and '.join(said)}: start it (for Ollama: `ollama serve`), "
                "then check with `llm-localfirst doctor`")

    # ------------------------------------------------------------------ audit rows

    def record(self, request: Request, out: Outcome) -> None:
        """Write the one audit row for a request (non-blocking); settles its budget."""
        d = out.decision
        err = out.error
        if d is not None:
            reasons = d.sensitive_reasons
        else:
            reasons = tuple(dict.fromkeys([
                *declared_reasons(self.router.policy, request),
                *(out.assessment.reasons if out.assessment else ()),
                *getattr(err, "sensitive_reasons", ())]))
        record = AuditRecord(
            id=out.audit_id, ts=utc_now_iso(), face=request.face, endpoint=out.endpoint,
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
            metadata=self._audit_metadata(request, out, d))
        self._emit(record)

    def _audit_metadata(self, request: Request, out: Outcome,
                        d: Decision | None) -> dict[str, str]:
        """Caller metadata plus the router's own ``lf.*`` detail (cost, key, classifier).

        Settles the request's budget reservation and accounts the call in the ledger.
        Cost is integer micro-USD (``lf.cost_usd_micros``); a cloud destination without
        a price records ``lf.cost_usd_micros: unpriced``, never 0.
        """
        meta = {str(k): str(v) for k, v in request.metadata.items()
                if not str(k).startswith("lf.")}  # callers cannot forge the router's fields
        if request.client_key is not None:
            meta["lf.key"] = request.client_key
        a = out.assessment
        if a is not None and a.classifier_ms is not None:
            meta["lf.classifier"] = a.classifier_label or "none"
            meta["lf.classifier_ms"] = f"{a.classifier_ms:g}"
            meta["lf.classifier_cached"] = "true" if a.classifier_cached else "false"
        if out.budget_local is not None:
            meta["lf.budget"] = out.budget_local
        spend = self.router.spend
        spent = out.outcome == "ok" and d is not None
        if spent and d is not None:
            usage = Usage(out.tokens_in or 0, out.tokens_out or 0)
            cost = spend.cost(d.destination, out.tokens_in, out.tokens_out)
            if cost is not None:
                meta["lf.cost_usd_micros"] = str(cost)
            elif d.target == "cloud":
                meta["lf.cost_usd_micros"] = "unpriced"
            self.router.ledger.record(d, usage)
        if out.reservation is not None:
            spend.settle(out.reservation, usage if spent else None)
            out.reservation = None
        return meta

    def run_row(self, *, face: str, endpoint: str, outcome: str, kind: str = "bulk",
                destination: str | None = None, model: str | None = None,
                error: BaseException | None = None, tags: tuple[str, ...] = (),
                metadata: Mapping[str, str] | None = None, latency_ms: float = 0.0) -> str:
        """Audit a unit of work made of routed calls (a worker delegation). Returns the id.

        The row describes the whole run (its ``metadata`` says what was read and what
        the outbound gate found); each model call has its own row, so this one has no
        locality and no tokens and is not counted twice by the ledgers.
        """
        audit_id = new_id()
        if isinstance(error, LocalFirstError) and error.decision_id is None:
            exc_decision_id(error, audit_id)  # else it keeps the row of the call that failed
        self._emit(AuditRecord(
            id=audit_id, ts=utc_now_iso(), face=face, endpoint=endpoint, outcome=outcome,
            kind=kind if kind in ("bulk", "reason", "auto") else "auto", request_model="auto",
            sensitive=False, sensitive_reasons=(), rule=None, arm=None, destination=destination,
            locality=None, model=model, fell_back=False, attempts=(),
            error_class=type(error).__name__ if error else None,
            error_message=str(error)[:500] if isinstance(error, LocalFirstError) else None,
            tokens_in=None, tokens_out=None, latency_ms=round(latency_ms, 3),
            prompt_sha256=None, prompt_chars=0, completion_chars=0, tags=tuple(sorted(tags)),
            metadata=dict(metadata or {})))
        return audit_id

    # ------------------------------------------------------------------ shutdown

    async def aclose(self) -> None:
        """Close providers (in this loop), hand back budget leases, flush the audit log."""
        for provider in [*self.router.providers.values(), *self._retired]:
            await provider.aclose()
        self.router.spend.close()  # settled spend written back, budget leases handed back
        self._close_writer()

    def close(self) -> None:
        """Close pooled connections on the private loop, stop it, flush the audit log."""
        if self._loop.started:
            for provider in [*self.router.providers.values(), *self._retired]:
                try:
                    self._loop.run(provider.aclose(), timeout=5)
                except (RuntimeError, TimeoutError):
                    log.debug("provider close failed")
            self._loop.stop()
        self.router.spend.close()  # settled spend written back, budget leases handed back
        self._close_writer()

    def _close_writer(self) -> None:
        with self._writer_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every audit row submitted so far is durable."""
        if self._writer is not None:
            self._writer.flush(timeout)


def _answered(decision: Decision, name: str, policy: Policy) -> Decision:
    """The decision as answered: by ``name``, a fallback if it was not the first choice."""
    if name == decision.destination:
        return decision
    dest = policy.destinations[name]
    return dataclasses.replace(
        decision, destination=name, model=dest.model, fell_back=True,
        target="local" if dest.is_local else "cloud",
        reason=f"{decision.reason}; {decision.destination!r} failed, answered by {name!r}")


async def _close_provider(provider: Provider) -> None:
    try:
        await provider.aclose()
    except Exception:  # closing must not fail a request; the sockets go with the loop
        log.warning("closing the retired provider of %s failed",
                    provider.destination.name, exc_info=True)
