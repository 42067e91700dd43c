"""The hash chain makes any edit, deletion, insertion or reordering evident, on every store."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_localfirst.audit import (
    AuditFilter,
    AuditStore,
    MemoryAuditStore,
    PostgresAuditStore,
    SQLiteAuditStore,
    verify_store,
)
from llm_localfirst.audit.chain import GENESIS, LEGACY_CHAIN, row_hash
from llm_localfirst.audit.migrations import MIGRATIONS
from llm_localfirst.audit.record import COLUMNS
from llm_localfirst.audit.sqlite import migrate_sqlite

from .conftest import MakeRecord

# ---------------------------------------------------------------------------- every store


def test_rows_written_in_batches_form_one_verified_chain_per_store(
    store: AuditStore, make_record: MakeRecord
) -> None:
    for size in (1, 5, 3):
        store.write_many([make_record() for _ in range(size)])

    result = verify_store(store)

    assert result.ok, result.problems
    assert (result.rows, result.chains) == (9, 1)
    ((chain_id, (seq, head)),) = result.heads["audit_records"].items()
    assert seq == 9 and len(head) == 64
    rows = store.chain_rows("audit_records", chain_id)
    assert [r["seq"] for r in rows] == list(range(1, 10))
    assert rows[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["row_hash"] for a, b in itertools.pairwise(rows))


def test_a_retried_batch_neither_duplicates_rows_nor_breaks_the_chain(
    store: AuditStore, make_record: MakeRecord
) -> None:
    batch = [make_record() for _ in range(3)]
    store.write_many(batch)
    store.write_many([*batch, make_record()])

    result = verify_store(store)
    assert result.ok and result.rows == 4


def test_an_empty_store_verifies_with_zero_rows(store: AuditStore) -> None:
    result = verify_store(store)
    assert result.ok and (result.rows, result.intents, result.chains) == (0, 0, 0)


# ---------------------------------------------------------------------------- SQLite tampering


@pytest.fixture
def sqlite_log(tmp_path: Path, make_record: MakeRecord) -> Iterator[tuple[SQLiteAuditStore, Any]]:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    store.write_many([make_record(tokens_in=i) for i in range(6)])
    raw = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    try:
        yield store, raw
    finally:
        raw.close()
        store.close()


def _ids_by_seq(raw: Any) -> list[str]:
    return [r[0] for r in raw.execute("SELECT id FROM audit_records ORDER BY seq")]


def test_update_delete_and_insert_or_replace_are_refused_by_the_database(
    sqlite_log: tuple[SQLiteAuditStore, Any],
) -> None:
    store, raw = sqlite_log
    victim = _ids_by_seq(raw)[2]
    before = store.get(victim)

    for sql in (
        "UPDATE audit_records SET tokens_in = 999",
        "DELETE FROM audit_records",
        f"INSERT OR REPLACE INTO audit_records SELECT * FROM audit_records WHERE id = '{victim}'",
        "REPLACE INTO audit_records SELECT * FROM audit_records WHERE seq = 2",
        "DELETE FROM audit_chain_heads",
        "UPDATE audit_chain_heads SET seq = 1",
        "INSERT OR REPLACE INTO audit_chain_heads SELECT * FROM audit_chain_heads",
    ):
        with pytest.raises(sqlite3.IntegrityError, match=r"append-only|only advanced"):
            raw.execute(sql)

    assert store.get(victim) == before
    assert verify_store(store).ok


def test_a_row_inserted_without_chain_fields_is_refused(
    sqlite_log: tuple[SQLiteAuditStore, Any], make_record: MakeRecord
) -> None:
    _, raw = sqlite_log
    row = make_record().to_row()
    marks = ", ".join("?" * len(row))
    with pytest.raises(sqlite3.IntegrityError, match="chain fields"):
        raw.execute(
            f"INSERT INTO audit_records ({', '.join(row)}) VALUES ({marks})", tuple(row.values())
        )


def _without_triggers(raw: Any) -> None:
    for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        raw.execute(f"DROP TRIGGER {name}")


def test_an_edit_behind_the_triggers_back_is_named_by_row_and_chain(
    sqlite_log: tuple[SQLiteAuditStore, Any],
) -> None:
    store, raw = sqlite_log
    _without_triggers(raw)
    victim = _ids_by_seq(raw)[3]
    raw.execute("UPDATE audit_records SET destination = 'cloud-x' WHERE id = ?", (victim,))

    result = verify_store(store)

    assert not result.ok
    problem = result.problems[0]
    assert (problem.id, problem.seq, problem.chain_id) == (
        victim,
        4,
        store.chain_ids["audit_records"],
    )
    assert "edited" in problem.problem


def test_a_deleted_row_is_evident_at_the_row_after_it(
    sqlite_log: tuple[SQLiteAuditStore, Any],
) -> None:
    store, raw = sqlite_log
    _without_triggers(raw)
    ids = _ids_by_seq(raw)
    raw.execute("DELETE FROM audit_records WHERE id = ?", (ids[2],))

    problem = verify_store(store).problems[0]

    assert problem.id == ids[3]
    assert "missing" in problem.problem and "deleted" in problem.problem


def test_deleting_the_newest_rows_is_evident_from_the_chain_head(
    sqlite_log: tuple[SQLiteAuditStore, Any],
) -> None:
    store, raw = sqlite_log
    _without_triggers(raw)
    raw.execute("DELETE FROM audit_records WHERE seq >= 5")

    problem = verify_store(store).problems[0]

    assert problem.id is None and problem.seq == 5
    assert "newest rows were deleted" in problem.problem


def test_swapping_two_rows_positions_is_evident(sqlite_log: tuple[SQLiteAuditStore, Any]) -> None:
    store, raw = sqlite_log
    _without_triggers(raw)
    raw.execute("DROP INDEX audit_records_chain")
    raw.execute(
        "UPDATE audit_records SET seq = CASE seq WHEN 2 THEN 3 ELSE 2 END WHERE seq IN (2, 3)"
    )

    result = verify_store(store)

    assert not result.ok
    assert result.problems[0].seq == 2


def test_a_forged_row_inserted_into_a_chain_is_evident(
    sqlite_log: tuple[SQLiteAuditStore, Any], make_record: MakeRecord
) -> None:
    store, raw = sqlite_log
    _without_triggers(raw)
    raw.execute("DROP INDEX audit_records_chain")
    chain_id = store.chain_ids["audit_records"]
    prev = raw.execute("SELECT row_hash FROM audit_records WHERE seq = 2").fetchone()[0]
    row = make_record(destination="cloud", locality="cloud").to_row()
    digest = row_hash("audit_records", COLUMNS, row, chain_id=chain_id, seq=3, prev_hash=prev)
    row.update(chain_id=chain_id, seq=3, prev_hash=prev, row_hash=digest)
    raw.execute(
        f"INSERT INTO audit_records ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        tuple(row.values()),
    )

    problem = verify_store(store).problems[0]

    assert problem.seq == 3
    assert "inserted" in problem.problem or "prev_hash" in problem.problem


def test_rows_appended_after_the_head_outside_the_writer_are_evident(
    sqlite_log: tuple[SQLiteAuditStore, Any], make_record: MakeRecord
) -> None:
    store, raw = sqlite_log
    _without_triggers(raw)
    chain_id = store.chain_ids["audit_records"]
    prev = raw.execute("SELECT row_hash FROM audit_records WHERE seq = 6").fetchone()[0]
    row = make_record().to_row()
    digest = row_hash("audit_records", COLUMNS, row, chain_id=chain_id, seq=7, prev_hash=prev)
    row.update(chain_id=chain_id, seq=7, prev_hash=prev, row_hash=digest)
    raw.execute(
        f"INSERT INTO audit_records ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
        tuple(row.values()),
    )

    assert "appended outside the writer" in verify_store(store).problems[0].problem


def test_two_stores_on_one_file_write_two_chains_that_both_verify(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    first, second = SQLiteAuditStore(tmp_path / "a.db"), SQLiteAuditStore(tmp_path / "a.db")
    try:
        for _ in range(3):
            first.write_many([make_record()])
            second.write_many([make_record(), make_record()])
        result = verify_store(first)
        assert result.ok and (result.rows, result.chains) == (9, 2)
    finally:
        first.close()
        second.close()


# ---------------------------------------------------------------------------- upgrade


def test_rows_from_before_the_chain_are_sealed_into_a_legacy_chain_on_upgrade(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate_sqlite(conn, MIGRATIONS[:3])  # the schema before m004_audit_chain
    old = [make_record(tokens_in=i) for i in range(4)]
    for record in old:
        row = record.to_row()
        conn.execute(
            f"INSERT INTO audit_records ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
    conn.close()

    store = SQLiteAuditStore(path)  # migrates to the current schema
    try:
        store.write_many([make_record()])
        result = verify_store(store)
        assert result.ok
        assert (result.rows, result.legacy_rows, result.chains) == (5, 4, 2)
        assert LEGACY_CHAIN in result.heads["audit_records"]
        assert [store.get(r.id) for r in old] == old
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_refuses_rewrites_and_verify_names_a_deleted_row(
    postgres_url: str, make_record: MakeRecord
) -> None:
    import psycopg

    stores = [PostgresAuditStore(postgres_url) for _ in range(3)]
    try:
        for _ in range(2):
            for store in stores:
                store.write_many([make_record(), make_record()])
        assert verify_store(stores[0]).ok
        assert verify_store(stores[0]).chains == 3
        with psycopg.connect(postgres_url, autocommit=True) as raw:
            for sql in (
                "UPDATE audit_records SET tokens_in = 1",
                "DELETE FROM audit_records",
                "TRUNCATE audit_records",
                "DELETE FROM audit_chain_heads",
            ):
                with pytest.raises(psycopg.errors.RaiseException):
                    raw.execute(sql)
            with pytest.raises(psycopg.errors.RaiseException):
                raw.execute(
                    "INSERT INTO audit_records SELECT * FROM audit_records LIMIT 1 "
                    "ON CONFLICT (id) DO UPDATE SET tokens_in = 5"
                )
            raw.execute("ALTER TABLE audit_records DISABLE TRIGGER USER")
            chain_id = stores[1].chain_ids["audit_records"]
            (victim,) = raw.execute(
                "SELECT id FROM audit_records WHERE chain_id = %s AND seq = 2", (chain_id,)
            ).fetchone()
            raw.execute("DELETE FROM audit_records WHERE id = %s", (victim,))
        result = verify_store(stores[0])
        assert not result.ok
        (problem,) = result.problems
        assert problem.chain_id == chain_id and problem.seq == 3
        assert store.count(AuditFilter()) == 11
    finally:
        for store in stores:
            store.close()


def test_the_memory_store_chains_like_the_sql_stores(make_record: MakeRecord) -> None:
    store = MemoryAuditStore()
    store.write_many([make_record() for _ in range(4)])
    rows = store.chain_rows("audit_records", store.chain_ids["audit_records"])
    sqlite_like = [r["row_hash"] for r in rows]
    assert len(set(sqlite_like)) == 4
    assert verify_store(store).ok


@pytest.mark.postgres
def test_postgres_rows_from_before_the_chain_are_sealed_on_upgrade(
    postgres_url: str, make_record: MakeRecord
) -> None:
    import psycopg

    from llm_localfirst.audit.postgres import migrate_postgres

    old = [make_record(tokens_in=i) for i in range(3)]
    with psycopg.connect(postgres_url, autocommit=True) as raw:
        migrate_postgres(raw, MIGRATIONS[:3])
        for record in old:
            row = record.to_row()
            raw.execute(
                f"INSERT INTO audit_records ({', '.join(row)}) "
                f"VALUES ({', '.join(['%s'] * len(row))})",
                tuple(row.values()),
            )
    store = PostgresAuditStore(postgres_url)
    try:
        store.write_many([make_record()])
        result = verify_store(store)
        assert result.ok, result.problems
        assert (result.rows, result.legacy_rows) == (4, 3)
        assert [store.get(r.id) for r in old] == old
    finally:
        store.close()


def test_intents_are_append_only_and_an_edited_intent_is_evident(tmp_path: Path) -> None:
    from llm_localfirst.audit import AuditIntent, new_id, utc_now_iso

    store = SQLiteAuditStore(tmp_path / "audit.db")
    intents = [
        AuditIntent(
            id=new_id(),
            attempt=1,
            ts=utc_now_iso(),
            face="proxy",
            endpoint="chat",
            kind="bulk",
            destination="ollama",
            locality="local",
            model="m",
            sensitive=True,
            sensitive_reasons=("header",),
            rule=None,
            prompt_sha256=None,
            prompt_chars=5,
        )
        for _ in range(3)
    ]
    store.write_intents(intents)
    raw = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    try:
        for sql in (
            "UPDATE audit_intents SET locality = 'cloud'",
            "DELETE FROM audit_intents",
            "INSERT OR REPLACE INTO audit_intents SELECT * FROM audit_intents",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                raw.execute(sql)
        raw.execute("DROP TRIGGER audit_intents_no_update")
        raw.execute("UPDATE audit_intents SET locality = 'local', destination = 'x' WHERE seq = 2")
    finally:
        raw.close()

    result = verify_store(store)
    store.close()

    (problem,) = result.problems
    assert (problem.table, problem.id, problem.seq) == ("audit_intents", intents[1].id, 2)
    assert "edited" in problem.problem


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_records SET outcome = 'error' WHERE seq = 3",
        "DELETE FROM audit_records WHERE seq = 3",
        "DELETE FROM audit_records WHERE seq = 6",
        "INSERT INTO audit_records SELECT * FROM audit_records WHERE seq = 2",
        "UPDATE audit_records SET seq = 7 - seq",
        "UPDATE audit_records SET ts = '2020-01-01T00:00:00.000Z' WHERE seq = 1",
    ],
)
def test_invariant_the_chain_makes_any_edit_deletion_insertion_or_reordering_evident(
    sqlite_log: tuple[SQLiteAuditStore, Any], tamper: str
) -> None:
    store, raw = sqlite_log
    assert verify_store(store).ok
    _without_triggers(raw)
    raw.execute("DROP INDEX audit_records_chain")
    raw.execute("CREATE TABLE copy AS SELECT * FROM audit_records")
    raw.execute("DROP TABLE audit_records")  # no primary key either: anything goes
    raw.execute("ALTER TABLE copy RENAME TO audit_records")
    raw.execute(tamper)

    result = verify_store(store)

    assert not result.ok
    assert result.problems[0].chain_id == store.chain_ids["audit_records"]
