"""What is known of a request before it is sent: its sensitivity, then the decision.

This module owns the :class:`Assessor`, one per installed policy: the detector scan
over every string a request would send (cached by digest, never by text), the taint
lookup and remembering (message digests and sessions in the audit store), the
opt-in content classifier, and deciding (refreshing stale probes, then the pure
``policy.decide``). Every source can only raise sensitivity, and any failure
raises it (fail closed). It never dispatches and never writes audit rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .audit import AuditStore
from .config import Settings
from .errors import LocalUnavailable, PolicyError
from .health import Health
from .policy import Assessment, Policy, decide
from .request import Decision, Request
from .sensitivity import scanner_for
from .sensitivity.classifier import build_classifier
from .sensitivity.egress import walk
from .sensitivity.taint import alookup as taint_alookup
from .sensitivity.taint import lookup as taint_lookup
from .sensitivity.taint import message_digests
from .sensitivity.taint import remember as taint_remember

__all__ = ["Assessor", "with_label", "with_taint"]

log = logging.getLogger("llm_localfirst")
_SCAN_CACHE_MIN_CHARS = 512
_SCAN_CACHE_SIZE = 8192
AskLocal = Callable[[str, list[dict[str, str]]], Awaitable[str]]
RunSync = Callable[[Coroutine[Any, Any, Any], float], Any]


def with_taint(assessment: Assessment, taint: tuple[str, ...]) -> Assessment:
    """The assessment with the taint reasons added."""
    if not taint:
        return assessment
    return Assessment(reasons=(*assessment.reasons, *taint), detectors=assessment.detectors)


def with_label(assessment: Assessment, got: Any) -> Assessment:
    """The assessment with a classifier result (label and any sensitivity it implies)."""
    reasons = assessment.reasons if got.reason is None else (*assessment.reasons, got.reason)
    # Built directly: dataclasses.replace costs ~1 µs more on the cached path.
    return Assessment(reasons, assessment.detectors, got.label, got.ms, got.cached)


class Assessor:
    """Scans, taint, the classifier and deciding, for one policy (rebuilt on reload).

    Args:
        policy: The policy whose ``sensitivity`` section configures it.
        settings: For ``LF_TAINT_TTL``.
        store: Opens (or returns) the audit store that holds the taint.
        classifier: A user's own classifier (``Router(classifier=...)``), if any.
        ask_local_model: How the policy classifier calls its local destination.
        health: The reachability of ``policy``'s destinations (probed before deciding).
        run_sync: Runs a coroutine on the router's private loop (the sync :meth:`decide`).

    Raises:
        PolicyError: the classifier configuration cannot be built.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        settings: Settings,
        store: Callable[[], AuditStore],
        classifier: Any = None,
        ask_local_model: AskLocal,
        health: Health,
        run_sync: RunSync,
    ) -> None:
        self.policy = policy
        self.health = health
        self._run = run_sync
        self.settings = settings
        self._store = store
        self._opened: AuditStore | None = None
        # The taint keys of the request seen last: a sensitive request's keys are read
        # once for the lookup and again to remember them; hashing its history once is enough.
        self._last_keys: tuple[Request, list[str], tuple[str, ...]] | None = None
        self.scanner = scanner_for(policy.sensitivity.detectors)
        self.scan_cache: dict[bytes | tuple[int, int], frozenset[str]] = {}
        try:
            self.classifier = build_classifier(
                policy.sensitivity.classifier, classifier, ask_local_model
            )
        except ValueError as exc:
            raise PolicyError(str(exc), source="<classifier>") from None

    @property
    def taint_ttl(self) -> float:
        """Seconds a sensitive request's digests stay sensitive (``LF_TAINT_TTL`` or policy)."""
        ttl = self.settings.taint_ttl
        return ttl if ttl is not None else self.policy.sensitivity.taint_ttl_s

    def assess(self, request: Request) -> Assessment:
        """Content and taint (read synchronously), and the classifier's cached label only.

        With a classifier and no cached label the request is sensitive
        (``classifier_not_run``): this path does no I/O but the taint read.
        """
        assessment = with_taint(self.content(request), self.taint(request))
        if self.classifier is None:
            return assessment
        clf = self.classifier
        got = clf.lookup(clf.digest(self._classified_texts(request)))
        if got is None:
            return dataclasses.replace(
                assessment, reasons=(*assessment.reasons, "classifier_not_run")
            )
        return with_label(assessment, got)

    async def aassess(self, request: Request) -> Assessment:
        """:meth:`assess` for the event loop (:meth:`ataint`), with the classifier run."""
        content = self.content(request)
        if request.messages or request.session is not None:
            content = with_taint(content, await self.ataint(request))
        if self.classifier is None:
            return content
        got = await self.classifier.classify(self._classified_texts(request))
        return with_label(content, got)

    @staticmethod
    def _classified_texts(request: Request) -> list[str]:
        """What the classifier reads: the messages, or for the other endpoints (embeddings,
        completions, responses) every string of the body that will be sent."""
        if request.messages or request.body is None:
            return request.texts()
        return walk(request.outbound()).strings

    def content(self, request: Request) -> Assessment:
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
            log.warning(
                "detector failed (%s); treating the request as sensitive", type(exc).__name__
            )
            return Assessment(reasons=("detector_error",))
        reasons = [f"detector:{d}" for d in sorted(fired)]
        if outbound.unreadable and self.policy.sensitivity.unreadable == "sensitive":
            reasons += [f"unreadable:{kind}" for kind in sorted(outbound.unreadable)]
        return Assessment(reasons=tuple(reasons), detectors=fired)

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
            key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        cache = self.scan_cache
        found = cache.get(key)
        if found is None:
            found = self.scanner.scan(text)
            if len(cache) >= _SCAN_CACHE_SIZE:
                cache.clear()
            cache[key] = found
        return found

    def _taint_keys(self, request: Request) -> tuple[list[str], tuple[str, ...]]:
        """The request's message digests and session, computed once per request."""
        last = self._last_keys
        if last is not None and last[0] is request:
            return last[1], last[2]
        digests = message_digests(request.messages)
        sessions = (request.session,) if request.session else ()
        self._last_keys = (request, digests, sessions)
        return digests, sessions

    def taint(self, request: Request) -> tuple[str, ...]:
        """``taint:*`` reasons from earlier sensitive requests (blocking: reads the store)."""
        digests, sessions = self._taint_keys(request)
        if not digests and not sessions:
            return ()
        try:
            store = self._store()
        except Exception as exc:  # fail closed: no store to ask means sensitive
            log.warning(
                "taint lookup failed (%s); treating the request as sensitive", type(exc).__name__
            )
            return ("taint_error",)
        return taint_lookup(store, digests, sessions)

    async def ataint(self, request: Request) -> tuple[str, ...]:
        """:meth:`taint` for the event loop: read on the loop when the store's reads are
        inline (memory, SQLite in WAL mode), else in a worker thread (``taint.alookup``)."""
        digests, sessions = self._taint_keys(request)
        if not digests and not sessions:
            return ()
        store = self._opened
        if store is None:  # the first use may open (and migrate) the store: off the loop
            try:
                store = self._opened = await asyncio.to_thread(self._store)
            except Exception as exc:  # fail closed: no store to ask means sensitive
                log.warning(
                    "taint lookup failed (%s); treating the request as sensitive",
                    type(exc).__name__,
                )
                return ("taint_error",)
        return await taint_alookup(store, digests, sessions)

    def remember(self, request: Request) -> None:
        """Remember a sensitive request's message digests and session (blocking)."""
        digests, sessions = self._taint_keys(request)
        if digests or sessions:
            try:
                store = self._store()
            except Exception as exc:
                log.warning(
                    "could not open the audit store to remember taint (%s)", type(exc).__name__
                )
                return
            taint_remember(store, digests, sessions, ttl_s=self.taint_ttl)

    # ------------------------------------------------------------------ decide

    def decide(self, request: Request) -> Decision:
        """Refresh stale probes (on the private loop), then decide. Writes no row.

        Raises:
            ModelNotAllowed, PrivacyViolation, LocalUnavailable: see :func:`policy.decide`.
        """
        health = self.health
        probed = health.stale()
        if probed:
            self._run(health.refresh(), 30)
        # The classifier (if configured) calls the local model: run it on the loop.
        assessment = self._run(self.aassess(request), 120) if self.classifier is not None else None
        try:
            return self._decide_now(request, assessment)
        except LocalUnavailable as exc:
            again = self._cached_down(exc, probed)
            if not again:
                raise
            self._run(health.refresh(again, force=True), 30)
            return self._decide_now(request, assessment)

    async def adecide(self, request: Request, *, assessment: Assessment | None = None) -> Decision:
        """Refresh stale probes of the candidates, then decide. Writes no row.

        Raises:
            ModelNotAllowed, PrivacyViolation, LocalUnavailable: see :func:`policy.decide`.
        """
        health = self.health
        probed = health.stale()
        if probed:
            await health.refresh()
        if assessment is None and self.classifier is not None:
            assessment = await self.aassess(request)
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
            assessment = self.assess(request)
        return decide(self.policy, request, assessment=assessment, is_up=self.health.is_up)

    def _cached_down(self, exc: LocalUnavailable, probed: list[str]) -> list[str]:
        """Local candidates found down by an earlier probe, to probe once more before failing.

        A cached "down" may be older than the local server (Ollama started a moment
        ago); a sensitive request must not fail on it for up to ``LF_PROBE_TTL``.
        """
        health = self.health
        names = exc.candidates or self.policy.local_names
        return [
            n
            for n in names
            if n not in probed and n in health.status and health.destinations[n].is_local
        ]
