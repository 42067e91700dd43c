"""`AuditWriter`: gets audit records off the request path and into a store, in batches.

This module owns the queue between request handling and the store: `submit` only
enqueues (no I/O on the caller's thread or event loop), one daemon thread drains
the queue into `AuditStore.write_many` batches, `flush` and `close` wait for what
was submitted before them, and an ``atexit`` hook flushes at interpreter exit.

Durability (`DURABILITY_MODES`): under ``batch`` a decision row is committed within
``flush_interval`` of the answer, so a SIGKILL can lose the last batch. Under
``intent`` the router also calls `AuditWriter.aintent` before each upstream
attempt, which returns only once an `AuditIntent` is committed; concurrent
intents share one commit (group commit on a second thread).

It must never raise into the caller because of a storage failure (failures are
logged to the ``llm_localfirst.audit`` logger and retried once) and never log
record contents beyond ids and counts.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from llm_localfirst.audit.intent import AuditIntent
from llm_localfirst.audit.record import AuditRecord
from llm_localfirst.audit.store import AuditStore
from llm_localfirst.errors import AuditError

__all__ = ["DURABILITY_MODES", "AuditWriter", "WriterStats"]

#: ``batch``: decision rows in batches after the answer. ``intent``: an intent row is
#: committed before each upstream attempt as well.
DURABILITY_MODES = ("batch", "intent")
_IntentDone = Callable[[BaseException | None], None]


class _LoopWaiter:
    """An `AuditWriter.aintent` caller: its future, settled on its own loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        self.loop = loop
        self.future = future


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # the waiter was cancelled
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


logger = logging.getLogger("llm_localfirst.audit")


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters of an `AuditWriter` since it was created.

    Attributes:
        submitted: Records accepted by `AuditWriter.submit`.
        written: Records the store accepted.
        failed: Records lost because the store failed twice.
        dropped: Records refused because the writer was already closed.
    """

    submitted: int
    written: int
    failed: int
    dropped: int

    @property
    def pending(self) -> int:
        """Records accepted but not yet written or given up on."""
        return self.submitted - self.written - self.failed


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class _Stop:
    __slots__ = ()


_STOP = _Stop()


class AuditWriter:
    """Write audit records to ``store`` from a background thread, in batches.

    The writer does not own ``store``: close the store after the writer.

    Args:
        store: Where records go.
        batch_size: Most records per `AuditStore.write_many` call.
        flush_interval: Seconds the thread waits for more records to join a batch
            once it holds one; this bounds how stale the store is under light load.
        retry_delay: Seconds between a failed write and its one retry.
        durability: ``"batch"`` or ``"intent"`` (see `DURABILITY_MODES`); the router
            reads it to decide whether to call `aintent` before dispatch.

    Example:
        >>> from llm_localfirst.audit import MemoryAuditStore
        >>> writer = AuditWriter(MemoryAuditStore())
        >>> writer.close()
        True
    """

    def __init__(
        self,
        store: AuditStore,
        *,
        batch_size: int = 256,
        flush_interval: float = 0.05,
        retry_delay: float = 0.1,
        durability: str = "batch",
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {DURABILITY_MODES}, got {durability!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if flush_interval < 0 or retry_delay < 0:
            raise ValueError("flush_interval and retry_delay must be 0 or more seconds")
        self._store = store
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_delay = retry_delay
        self._queue: queue.SimpleQueue[AuditRecord | _Flush | _Stop] = queue.SimpleQueue()
        self._lock = threading.Lock()  # orders submit against close: nothing lands after _STOP
        self._wake = threading.Event()  # cuts the batching wait short for flush() and close()
        self._closed = False
        self._submitted = self._written = self._failed = self._dropped = 0
        self.durability = durability
        self._intents: queue.SimpleQueue[tuple[AuditIntent, _IntentDone | _LoopWaiter] | _Stop] = (
            queue.SimpleQueue()
        )
        self._intent_thread: threading.Thread | None = None
        self._thread = threading.Thread(
            target=self._run, name="llm-localfirst-audit-writer", daemon=True
        )
        self._thread.start()
        # Safety net for scripts that never call close(). Daemon threads still run
        # while atexit hooks do, so the final flush can complete.
        atexit.register(self.close)

    @property
    def stats(self) -> WriterStats:
        """A snapshot of the writer's counters."""
        with self._lock:
            return WriterStats(self._submitted, self._written, self._failed, self._dropped)

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed

    def submit(self, record: AuditRecord) -> None:
        """Queue ``record`` for writing and return at once; never does I/O, never raises.

        After `close`, the record is dropped and an error is logged with its id.
        """
        with self._lock:
            if not self._closed:
                self._submitted += 1
                self._queue.put(record)
                return
            self._dropped += 1
        logger.error("audit record %s dropped: the AuditWriter is closed", record.id)

    def intent(self, intent: AuditIntent, timeout: float | None = 30.0) -> None:
        """Commit ``intent`` and return only once it is durable. Blocks: not on an event loop.

        Raises:
            AuditError: The store refused it, the writer is closed, or ``timeout`` passed.
        """
        done = threading.Event()
        outcome: list[BaseException | None] = []

        def finished(error: BaseException | None) -> None:
            outcome.append(error)
            done.set()

        self._enqueue_intent(intent, finished)
        if not done.wait(timeout):
            raise AuditError(
                f"audit intent {intent.id} not committed within {timeout}s",
                location=self._store.location,
            )
        if outcome[0] is not None:
            raise outcome[0]

    async def aintent(self, intent: AuditIntent) -> None:
        """Async `intent`: await the commit without blocking the event loop.

        Raises:
            AuditError: The store refused it or the writer is closed.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        # Settled by the intents thread with one call_soon_threadsafe per loop and
        # commit (one wake-up of the loop for the whole group, not one per request).
        self._enqueue_intent(intent, _LoopWaiter(loop, future))
        await future

    def _enqueue_intent(self, intent: AuditIntent, done: _IntentDone | _LoopWaiter) -> None:
        with self._lock:
            if self._closed:
                raise AuditError(
                    f"audit intent {intent.id} refused: the AuditWriter is closed",
                    location=self._store.location,
                )
            if self._intent_thread is None:
                self._intent_thread = threading.Thread(
                    target=self._run_intents, name="llm-localfirst-audit-intents", daemon=True
                )
                self._intent_thread.start()
            self._intents.put((intent, done))

    def _run_intents(self) -> None:
        while True:
            item = self._intents.get()
            batch: list[tuple[AuditIntent, _IntentDone | _LoopWaiter]] = []
            stopping = False
            while True:
                if isinstance(item, _Stop):
                    stopping = True
                else:
                    batch.append(item)
                try:
                    item = self._intents.get_nowait()
                except queue.Empty:
                    break
            if batch:  # one commit for every intent that arrived meanwhile (group commit)
                error = self._write_intents([intent for intent, _ in batch])
                loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
                for _, done in batch:
                    if isinstance(done, _LoopWaiter):
                        loops.setdefault(done.loop, []).append(done.future)
                    else:
                        done(error)
                for loop, futures in loops.items():
                    try:
                        loop.call_soon_threadsafe(_settle, futures, error)
                    except RuntimeError:  # the waiters' event loop is closed
                        logger.debug("audit intent waiters vanished")
            if stopping:
                return

    def _write_intents(self, intents: list[AuditIntent]) -> AuditError | None:
        for attempt in (1, 2):
            try:
                self._store.write_intents(intents)
            except Exception as exc:  # any store failure: retry once, then fail the requests
                if attempt == 1:
                    continue
                logger.error(
                    "audit intents %s..%s not committed (%s: %s)",
                    intents[0].id,
                    intents[-1].id,
                    type(exc).__name__,
                    exc,
                )
                if isinstance(exc, AuditError):
                    return exc
                error = AuditError(
                    f"audit intent not committed: {type(exc).__name__}: {exc}",
                    location=self._store.location,
                )
                error.__cause__ = exc
                return error
            return None
        return None  # pragma: no cover - the loop always returns

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record submitted before this call has been written.

        Records whose write failed twice count as done (see `stats`). Call it from a
        worker thread, not an event loop: it blocks.

        Args:
            timeout: Most seconds to wait; ``None`` waits as long as it takes.

        Returns:
            ``True`` when everything was processed, ``False`` on timeout.
        """
        marker = _Flush()
        with self._lock:
            closed = self._closed
            if not closed:
                self._queue.put(marker)
                self._wake.set()
        if closed:  # close() already queued the final flush
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write everything submitted so far, then stop the thread. Idempotent.

        Args:
            timeout: Most seconds to wait for the final writes.

        Returns:
            ``True`` when the thread finished, ``False`` on timeout.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
                self._intents.put(_STOP)
                self._wake.set()
            intents = self._intent_thread
        atexit.unregister(self.close)
        if intents is not None:
            intents.join(timeout)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if not isinstance(item, _Flush | _Stop):
                # Gather a batch without a wake-up per record: puts made while this
                # thread waits on the event notify nobody. flush()/close() set it.
                self._wake.wait(self._flush_interval)
            self._wake.clear()
            batch: list[AuditRecord] = []
            markers: list[_Flush] = []
            while True:
                if isinstance(item, _Stop):
                    stopping = True
                    break
                if isinstance(item, _Flush):
                    markers.append(item)
                else:
                    batch.append(item)
                    if len(batch) >= self._batch_size:
                        self._write(batch)
                        batch = []
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for marker in markers:
                marker.done.set()
            self._checkpoint()

    def _checkpoint(self) -> None:
        # A SQLite store's WAL is copied back here, between batches, not in a commit
        # a request waits for (see `SQLiteAuditStore.checkpoint`).
        checkpoint = getattr(self._store, "checkpoint", None)
        if checkpoint is None:
            return
        try:
            checkpoint()
        except Exception as exc:  # the next one retries; the WAL only grows meanwhile
            logger.warning(
                "audit checkpoint of %s failed (%s: %s)",
                self._store.location,
                type(exc).__name__,
                exc,
            )

    def _write(self, batch: list[AuditRecord]) -> None:
        for attempt in (1, 2):
            try:
                self._store.write_many(batch)
            except Exception as exc:  # any store failure: log, retry once, never propagate
                if attempt == 1:
                    logger.warning(
                        "audit write of %d records to %s failed (%s: %s); retrying once",
                        len(batch),
                        self._store.location,
                        type(exc).__name__,
                        exc,
                    )
                    time.sleep(self._retry_delay)
                    continue
                with self._lock:
                    self._failed += len(batch)
                logger.error(
                    "audit write of %d records to %s failed twice (%s: %s); "
                    "records %s..%s are lost",
                    len(batch),
                    self._store.location,
                    type(exc).__name__,
                    exc,
                    batch[0].id,
                    batch[-1].id,
                )
            else:
                with self._lock:
                    self._written += len(batch)
            return
