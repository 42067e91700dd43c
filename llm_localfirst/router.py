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
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ._loop import LoopThread
from .audit import AuditStore, AuditWriter, open_store
from .audit.budget_store import BudgetStore, budget_store_for
from .audit.intent import AuditIntent
from .audit.record import Attempt, AuditRecord, new_id, utc_now_iso
from .budget import Budget, BudgetExceeded, Ledger, Spend, input_token_bound
from .budget_gate import Reservation
from .config import Settings, policy_from_settings
from .errors import (
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    PolicyError,
    PrivacyViolation,
    RoutingError,
    UnsupportedEndpoint,
    UpstreamError,
    UpstreamTimeout,
)
from .health import Health, http_probe, missing_credentials
from .policy import Assessment, Policy, decide, declared_reasons, load_policy
from .providers import make_provider
from .providers.base import AttemptFailed, ChatResult, EgressTicket, Provider, egress_guard
from .registry import Destination
from .request import Completion, Decision, Request, StreamChunk, Usage
from .sensitivity import scanner_for
from .sensitivity.classifier import build_classifier
from .sensitivity.egress import walk
from .sensitivity.taint import lookup as taint_lookup
from .sensitivity.taint import message_digests
from .sensitivity.taint import remember as taint_remember
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

    __slots__ = ("assessment", "attempts", "audit_id", "budget_local", "completion_chars",
                 "decision", "endpoint", "error", "outcome", "reservation", "started",
                 "tokens_in", "tokens_out")

    def __init__(self) -> None:
        # Set before dispatch: intent rows carry the decision row's id and endpoint.
        self.audit_id: str | None = None
        self.endpoint = "complete"
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


def _with_taint(assessment: Assessment, taint: tuple[str, ...]) -> Assessment:
    if not taint:
        return assessment
    return Assessment(reasons=(*assessment.reasons, *taint), detectors=assessment.detectors)


class Router:
    """Routes requests between local and cloud destinations by a policy.

    Build one with :meth:`from_env` or :meth:`from_policy`. It is safe to share
    between threads and tasks. Call :meth:`close` (or use it as a context manager)
    to flush the audit log and close pooled connections.

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
    """

    def __init__(self, policy: Policy, *, settings: Settings | None = None,
                 audit: AuditStore | None = None,
                 provider_factory: ProviderFactory | None = None,
                 probe_ttl: float | None = None, policy_source: str = "<policy>",
                 classifier: Any = None, budget: Budget | None = None,
                 ledger: Ledger | None = None, budget_store: BudgetStore | None = None) -> None:
        # The library constructor reads no environment and no .env: from_env() does.
        self.settings = settings or Settings()
        self.policy_source = policy_source
        self._classifier_hook = classifier
        self.budget = budget
        self.ledger = ledger or Ledger()
        self._budget_store = budget_store
        self._provider_factory = provider_factory or make_provider
        self._audit_store = audit
        self._writer: AuditWriter | None = None
        self._audit_lock = threading.RLock()  # writer() opens the store under it too
        self._listeners: list[Listener] = []
        self._retired: list[Provider] = []
        self._leases: dict[int, int] = {}  # id(provider) -> requests using it now
        self._closing: set[asyncio.Task[None]] = set()
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
        # 0.2.0's names: LF_PRICES over the policy's prices; LF_MAX_CLOUD_* as a
        # per-process budget for the life of the process (period "total").
        prices = settings.price_table()
        limits = Budget(max_cloud_calls=settings.max_cloud_calls,
                        max_cloud_tokens=settings.max_cloud_tokens,
                        max_cloud_cost=settings.max_cloud_cost)
        budget = None if limits.is_empty else limits
        if settings.policy is not None:
            return cls(load_policy(settings.policy, prices=prices), settings=settings,
                       policy_source=str(settings.policy), budget=budget)
        return cls(policy_from_settings(settings), settings=settings,
                   policy_source="<LF_* settings>", budget=budget)

    @classmethod
    def from_policy(cls, path: str | Path, **kwargs: Any) -> Router:
        """Build from a YAML policy file (other arguments as the constructor's).

        Reads no environment: pass ``settings=Settings.load()`` to apply ``LF_*``.

        Raises:
            PolicyError: the file is missing or invalid.
        """
        return cls(load_policy(path), policy_source=str(path), **kwargs)

    def _install(self, policy: Policy) -> None:
        # Providers are built on first use, so deciding never imports a provider SDK.
        providers: dict[str, Provider] = {}

        async def probe(dest: Destination) -> tuple[bool, str]:
            if self._provider_factory is make_provider:
                return await http_probe(dest, trusted=policy.trusted)
            try:  # injected providers (tests, custom back ends) probe themselves
                return await self._provider(dest.name, providers, policy).probe()
            except AttemptFailed as failure:
                return False, str(failure)

        self.policy = policy
        self.providers = providers
        self.health = Health(policy.destinations, probe, trusted=policy.trusted,
                             ttl=self._probe_ttl, credentials=missing_credentials)
        self._scanner = scanner_for(policy.sensitivity.detectors)
        self._scan_cache: dict[bytes | tuple[int, int], frozenset[str]] = {}
        try:
            self.classifier = build_classifier(policy.sensitivity.classifier,
                                               self._classifier_hook, self._ask_local_model)
        except ValueError as exc:
            raise PolicyError(str(exc), source="<classifier>") from None
        self.spend = Spend(policy, ledger=self.ledger, budget=self.budget,
                           store_factory=self._open_budget_store)

    def _open_budget_store(self) -> BudgetStore:
        if self._budget_store is None:
            self._budget_store = budget_store_for(self.audit)
        return self._budget_store

    async def _ask_local_model(self, name: str, messages: list[dict[str, str]]) -> str:
        """The policy classifier's one call: a local destination, behind the egress guard."""
        dest = self.policy.destinations[name]
        ticket = egress_guard(dest, sensitive=True)  # the classifier reads everything
        body = {"messages": messages, "max_tokens": 8, "temperature": 0}
        result = await self._provider(name).chat(ticket, body)
        return result.text

    async def _classify(self, request: Request, assessment: Assessment) -> Assessment:
        """Add the classifier's label (and any sensitivity it implies) to an assessment."""
        if self.classifier is None:
            return assessment
        got = await self.classifier.classify(self._classified_texts(request))
        return self._with_label(assessment, got)

    @staticmethod
    def _classified_texts(request: Request) -> list[str]:
        """What the classifier reads: the messages, or for the other endpoints (embeddings,
        completions, responses) every string of the body that will be sent."""
        if request.messages or request.body is None:
            return request.texts()
        return walk(request.outbound()).strings

    def _classify_cached(self, request: Request, assessment: Assessment) -> Assessment:
        """The no-I/O path: the cached label, or fail closed (``classifier_not_run``)."""
        if self.classifier is None:
            return assessment
        got = self.classifier.lookup(self.classifier.digest(self._classified_texts(request)))
        if got is None:
            return dataclasses.replace(
                assessment, reasons=(*assessment.reasons, "classifier_not_run"))
        return self._with_label(assessment, got)

    @staticmethod
    def _with_label(assessment: Assessment, got: Any) -> Assessment:
        reasons = assessment.reasons if got.reason is None else (*assessment.reasons,
                                                                 got.reason)
        # Built directly: dataclasses.replace costs ~1 µs more on the cached path.
        return Assessment(reasons, assessment.detectors, got.label, got.ms, got.cached)

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
        old_spend = self.spend
        self._install(policy)
        old_spend.close()  # its idle leases back to the store; calls in flight settle there
        if source:
            self.policy_source = source
        for name, provider in old_providers.items():
            if policy.destinations.get(name) == old_policy.destinations[name]:
                self.providers[name] = provider  # unchanged destination: keep its pool
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
                self._loop.submit(self._close_provider(provider))
            else:
                self._retired.append(provider)
            return
        task = loop.create_task(self._close_provider(provider))
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
            await self._close_provider(provider)

    @staticmethod
    async def _close_provider(provider: Provider) -> None:
        try:
            await provider.aclose()
        except Exception:  # closing must not fail a request; the sockets go with the loop
            log.warning("closing the retired provider of %s failed",
                        provider.destination.name, exc_info=True)

    @property
    def audit(self) -> AuditStore:
        """The audit store (opened on first use, never at construction; thread-safe)."""
        store = self._audit_store
        if store is None:
            with self._audit_lock:  # two threads' first use must open one store
                if self._audit_store is None:
                    self._audit_store = open_store(self.settings.audit_url,
                                                   data_dir=self.settings.resolved_data_dir)
                store = self._audit_store
        return store

    @property
    def audit_durability(self) -> str:
        """``batch`` or ``intent``: ``LF_AUDIT_DURABILITY``, else the policy's ``audit.durability``."""
        return self.settings.audit_durability or self.policy.audit.durability

    @property
    def writer(self) -> AuditWriter:
        """The batching audit writer (started on first use; one per router, thread-safe)."""
        writer = self._writer
        if writer is None:
            with self._audit_lock:
                if self._writer is None:
                    self._writer = AuditWriter(self.audit, durability=self.audit_durability)
                writer = self._writer
        return writer

    async def _intent(self, request: Request, decision: Decision, out: _Outcome,
                      dest: Destination) -> None:
        """Commit an intent row before an upstream attempt (``durability: intent``).

        Raises:
            AuditError: it could not be committed; the attempt is not sent.
        """
        writer = self.writer
        if writer.durability != "intent":
            return
        if out.audit_id is None:
            out.audit_id = new_id()
        await writer.aintent(AuditIntent(
            id=out.audit_id, attempt=len(out.attempts) + 1, ts=utc_now_iso(), face=request.face,
            endpoint=out.endpoint, kind=request.kind.value, destination=dest.name,
            locality="local" if dest.is_local else "cloud", model=dest.model,
            sensitive=decision.sensitive, sensitive_reasons=decision.sensitive_reasons,
            rule=decision.rule, prompt_sha256=request.prompt_sha256(),
            prompt_chars=request.input_chars))

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
        """What is known of a request's sensitivity before the rules: its content and taint.

        Reads the store's taint synchronously; the faces' async paths use
        :meth:`aassess`, which reads it off the event loop.
        """
        return self._classify_cached(
            request, _with_taint(self.assess_content(request), self._taint_lookup(request)))

    async def aassess(self, request: Request) -> Assessment:
        """:meth:`assess` with the taint lookup run in a worker thread."""
        content = self.assess_content(request)
        if request.messages or request.session is not None:
            content = _with_taint(content, await asyncio.to_thread(self._taint_lookup, request))
        return await self._classify(request, content)

    def assess_content(self, request: Request) -> Assessment:
        """Scan every string the request will send upstream (any field, any endpoint).

        Values the detectors cannot read (token ids, images, audio, files, bare
        numbers in content) add ``unreadable:<kind>`` unless the policy says
        ``sensitivity.unreadable: allow``. A failing detector makes the request
        sensitive (``detector_error``).
        """
        try:
            outbound = walk(request.outbound())
            fired: frozenset[str] = frozenset()
            for text in outbound.strings:
                if text:
                    fired |= self._scan(text)
        except Exception as exc:  # fail closed: a broken detector means sensitive
            log.warning("detector failed (%s); treating the request as sensitive",
                        type(exc).__name__)
            return Assessment(reasons=("detector_error",))
        reasons = [f"detector:{d}" for d in sorted(fired)]
        if outbound.unreadable and self.policy.sensitivity.unreadable == "sensitive":
            reasons += [f"unreadable:{kind}" for kind in sorted(outbound.unreadable)]
        return Assessment(reasons=tuple(reasons), detectors=fired)

    def _taint_lookup(self, request: Request) -> tuple[str, ...]:
        sessions = (request.session,) if request.session else ()
        digests = message_digests(request.messages)
        if not digests and not sessions:
            return ()
        try:
            store = self.audit
        except Exception as exc:  # fail closed: no store to ask means sensitive
            log.warning("taint lookup failed (%s); treating the request as sensitive",
                        type(exc).__name__)
            return ("taint_error",)
        return taint_lookup(store, digests, sessions)

    @property
    def taint_ttl(self) -> float:
        """Seconds a sensitive request's digests stay sensitive (``LF_TAINT_TTL`` or policy)."""
        ttl = self.settings.taint_ttl
        return ttl if ttl is not None else self.policy.sensitivity.taint_ttl_s

    def remember_sensitive(self, request: Request) -> None:
        """Remember a sensitive request's message digests and session in the audit store."""
        sessions = (request.session,) if request.session else ()
        digests = message_digests(request.messages)
        if digests or sessions:
            try:
                store = self.audit
            except Exception as exc:
                log.warning("could not open the audit store to remember taint (%s)",
                            type(exc).__name__)
                return
            taint_remember(store, digests, sessions, ttl_s=self.taint_ttl)

    async def _assess_and_decide(self, request: Request, out: _Outcome) -> Decision:
        """Assess (content and taint), decide, and remember the request if it is sensitive."""
        out.assessment = await self.aassess(request)
        try:
            decision = await self.adecide_request(request, assessment=out.assessment)
        except (PrivacyViolation, LocalUnavailable) as exc:
            if exc.sensitive_reasons:
                await asyncio.to_thread(self.remember_sensitive, request)
            raise
        out.decision = decision
        if decision.sensitive:
            await asyncio.to_thread(self.remember_sensitive, request)
        return decision

    def _scan(self, text: str) -> frozenset[str]:
        """Scan one string of a body, remembering the result by digest, never the text.

        Chat clients resend the whole history, tools and schemas every turn. A long
        string is keyed by its BLAKE2b digest (~1/20 of a scan); a short one by its
        length and Python's keyed string hash (SipHash, randomised per process), as a
        digest would cost as much as scanning it.
        """
        key: bytes | tuple[int, int]
        if len(text) < _SCAN_CACHE_MIN_CHARS:
            key = (len(text), hash(text))
        else:
            key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"),
                                  digest_size=16).digest()
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
        probed = self.health.stale()
        if probed:
            await self.health.refresh()
        if assessment is None and self.classifier is not None:
            assessment = await self.aassess(request)
        try:
            return self.decide_request(request, assessment=assessment)
        except LocalUnavailable as exc:
            again = self._cached_down(exc, probed)
            if not again:
                raise
            await self.health.refresh(again, force=True)
            return self.decide_request(request, assessment=assessment)

    def _cached_down(self, exc: LocalUnavailable, probed: list[str]) -> list[str]:
        """Local candidates found down by an earlier probe, to probe once more before failing.

        A cached "down" may be older than the local server (Ollama started a moment
        ago); a sensitive request must not fail on it for up to ``LF_PROBE_TTL``.
        """
        names = exc.candidates or self.policy.local_names
        return [n for n in names if n not in probed and n in self.health.status
                and self.health.destinations[n].is_local]

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
        probed = self.health.stale()
        if probed:
            self._loop.run(self.health.refresh(), timeout=30)
        # The classifier (if configured) calls the local model: run it on the loop.
        assessment = (self._loop.run(self.aassess(request), timeout=120)
                      if self.classifier is not None else None)
        try:
            return self.decide_request(request, assessment=assessment)
        except LocalUnavailable as exc:
            again = self._cached_down(exc, probed)
            if not again:
                raise
            self._loop.run(self.health.refresh(again, force=True), timeout=30)
            return self.decide_request(request, assessment=assessment)

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the router's private loop (where its pooled clients live)."""
        return self._loop.run(coro, timeout)

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: Request, decision: Decision, out: _Outcome,
                        op: Callable[[Provider, EgressTicket], Awaitable[T]]) -> tuple[T, str]:
        """Try the decision's chain in order; fail over on retryable failures.

        The policy and providers are read once, before the first await, so a reload
        while the request is in flight cannot change where it may go. On success
        ``out.decision`` names the destination that answered.
        """
        # Read together, before any await: the trusted networks parsed once per policy.
        policy, providers, trusted = self.policy, self.providers, self.health.trusted
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
            provider: Provider | None = None
            try:
                unconfigured = self.health.unconfigured.get(name)
                if unconfigured is not None:  # no key: fail before importing its SDK
                    raise AttemptFailed("not_configured", f"{name}: {unconfigured}")
                if not dest.is_local and self.spend.active and await self._hold_budget(
                        name, request, out, chain):
                    continue  # budget spent, on_exceeded: local
                # durability "intent": committed before anything is sent (AuditError if not).
                await self._intent(request, decision, out, dest)
                provider = self._provider(name, providers, policy)
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
                self.health.record_failure(
                    name, hard=failure.outcome in ("connect_error", "not_local"))
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
            self.health.record_success(name)
            out.decision = self._answered(decision, name, policy)
            if out.budget_local is not None:
                out.decision = dataclasses.replace(
                    out.decision, budget=out.budget_local,
                    reason=f"{out.decision.reason}; budget {out.budget_local!r} is spent: "
                           "sent to the local chain")
            return result, name
        if unsupported is not None and all(
                a.outcome == "unsupported_endpoint" for a in out.attempts):
            raise unsupported  # no candidate has the endpoint
        raise self._exhausted(decision, last, local_only=bool(request.local_only),
                              attempts=tuple(out.attempts))

    async def _hold_budget(self, name: str, request: Request, out: _Outcome,
                           chain: list[str]) -> bool:
        """Reserve budget for a cloud attempt; True when a spent budget sends it local.

        Raises:
            BudgetExceeded: a spent budget says ``refuse``.
        """
        if out.budget_local is not None:
            return True
        extra = len(json.dumps(request.extra, default=str)) if request.extra else 0
        bound = input_token_bound(request.texts(), len(request.messages), extra)
        got = await self.spend.reserve(name, request.client_key, bound, request.max_tokens)
        if got is None or isinstance(got, Reservation):
            out.reservation = got
            return False
        out.budget_local = got.name
        chain.extend(n for n in self.spend.local if n not in chain)
        return True

    def _release_budget(self, out: _Outcome) -> None:
        if out.reservation is not None:
            self.spend.settle(out.reservation, None)
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
                             f"{self._local_hint(decision, attempts)}",
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

    def _local_hint(self, decision: Decision, attempts: tuple[Attempt, ...]) -> str:
        """Say which local models were skipped as down or could not be reached, and what to do."""
        tried = {a.destination for a in attempts}
        skipped = [f"{n!r} ({self.health.status[n].detail})" for n in self.policy.local_names
                   if n not in tried and n in self.health.status and not self.health.is_up(n)]
        unreachable = [repr(a.destination) for a in attempts if a.outcome == "connect_error"
                       and a.destination in self.policy.local_names]
        said = []
        if skipped:
            said.append(f"the local model {', '.join(skipped)} was skipped as down")
        if unreachable:
            said.append(f"the local model {', '.join(unreachable)} is not running")
        if not said:
            return ""
        return (f"; {' and '.join(said)}: start it (for Ollama: `ollama serve`), "
                "then check with `llm-localfirst doctor`")

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
        return request.chat_body()

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
        out.audit_id, out.endpoint = audit_id, endpoint
        try:
            decision = await self._assess_and_decide(request, out)
            result, _ = await self._dispatch(request, decision, out, op)
            if isinstance(result, ChatResult):
                out.tokens_in, out.tokens_out = result.input_tokens, result.output_tokens
                out.completion_chars = len(result.text)
            return result, out.decision or decision, audit_id
        except asyncio.CancelledError as exc:
            out.outcome, out.error = "cancelled", exc
            raise
        except LocalFirstError as exc:
            exc_decision_id(exc, audit_id)
            out.outcome = "refused" if isinstance(
                exc, (PrivacyViolation, LocalUnavailable, BudgetExceeded)) \
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
                ``max_tokens``, ``temperature``, ``extra`` (pass-through body fields,
                scanned like the rest), ``session`` (a conversation id: once
                sensitive, it stays sensitive for the taint TTL).

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
        held: list[Provider] = []

        async def op(provider: Provider, ticket: EgressTicket) -> AsyncIterator[Mapping[str, Any]]:
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

        out = _Outcome()
        audit_id = new_id()
        out.audit_id, out.endpoint = audit_id, endpoint
        try:
            decision = await self._assess_and_decide(request, out)
            iterator, _ = await self._dispatch(request, decision, out, op)
        except BaseException as exc:
            out.outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else (
                "refused" if isinstance(exc, (PrivacyViolation, LocalUnavailable, BudgetExceeded))
                or (isinstance(exc, LocalFirstError) and not isinstance(exc, RoutingError))
                else "error")
            out.error = exc
            if isinstance(exc, LocalFirstError):
                exc_decision_id(exc, audit_id)
            self.record(request, out, endpoint=endpoint, audit_id=audit_id)
            raise
        provider = held[-1]
        return RoutedStream(self, request, out, audit_id, endpoint, iterator, first[-1],
                            release=lambda: self._unlease(provider))

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
            metadata=self._audit_metadata(request, out, d))
        self._emit(record)

    def _audit_metadata(self, request: Request, out: _Outcome,
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
        spent = out.outcome == "ok" and d is not None
        if spent and d is not None:
            usage = Usage(out.tokens_in or 0, out.tokens_out or 0)
            cost = self.spend.cost(d.destination, out.tokens_in, out.tokens_out)
            if cost is not None:
                meta["lf.cost_usd_micros"] = str(cost)
            elif d.target == "cloud":
                meta["lf.cost_usd_micros"] = "unpriced"
            self.ledger.record(d, usage)
        if out.reservation is not None:
            self.spend.settle(out.reservation, usage if spent else None)
            out.reservation = None
        return meta

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

    def record_run(self, *, face: str, endpoint: str, outcome: str, kind: str = "bulk",
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
        self.spend.close()  # settled spend written back, budget leases handed back
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
        self.spend.close()  # settled spend written back, budget leases handed back
        self._close_writer()

    def _close_writer(self) -> None:
        with self._audit_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

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
