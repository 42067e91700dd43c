"""AuditWriter: off the caller's thread, batched, flushed on close and at exit, nothing lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from llm_localfirst.audit import (
    AuditFilter,
    AuditRecord,
    AuditWriter,
    MemoryAuditStore,
    SQLiteAuditStore,
)

from .conftest import MakeRecord, finish, spawn_python

WAIT = 30.0  # upper bound for every wait; the happy path takes milliseconds


class RecordingStore(MemoryAuditStore):
    """Remembers which thread wrote each batch, and how big it was; can be told to block."""

    def __init__(self) -> None:
        super().__init__()
        self.writer_threads: set[int] = set()
        self.batch_sizes: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def write_many(self, records: Sequence[AuditRecord]) -> None:
        assert self.gate.wait(WAIT)
        self.writer_threads.add(threading.get_ident())
        self.batch_sizes.append(len(records))
        super().write_many(records)


class FlakyStore(MemoryAuditStore):
    """Fails the first ``failures`` writes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def write_many(self, records: Sequence[AuditRecord]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError("disk full")
        super().write_many(records)


def test_concurrent_submitters_lose_no_record(tmp_path: Path, make_record: MakeRecord) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    writer = AuditWriter(store, batch_size=64, flush_interval=0.001)
    submitted: list[list[str]] = [[] for _ in range(8)]

    def submit_many(slot: list[str]) -> None:
        for _ in range(500):
            record = make_record()
            slot.append(record.id)
            writer.submit(record)

    threads = [threading.Thread(target=submit_many, args=(slot,)) for slot in submitted]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert writer.close(timeout=WAIT)

    try:
        assert store.count(AuditFilter()) == 4000
        ids = {
            r.id
            for offset in range(0, 4000, 1000)
            for r in store.query(AuditFilter(limit=1000, offset=offset))
        }
        assert ids == {i for slot in submitted for i in slot}
        assert writer.stats.written == 4000
        assert writer.stats.pending == 0
    finally:
        store.close()


def test_submit_returns_at_once_and_writes_happen_on_the_writer_thread(
    make_record: MakeRecord,
) -> None:
    store = RecordingStore()
    store.gate.clear()  # the store hangs, as a slow disk would
    writer = AuditWriter(store, batch_size=100, flush_interval=0)

    for _ in range(1000):
        writer.submit(make_record())  # would hang here if submit did any I/O

    assert store.count(AuditFilter()) == 0
    store.gate.set()
    assert writer.close(timeout=WAIT)
    assert store.count(AuditFilter()) == 1000
    assert threading.get_ident() not in store.writer_threads
    assert max(store.batch_sizes) <= 100
    assert len(store.batch_sizes) < 1000  # batched, not one write per record


def test_close_writes_everything_submitted_even_inside_a_long_flush_interval(
    make_record: MakeRecord,
) -> None:
    store = MemoryAuditStore()
    writer = AuditWriter(store, flush_interval=3600)
    for _ in range(10):
        writer.submit(make_record())

    assert writer.close(timeout=WAIT)
    assert writer.close(timeout=WAIT)  # idempotent
    assert store.count(AuditFilter()) == 10


def test_flush_makes_everything_submitted_so_far_durable_without_waiting_the_interval(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    writer = AuditWriter(store, flush_interval=3600)
    try:
        records = [make_record() for _ in range(5)]
        for record in records:
            writer.submit(record)

        assert writer.flush(timeout=WAIT)
        reader = SQLiteAuditStore(tmp_path / "audit.db")  # another connection sees them
        try:
            assert reader.count(AuditFilter()) == 5
        finally:
            reader.close()
        assert writer.flush(timeout=WAIT)  # nothing pending: returns at once
    finally:
        writer.close(timeout=WAIT)
        store.close()


def test_flush_reports_a_timeout_instead_of_hanging(make_record: MakeRecord) -> None:
    store = RecordingStore()
    store.gate.clear()
    writer = AuditWriter(store, flush_interval=0)
    writer.submit(make_record())

    assert writer.flush(timeout=0.05) is False
    store.gate.set()
    assert writer.flush(timeout=WAIT)
    assert writer.close(timeout=WAIT)


def test_a_failed_write_is_logged_and_retried_once(
    make_record: MakeRecord, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(failures=1)
    writer = AuditWriter(store, flush_interval=0, retry_delay=0)
    record = make_record(metadata={"note": "PRIVATE-MARKER"}, tags=("PRIVATE-MARKER",))

    with caplog.at_level(logging.WARNING, logger="llm_localfirst.audit"):
        writer.submit(record)
        assert writer.close(timeout=WAIT)

    assert store.get(record.id) == record
    assert store.calls == 2
    assert writer.stats.failed == 0
    assert "failed (OSError: disk full); retrying once" in caplog.text
    assert "PRIVATE-MARKER" not in caplog.text


def test_a_write_that_fails_twice_is_logged_with_ids_and_the_caller_never_sees_it(
    make_record: MakeRecord, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(failures=2)
    writer = AuditWriter(store, flush_interval=0, retry_delay=0)
    lost = make_record(metadata={"note": "PRIVATE-MARKER"})
    kept = make_record()

    with caplog.at_level(logging.WARNING, logger="llm_localfirst.audit"):
        writer.submit(lost)
        assert writer.flush(timeout=WAIT)
        writer.submit(kept)
        assert writer.close(timeout=WAIT)

    assert store.get(lost.id) is None
    assert store.get(kept.id) == kept  # the writer carried on
    assert writer.stats.failed == 1
    assert writer.stats.written == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert lost.id in errors[0].getMessage()
    assert "PRIVATE-MARKER" not in caplog.text


def test_a_record_submitted_after_close_is_dropped_and_logged(
    make_record: MakeRecord, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryAuditStore()
    writer = AuditWriter(store)
    assert writer.close(timeout=WAIT)
    late = make_record()

    with caplog.at_level(logging.ERROR, logger="llm_localfirst.audit"):
        writer.submit(late)

    assert store.count(AuditFilter()) == 0
    assert writer.stats.dropped == 1
    assert f"audit record {late.id} dropped" in caplog.text
    assert writer.flush(timeout=WAIT)  # after close there is nothing left to wait for


def test_invalid_writer_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        AuditWriter(MemoryAuditStore(), batch_size=0)
    with pytest.raises(ValueError, match="flush_interval and retry_delay"):
        AuditWriter(MemoryAuditStore(), flush_interval=-1)


def test_a_script_that_never_closes_its_writer_still_gets_every_row_at_exit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    script = """
        writer = AuditWriter(SQLiteAuditStore(sys.argv[1]), flush_interval=3600)
        for _ in range(300):
            writer.submit(record())
        # no close(), no flush(): the atexit hook must write them
    """
    finish(spawn_python(script, str(path)))

    store = SQLiteAuditStore(path)
    try:
        assert store.count(AuditFilter()) == 300
    finally:
        store.close()
