"""The audit store on the proxy's hot path: taint read on the loop when the store allows it,
intents settled with one wake-up per loop, this process's SQLite writers taking turns.

Covers `taint.alookup` (inline for stores whose ``inline_reads`` is true, a worker
thread otherwise, failing closed either way), `AuditWriter.aintent` under concurrency,
and `SQLiteAuditStore` writers from several threads at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Collection
from pathlib import Path

import pytest

from llm_localfirst import AuditError
from llm_localfirst.audit import (
    AuditFilter,
    AuditIntent,
    AuditWriter,
    MemoryAuditStore,
    SQLiteAuditStore,
    new_id,
    utc_now_iso,
    verify_store,
)
from llm_localfirst.audit.postgres import PostgresAuditStore
from llm_localfirst.sensitivity.taint import alookup, message_digests

from .conftest import MakeRecord

WAIT = 30.0
DIGESTS = message_digests([{"role": "user", "content": "my card is 4111 1111 1111 1111"}])


class ThreadNotingStore(MemoryAuditStore):
    """Notes the thread each taint read ran on."""

    def __init__(self, *, inline: bool, fail: bool = False) -> None:
        super().__init__()
        self.inline_reads = inline
        self.fail = fail
        self.threads: list[int] = []

    def taint_match(self, digests: Collection[str], sessions: Collection[str]) -> str | None:
        self.threads.append(threading.get_ident())
        if self.fail:
            raise OSError("disk gone")
        return super().taint_match(digests, sessions)


def _intent() -> AuditIntent:
    return AuditIntent(
        id=new_id(), attempt=1, ts=utc_now_iso(), face="proxy", endpoint="chat",
        kind="bulk", destination="local", locality="local", model="m", sensitive=False,
        sensitive_reasons=(), rule=None, prompt_sha256=None, prompt_chars=1,
    )  # fmt: skip


def test_a_store_with_inline_reads_is_asked_on_the_event_loop_thread() -> None:
    store = ThreadNotingStore(inline=True)
    store.taint_add(DIGESTS, (), ttl_s=60)

    async def main() -> tuple[str, ...]:
        return await alookup(store, DIGESTS, ())

    assert asyncio.run(main()) == ("taint",)
    assert store.threads == [threading.get_ident()]


def test_a_store_without_inline_reads_is_asked_in_a_worker_thread() -> None:
    store = ThreadNotingStore(inline=False)

    async def main() -> tuple[str, ...]:
        return await alookup(store, DIGESTS, ("session-1",))

    assert asyncio.run(main()) == ()
    assert len(store.threads) == 1
    assert store.threads[0] != threading.get_ident()


@pytest.mark.parametrize("inline", [True, False])
def test_a_taint_read_that_fails_makes_the_request_sensitive_inline_or_not(inline: bool) -> None:
    store = ThreadNotingStore(inline=inline, fail=True)

    async def main() -> tuple[str, ...]:
        return await alookup(store, DIGESTS, ())

    assert asyncio.run(main()) == ("taint_error",)


def test_a_request_without_messages_or_session_asks_no_store() -> None:
    store = ThreadNotingStore(inline=True)
    assert asyncio.run(alookup(store, (), ())) == ()
    assert store.threads == []


def test_sqlite_in_wal_mode_and_memory_read_inline_and_postgresql_never_does(
    tmp_path: Path,
) -> None:
    sqlite = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        assert sqlite.inline_reads is True
    finally:
        sqlite.close()
    assert MemoryAuditStore().inline_reads is True
    assert PostgresAuditStore.inline_reads is False


def test_sqlite_taint_read_inline_sees_what_another_instance_remembered(tmp_path: Path) -> None:
    first = SQLiteAuditStore(tmp_path / "audit.db")
    second = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        first.taint_add(DIGESTS, (), ttl_s=60)
        assert asyncio.run(alookup(second, DIGESTS, ())) == ("taint",)
    finally:
        first.close()
        second.close()


def test_many_intents_awaited_on_one_loop_all_return_once_committed(tmp_path: Path) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    writer = AuditWriter(store, durability="intent")

    async def main() -> None:
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(writer.aintent(_intent()) for _ in range(64)))

    try:
        asyncio.run(main())
        assert len(store.open_intents(AuditFilter())) == 64
    finally:
        writer.close()
        store.close()
    reopened = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        assert verify_store(reopened).intents == 64
    finally:
        reopened.close()


def test_intents_awaited_on_two_loops_at_once_each_return_on_their_own_loop(
    tmp_path: Path,
) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    writer = AuditWriter(store, durability="intent")
    errors: list[BaseException] = []

    def run_loop() -> None:
        async def main() -> None:
            async with asyncio.timeout(WAIT):
                await asyncio.gather(*(writer.aintent(_intent()) for _ in range(20)))

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run_loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    try:
        assert errors == []
        assert len(store.open_intents(AuditFilter())) == 40
    finally:
        writer.close()
        store.close()


def test_every_intent_waiting_on_a_refused_commit_gets_the_audit_error() -> None:
    class Refusing(MemoryAuditStore):
        def write_intents(self, intents: object) -> None:
            raise OSError("disk gone")

    writer = AuditWriter(Refusing(), durability="intent")

    async def main() -> list[BaseException | None]:
        async with asyncio.timeout(WAIT):
            results = await asyncio.gather(
                *(writer.aintent(_intent()) for _ in range(8)), return_exceptions=True
            )
        return list(results)

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert all(isinstance(r, AuditError) for r in results)


def test_records_intents_and_taint_written_from_many_threads_at_once_all_land(
    tmp_path: Path,
) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db", busy_timeout=WAIT)
    writer = AuditWriter(store, durability="intent", flush_interval=0.0)
    from .test_durability import _intent as durability_intent  # one record shape

    def work(n: int) -> None:
        for i in range(25):
            writer.intent(durability_intent())
            store.taint_add(
                message_digests([{"role": "user", "content": f"{n}-{i}"}]), (), ttl_s=60
            )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    try:
        assert len(store.open_intents(AuditFilter())) == 100
    finally:
        writer.close()
        store.close()


def test_sqlite_commits_never_checkpoint_and_the_writer_thread_does_it_between_batches(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        with store._pool.connection() as conn:
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        for _ in range(3):
            store.write_intents([_intent()])
        assert store.checkpoint(min_commits=4) is False
        store.write_intents([_intent()])
        assert store.checkpoint(min_commits=4) is True
        assert store.checkpoint(min_commits=4) is False  # counted afresh
        writer = AuditWriter(store, durability="intent", flush_interval=0.0)
        for _ in range(200):  # one commit each: the default threshold
            writer.intent(_intent())
        writer.submit(make_record())
        assert writer.flush(WAIT)
        writer.close()
        assert store._commits == 0  # the writer thread checkpointed after its batch
    finally:
        store.close()
    reopened = SQLiteAuditStore(tmp_path / "audit.db")
    try:
        assert verify_store(reopened).intents == 204
    finally:
        reopened.close()


def test_a_write_waits_for_another_process_write_lock_and_fails_after_the_busy_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    store = SQLiteAuditStore(path, busy_timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process writing
        with pytest.raises(AuditError, match="locked"):
            store.write_intents([_intent()])
        done = threading.Event()

        def write() -> None:
            store.write_intents([_intent()])
            done.set()

        thread = threading.Thread(target=write)
        thread.start()
        holder.execute("COMMIT")
        thread.join(WAIT)
        assert done.is_set()
        with store._pool.connection() as conn:  # reads keep the busy timeout
            assert conn.execute("PRAGMA busy_timeout").fetchone() == (200,)
    finally:
        holder.close()
        store.close()
