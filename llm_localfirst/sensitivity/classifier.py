"""The opt-in content classifier: one label per distinct content, failing closed.

This module owns the wrapper every classifier goes through (the policy's local
model, or a team's own ``Router(..., classifier=fn)``): the digest cache, the
timeout, the strict parse of the answer, and the fail-closed rule. An error, a
timeout, or an answer that is not exactly one of the labels makes the request
sensitive (``classifier_error``, ``classifier_timeout``, ``classifier_invalid``); a
sensitive label adds ``classifier:<label>``. A label never removes sensitivity.

It must never keep text: the cache is keyed by a BLAKE2b digest of the content and
holds labels only. It never chooses where a request goes (that is ``policy.decide``).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLASSIFIER_SYSTEM_PROMPT",
    "Classifier",
    "ClassifierResult",
    "ClassifyFn",
    "build_classifier",
    "classifier_messages",
    "parse_label",
]

log = logging.getLogger("llm_localfirst")

#: ``fn(text) -> label``, sync or async.
ClassifyFn = Callable[[str], "str | Awaitable[str]"]

CLASSIFIER_SYSTEM_PROMPT = (
    "You are a text classifier. Read the text and answer with exactly one label from "
    "this list: {labels}. Answer with the label only: one word, no punctuation, no "
    "explanation."
)
#: Characters of content shown to the classifier model: the head and the tail.
_HEAD, _TAIL = 6000, 2000


def classifier_messages(text: str, labels: Sequence[str]) -> list[dict[str, str]]:
    """The chat messages that ask a local model for exactly one label."""
    shown = text if len(text) <= _HEAD + _TAIL else f"{text[:_HEAD]}\n[...]\n{text[-_TAIL:]}"
    return [
        {"role": "system", "content": CLASSIFIER_SYSTEM_PROMPT.format(labels=", ".join(labels))},
        {"role": "user", "content": f"Text:\n<<<\n{shown}\n>>>\nLabel:"},
    ]


def parse_label(answer: object, labels: Sequence[str]) -> str | None:
    """The label ``answer`` names, by exact match after strip and case-fold; else ``None``."""
    if not isinstance(answer, str):
        return None
    label = answer.strip().casefold()
    return label if label in labels else None


@dataclass(frozen=True, slots=True)
class ClassifierResult:
    """One classification.

    Attributes:
        label: The label, or ``None`` when the classifier failed.
        ms: Wall time (0.0 when served from the cache).
        cached: Whether the label came from the digest cache.
        reason: The sensitivity reason it adds (``classifier:medical``,
            ``classifier_timeout``...), or ``None``.
    """

    label: str | None
    ms: float
    cached: bool
    reason: str | None


class Classifier:
    """The fail-closed wrapper around a classify function, with a bounded digest cache.

    Args:
        fn: ``fn(text) -> label``, sync (run in a thread) or async.
        labels: Every valid label (compared case-folded).
        sensitive: Labels that make a request sensitive.
        timeout_ms: Longer than this counts as ``classifier_timeout``.
        cache_size: Most digests remembered (least recently used dropped first).
        destination: The local destination that answers, for display.
    """

    def __init__(
        self,
        fn: ClassifyFn,
        *,
        labels: Sequence[str],
        sensitive: Sequence[str] = (),
        timeout_ms: int = 1500,
        cache_size: int = 4096,
        destination: str | None = None,
    ) -> None:
        self.fn = fn
        self.labels = tuple(v.strip().casefold() for v in labels)
        self.sensitive = frozenset(v.strip().casefold() for v in sensitive)
        self.timeout = timeout_ms / 1000
        self.timeout_ms = timeout_ms
        self.destination = destination
        # Digest -> the cached result (label, 0 ms, cached=True), built once per label.
        self._cache: OrderedDict[bytes, ClassifierResult] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._cached = {label: self._result(label, 0.0, True) for label in self.labels}
        self._inflight: dict[tuple[int, bytes], asyncio.Future[ClassifierResult]] = {}
        # An async function, or an object whose __call__ is one.
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            type(fn).__call__
        )

    @staticmethod
    def digest(texts: Sequence[str]) -> bytes:
        """The cache key of a request's content (never the text itself)."""
        joined = texts[0] if len(texts) == 1 else "\x00\x1f".join(texts)
        return hashlib.blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def _result(self, label: str, ms: float, cached: bool) -> ClassifierResult:
        reason = f"classifier:{label}" if label in self.sensitive else None
        return ClassifierResult(label, ms, cached, reason)

    def lookup(self, key: bytes) -> ClassifierResult | None:
        """The cached result for a digest, or ``None`` (no I/O, no lock: C-level dict ops)."""
        hit = self._cache.get(key)
        if hit is not None:
            try:  # noqa: SIM105 - contextlib.suppress costs ~0.3 µs on the cached path
                self._cache.move_to_end(key)
            except KeyError:  # evicted by another thread in between: still a valid answer
                pass
        return hit

    async def classify(self, texts: Sequence[str]) -> ClassifierResult:
        """Label the content, at most once per distinct content; never raises.

        Returns:
            A result whose ``reason`` is set when the request must count as sensitive.
        """
        key = self.digest(texts)
        hit = self.lookup(key)
        if hit is not None:
            return hit
        # Single flight: identical content arriving together asks the model once.
        flight = (id(asyncio.get_running_loop()), key)
        pending = self._inflight.get(flight)
        if pending is not None:
            started = time.perf_counter()
            try:
                first = await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this caller was cancelled
            else:
                ms = round((time.perf_counter() - started) * 1000, 3)
                return ClassifierResult(first.label, ms, first.label is not None, first.reason)
        future: asyncio.Future[ClassifierResult] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        try:
            result = await self._ask(key, texts)
            future.set_result(result)
            return result
        finally:
            if not future.done():
                future.cancel()  # the waiters ask the model themselves
            self._inflight.pop(flight, None)

    async def _ask(self, key: bytes, texts: Sequence[str]) -> ClassifierResult:
        started = time.perf_counter()
        reason: str
        try:
            answer = await asyncio.wait_for(self._call("\n\n".join(texts)), self.timeout)
        except TimeoutError:
            reason = "classifier_timeout"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # fail closed: a broken classifier means sensitive
            log.warning(
                "classifier failed (%s); treating the request as sensitive", type(exc).__name__
            )
            reason = "classifier_error"
        else:
            ms = round((time.perf_counter() - started) * 1000, 3)
            label = parse_label(answer, self.labels)
            if label is not None:
                with self._lock:
                    self._cache[key] = self._cached[label]
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
                return self._result(label, ms, False)
            reason = "classifier_invalid"
        ms = round((time.perf_counter() - started) * 1000, 3)
        return ClassifierResult(None, ms, False, reason)

    async def _call(self, text: str) -> Any:
        if self._is_async:
            return await self.fn(text)  # type: ignore[misc]
        result = await asyncio.to_thread(self.fn, text)
        if inspect.isawaitable(result):
            return await result
        return result


def build_classifier(
    config: Any,
    hook: Any,
    ask_model: Callable[[str, list[dict[str, str]]], Awaitable[str]],
) -> Classifier | None:
    """The classifier a policy (``sensitivity.classifier``) and ``Router(classifier=)`` ask for.

    Args:
        config: The policy's ``ClassifierPolicy``, or ``None``.
        hook: ``Router(classifier=...)``: a :class:`Classifier`, a callable, or ``None``.
        ask_model: ``ask_model(destination, messages) -> answer`` on the local model.

    Raises:
        ValueError: a bare callable with no labels to check its answers against.
    """
    if isinstance(hook, Classifier):
        return hook
    if config is None:
        if hook is None:
            return None
        raise ValueError(
            "Router(classifier=fn) needs labels: configure "
            "sensitivity.classifier (labels, sensitive, timeout_ms) in the policy, "
            "or pass Classifier(fn, labels=[...], sensitive=[...])"
        )
    labels = tuple(config.labels)
    fn: ClassifyFn
    if hook is not None:
        fn = hook
    else:
        destination = config.destination

        async def fn(text: str) -> str:
            return await ask_model(destination, classifier_messages(text, labels))

    return Classifier(
        fn,
        labels=labels,
        sensitive=config.sensitive,
        timeout_ms=config.timeout_ms,
        destination=None if hook is not None else config.destination,
    )
