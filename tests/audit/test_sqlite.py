"""SQLiteAuditStore: file handling, pragmas, and sharing one file across threads and processes."""

from __future__ import annotations

import sqlite3
import stat
import sys
import threading
from pathlib import Path

import pytest

from llm_localfirst.audit import AuditFilter, SQLiteAuditStore
from llm_localfirst.errors import AuditError

from .conftest import MakeRecord, finish, spawn_python


def test_opening_creates_missing_parent_directories_and_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "audit.db"
    store = SQLiteAuditStore(path)
    store.close()

    assert path.is_file()
    assert store.location == str(path)
    if sys.platform != "win32":  # POSIX permission bits only
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_the_file_uses_wal_and_connections_use_synchronous_normal(tmp_path: Path) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        with store._pool.connection() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    finally:
        store.close()


def test_reopening_an_existing_file_keeps_its_rows(tmp_path: Path, make_record: MakeRecord) -> None:
    record = make_record()
    first = SQLiteAuditStore(tmp_path / "audit.db")
    first.write_many([record])
    first.close()

    second = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        assert second.get(record.id) == record
    finally:
        second.close()


def test_readers_proceed_and_a_write_locked_too_long_is_an_audit_error(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db", busy_timeout=0.2)
    record = make_record()
    store.write_many([record])
    other = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock

        assert store.get(record.id) == record  # WAL: reads proceed
        with pytest.raises(AuditError, match="locked") as caught:
            store.write_many([make_record()])  # writes wait busy_timeout, then fail
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)

        other.execute("ROLLBACK")
        store.write_many([make_record()])
        assert store.count(AuditFilter()) == 2
    finally:
        other.close()
        store.close()


def test_threads_can_read_while_another_thread_writes(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                store.query(AuditFilter(limit=10))
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for _ in range(50):
            store.write_many([make_record() for _ in range(20)])
    finally:
        done.set()
        for t in readers:
            t.join(timeout=30)
        store.close()
    assert errors == []


def test_two_processes_writing_one_new_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "audit.db"  # neither process finds it migrated
    script = """
        path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
        store = SQLiteAuditStore(path)
        writer = AuditWriter(store, batch_size=25, flush_interval=0.001)
        for i in range(n):
            writer.submit(record(tags=(tag,), metadata={"i": str(i)}))
        assert writer.close(timeout=60)
        assert writer.stats.failed == 0, writer.stats
        store.close()
    """
    children = [spawn_python(script, str(path), tag, "1500") for tag in ("proxy", "mcp")]
    for child in children:
        finish(child)

    store = SQLiteAuditStore(path)
    try:
        records = [
            r
            for offset in (0, 1000, 2000)
            for r in store.query(AuditFilter(limit=1000, offset=offset))
        ]
    finally:
        store.close()
    assert len(records) == 3000
    assert len({r.id for r in records}) == 3000
    for tag in ("proxy", "mcp"):
        indexes = sorted(int(r.metadata["i"]) for r in records if r.tags == (tag,))
        assert indexes == list(range(1500))
