"""The request lifecycle every face shares: preview, reject, call and stream, with audit.

This module owns what happens to a built :class:`~llm_localfirst.request.Request`,
from facts to its one audit row: assessing and deciding (through the per-policy
:class:`~llm_localfirst.assessment.Assessor`), remembering taint, dispatching with
failover (through the :class:`~llm_localfirst.dispatch.Dispatcher`, which holds the
pooled providers and budget), intent rows, and writing exactly one audit row per
request, success or failure. It also owns the router's private loop thread (the
sync API) and the audit writer and listeners. :class:`Outcome` is the record of one
request in flight, shared with the dispatcher and :mod:`.stream`.

Faces reach it as ``router.lifecycle`` and never build an audit row themselves:
``build`` (bad input audited), ``preview``/``apreview`` (dry run), ``reject``
(input refused before routing), ``call``/``complete``/``stream`` and ``run_row``
(the worker's row for a whole delegation). It never formats wire errors; faces do.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._loop import LoopThread
from .assessment import Assessor
from .audit import AuditWriter
from .audit.intent import AuditIntent
from .audit.record import Attempt, AuditRecord, new_id, utc_now_iso
from .budget import BudgetExceeded
from .budget_gate import Reservation
from .dispatch import Dispatcher, Op, ProviderFactory
from .errors import (
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    PrivacyViolation,
    RoutingError,
)
from .policy import Assessment, Policy, declared_reasons
from .providers.base import ChatResult, EgressTicket, Provider, egress_guard
from .registry import Destination
from .request import Completion, Decision, Request, Usage
from .stream import RoutedStream, exc_decision_id

if TYPE_CHECKING:
    from .health import Health
    from .router import Router

__all__ = ["Lifecycle", "Listener", "Outcome"]

log = logging.getLogger("llm_localfirst")
T = TypeVar("T")
Listener = Callable[[AuditRecord], None]
_REFUSALS = (PrivacyViolation, LocalUnavailable, BudgetExceeded)


class Outcome:
    """Mutable facts gathered while one request runs, turned into its audit row.

    Args:
        endpoint: The endpoint the row will name (``complete``, ``stream``, ``route``...).
        audit_id: The row's id (a new time-sortable one by default).
    """

    __slots__ = (
        "assessment",
        "attempts",
        "audit_id",
        "budget_local",
        "completion_chars",
        "decision",
        "endpoint",
        "error",
        "outcome",
        "reservation",
        "started",
        "tokens_in",
        "tokens_out",
    )

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
            isinstance(exc, LocalFirstError) and not isinstance(exc, RoutingError)
        ):
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

    def __init__(
        self,
        router: Router,
        *,
        provider_factory: ProviderFactory | None = None,
        classifier: Any = None,
    ) -> None:
        self.router = router
        self._classifier_hook = classifier
        self.assessor: Assessor
        self._writer: AuditWriter | None = None
        self._writer_lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._loop = LoopThread()
        self.dispatcher = Dispatcher(
            router, provider_factory=provider_factory, loop=self._loop, intent=self._intent
        )

    # ------------------------------------------------------------------ policy

    def assessor_for(self, policy: Policy, health: Health) -> Assessor:
        """Build the assessor of ``policy`` (with its ``health``), not yet installed.

        Raises:
            PolicyError: its classifier cannot be built.
        """
        router = self.router
        return Assessor(
            policy,
            settings=router.settings,
            store=lambda: router.audit,
            classifier=self._classifier_hook,
            ask_local_model=self._ask_local_model,
            health=health,
            run_sync=self._loop.run,
        )

    def install(self, assessor: Assessor, providers: dict[str, Provider]) -> dict[str, Provider]:
        """Switch to a new policy's assessor and providers; returns the previous providers."""
        self.assessor = assessor
        old, self.dispatcher.providers = self.dispatcher.providers, providers
        return old

    async def _ask_local_model(self, name: str, messages: list[dict[str, str]]) -> str:
        """The policy classifier's one call: a local destination, behind the egress guard."""
        dest = self.router.policy.destinations[name]
        ticket = egress_guard(dest, sensitive=True)  # the classifier reads everything
        body = {"messages": messages, "max_tokens": 8, "temperature": 0}
        result = await self.dispatcher.provider(name).chat(ticket, body)
        return result.text

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
                    self._writer = AuditWriter(self.router.audit, durability=self.audit_durability)
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

    async def _intent(
        self, request: Request, decision: Decision, out: Outcome, dest: Destination
    ) -> None:
        """Commit an intent row before an upstream attempt (``durability: intent``).

        Raises:
            AuditError: it could not be committed; the attempt is not sent.
        """
        writer = self.writer
        if writer.durability != "intent":
            return
        await writer.aintent(
            AuditIntent(
                id=out.audit_id,
                attempt=len(out.attempts) + 1,
                ts=utc_now_iso(),
                face=request.face,
                endpoint=out.endpoint,
                kind=request.kind.value,
                destination=dest.name,
                locality="local" if dest.is_local else "cloud",
                model=dest.model,
                sensitive=decision.sensitive,
                sensitive_reasons=decision.sensitive_reasons,
                rule=decision.rule,
                prompt_sha256=request.prompt_sha256(),
                prompt_chars=request.input_chars,
            )
        )

    # ------------------------------------------------------------------ build, reject, preview

    def build(
        self,
        prompt: str | None = None,
        *,
        face: str = "python",
        endpoint: str = "complete",
        **fields: Any,
    ) -> Request:
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
            self.reject(
                face=face,
                endpoint=endpoint,
                error=exc,
                kind=str(fields.get("kind", "auto")),
                model=str(fields.get("model") or "auto"),
            )
            raise

    def reject(
        self,
        *,
        face: str,
        endpoint: str,
        error: BaseException,
        request: Request | None = None,
        kind: str = "auto",
        model: str = "auto",
    ) -> str:
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
        kind = kind if kind in ("bulk", "reason", "auto") else "auto"
        return self._run_level_row(
            audit_id, face, endpoint, "error", kind, error, str(error)[:500], model[:200]
        )

    def preview(self, request: Request, *, endpoint: str = "route") -> tuple[Decision, str]:
        """Dry run (sync): assess and decide, call no model, write one ``dry_run`` row.

        Returns:
            ``(decision, audit_id)``.

        Raises:
            ModelNotAllowed, PrivacyViolation, LocalUnavailable: audited as ``refused``.
        """
        try:
            decision = self.assessor.decide(request)
        except LocalFirstError as exc:
            self.reject(face=request.face, endpoint=endpoint, error=exc, request=request)
            raise
        return decision, self._dry_run(request, decision, endpoint)

    async def apreview(self, request: Request, *, endpoint: str = "route") -> tuple[Decision, str]:
        """:meth:`preview` for async faces (taint read off the loop, classifier run)."""
        try:
            assessment = await self.assessor.aassess(request)
            decision = await self.assessor.adecide(request, assessment=assessment)
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

    async def _assess_and_decide(self, request: Request, out: Outcome) -> Decision:
        """Assess (content and taint), decide, and remember the request if it is sensitive."""
        out.assessment = await self.assessor.aassess(request)
        try:
            decision = await self.assessor.adecide(request, assessment=out.assessment)
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
    async def call(
        self, request: Request, op: None = None, *, endpoint: str = "complete"
    ) -> tuple[ChatResult, Decision, str]: ...

    @overload
    async def call(
        self, request: Request, op: Op[T], *, endpoint: str = "complete"
    ) -> tuple[T, Decision, str]: ...

    async def call(
        self, request: Request, op: Op[Any] | None = None, *, endpoint: str = "complete"
    ) -> tuple[Any, Decision, str]:
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
            result = await self.dispatcher.run(request, decision, out, op)
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
        return Completion(
            text=result.text,
            decision=decision,
            usage=Usage(tokens_in, result.output_tokens),
            audit_id=audit_id,
            finish_reason=result.finish_reason,
            raw=result.body,
        )

    async def stream(self, request: Request, *, endpoint: str = "stream") -> RoutedStream:
        """Decide and connect, failing over until the first chunk arrives.

        Raises:
            LocalFirstError: before any byte reaches the caller (audited).
        """
        out = Outcome(endpoint)
        try:
            decision = await self._assess_and_decide(request, out)
            iterator, first, release = await self.dispatcher.open_stream(request, decision, out)
        except BaseException as exc:
            out.failed(exc)
            self.record(request, out)
            raise
        return RoutedStream(self, request, out, iterator, first, release=release)

    # ------------------------------------------------------------------ audit rows

    def record(self, request: Request, out: Outcome) -> None:
        """Write the one audit row for a request (non-blocking); settles its budget."""
        d = out.decision
        err = out.error
        if d is not None:
            reasons = d.sensitive_reasons
        else:
            reasons = tuple(
                dict.fromkeys(
                    [
                        *declared_reasons(self.router.policy, request),
                        *(out.assessment.reasons if out.assessment else ()),
                        *getattr(err, "sensitive_reasons", ()),
                    ]
                )
            )
        record = AuditRecord(
            id=out.audit_id,
            ts=utc_now_iso(),
            face=request.face,
            endpoint=out.endpoint,
            outcome=out.outcome,
            kind=request.kind.value,
            request_model=request.model,
            sensitive=bool(reasons) or request.sensitive,
            sensitive_reasons=reasons,
            rule=d.rule if d else getattr(err, "rule", None),
            arm=d.arm if d else None,
            destination=d.destination if d else None,
            locality=d.target if d else None,
            model=d.model if d else None,
            fell_back=d.fell_back if d else False,
            attempts=tuple(out.attempts),
            error_class=type(err).__name__ if err else None,
            error_message=str(err)[:500] if err and isinstance(err, LocalFirstError) else None,
            tokens_in=out.tokens_in,
            tokens_out=out.tokens_out,
            latency_ms=round((time.perf_counter() - out.started) * 1000, 3),
            prompt_sha256=request.prompt_sha256(),
            prompt_chars=request.input_chars,
            completion_chars=out.completion_chars,
            tags=tuple(sorted(request.tags)),
            metadata=self._audit_metadata(request, out, d),
        )
        self._emit(record)

    def _audit_metadata(self, request: Request, out: Outcome, d: Decision | None) -> dict[str, str]:
        """Caller metadata plus the router's own ``lf.*`` detail (cost, key, classifier).

        Settles the request's budget reservation and accounts the call in the ledger.
        Cost is integer micro-USD (``lf.cost_usd_micros``); a cloud destination without
        a price records ``lf.cost_usd_micros: unpriced``, never 0.
        """
        meta = {
            str(k): str(v) for k, v in request.metadata.items() if not str(k).startswith("lf.")
        }  # callers cannot forge the router's fields
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

    def run_row(
        self,
        *,
        face: str,
        endpoint: str,
        outcome: str,
        kind: str = "bulk",
        destination: str | None = None,
        model: str | None = None,
        error: BaseException | None = None,
        tags: tuple[str, ...] = (),
        metadata: Mapping[str, str] | None = None,
        latency_ms: float = 0.0,
    ) -> str:
        """Audit a unit of work made of routed calls (a worker delegation). Returns the id.

        The row describes the whole run (its ``metadata`` says what was read and what
        the outbound gate found); each model call has its own row, so this one has no
        locality and no tokens and is not counted twice by the ledgers.
        """
        audit_id = new_id()
        if isinstance(error, LocalFirstError) and error.decision_id is None:
            exc_decision_id(error, audit_id)  # else it keeps the row of the call that failed
        message = str(error)[:500] if isinstance(error, LocalFirstError) else None
        kind = kind if kind in ("bulk", "reason", "auto") else "auto"
        return self._run_level_row(
            audit_id,
            face,
            endpoint,
            outcome,
            kind,
            error,
            message,
            "auto",
            destination,
            model,
            tags=tuple(sorted(tags)),
            metadata=dict(metadata or {}),
            latency_ms=latency_ms,
        )

    def _run_level_row(
        self,
        audit_id: str,
        face: str,
        endpoint: str,
        outcome: str,
        kind: str,
        error: BaseException | None,
        error_message: str | None,
        request_model: str,
        destination: str | None = None,
        model: str | None = None,
        *,
        tags: tuple[str, ...] = (),
        metadata: dict[str, str] | None = None,
        latency_ms: float = 0.0,
    ) -> str:
        """A row with no request behind it: rejected input, or a whole worker run."""
        self._emit(
            AuditRecord(
                id=audit_id,
                ts=utc_now_iso(),
                face=face,
                endpoint=endpoint,
                outcome=outcome,
                kind=kind,
                request_model=request_model,
                sensitive=False,
                sensitive_reasons=(),
                rule=None,
                arm=None,
                destination=destination,
                locality=None,
                model=model,
                fell_back=False,
                attempts=(),
                error_class=type(error).__name__ if error else None,
                error_message=error_message,
                tokens_in=None,
                tokens_out=None,
                latency_ms=round(latency_ms, 3),
                prompt_sha256=None,
                prompt_chars=0,
                completion_chars=0,
                tags=tags,
                metadata=metadata or {},
            )
        )
        return audit_id

    # ------------------------------------------------------------------ shutdown

    async def aclose(self) -> None:
        """Close providers (in this loop), hand back budget leases, flush the audit log."""
        await self.dispatcher.aclose()
        self.router.spend.close()  # settled spend written back, budget leases handed back
        self._close_writer()

    def close(self) -> None:
        """Close pooled connections on the private loop, stop it, flush the audit log."""
        self.dispatcher.close()
        if self._loop.started:
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
