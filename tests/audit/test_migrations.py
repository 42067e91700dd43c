"""Schema migrations: from a blank database, step by step, idempotent, on both dialects."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_localfirst.audit import PostgresAuditStore, SQLiteAuditStore
from llm_localfirst.audit.chain import CHAIN_COLUMNS
from llm_localfirst.audit.migrations import MIGRATIONS
from llm_localfirst.audit.postgres import migrate_postgres
from llm_localfirst.audit.record import COLUMNS
from llm_localfirst.audit.sqlite import migrate_sqlite

from .conftest import MakeRecord

NAMES = [fn.__name__ for fn in MIGRATIONS]


def test_migration_names_are_unique_and_numbered_in_order() -> None:
    assert len(set(NAMES)) == len(NAMES)
    assert sorted(NAMES) == NAMES
    assert all(name[0] == "m" and name[1:4].isdigit() for name in NAMES)


# ---------------------------------------------------------------------------- SQLite


@pytest.fixture
def blank_sqlite(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "blank.db", isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _sqlite_schema(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()


def test_a_blank_sqlite_database_gets_every_migration_recorded(
    blank_sqlite: sqlite3.Connection,
) -> None:
    assert migrate_sqlite(blank_sqlite) == NAMES

    recorded = blank_sqlite.execute("SELECT name, applied_at FROM _lf_migrations").fetchall()
    assert sorted(name for name, _ in recorded) == NAMES
    assert all(applied_at.endswith("Z") for _, applied_at in recorded)
    columns = [row[1] for row in blank_sqlite.execute("PRAGMA table_info(audit_records)")]
    assert tuple(columns) == COLUMNS + CHAIN_COLUMNS
    indexes = {row[1] for row in blank_sqlite.execute("PRAGMA index_list(audit_records)")}
    assert {f"audit_records_{c}" for c in ("ts", "face", "destination", "outcome")} <= indexes


def test_re_running_sqlite_migrations_applies_nothing_and_changes_nothing(
    blank_sqlite: sqlite3.Connection,
) -> None:
    migrate_sqlite(blank_sqlite)
    schema = _sqlite_schema(blank_sqlite)

    assert migrate_sqlite(blank_sqlite) == []
    assert _sqlite_schema(blank_sqlite) == schema
    assert blank_sqlite.execute("SELECT COUNT(*) FROM _lf_migrations").fetchone() == (len(NAMES),)


@pytest.mark.parametrize("done", range(len(MIGRATIONS) + 1))
def test_upgrading_sqlite_from_each_earlier_schema_reaches_the_same_schema(
    tmp_path: Path, done: int
) -> None:
    one_shot = sqlite3.connect(tmp_path / "one_shot.db", isolation_level=None)
    stepped = sqlite3.connect(tmp_path / "stepped.db", isolation_level=None)
    try:
        migrate_sqlite(one_shot)
        assert migrate_sqlite(stepped, MIGRATIONS[:done]) == NAMES[:done]
        assert migrate_sqlite(stepped) == NAMES[done:]
        assert _sqlite_schema(stepped) == _sqlite_schema(one_shot)
    finally:
        one_shot.close()
        stepped.close()


def test_a_failing_migration_leaves_no_trace(blank_sqlite: sqlite3.Connection) -> None:
    def m999_broken(db: Any) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        db.execute("THIS IS NOT SQL")

    with pytest.raises(sqlite3.OperationalError):
        migrate_sqlite(blank_sqlite, [*MIGRATIONS, m999_broken])

    assert _sqlite_schema(blank_sqlite) == []  # the whole run rolled back
    assert migrate_sqlite(blank_sqlite) == NAMES


def test_the_sqlite_log_refuses_update_and_delete(tmp_path: Path, make_record: MakeRecord) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    store.write_many([make_record()])
    store.close()
    conn = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_records SET outcome = 'ok'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit_records")
        assert conn.execute("SELECT COUNT(*) FROM audit_records").fetchone() == (1,)
    finally:
        conn.close()


# ---------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def blank_postgres(postgres_url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


def _postgres_schema(conn: Any) -> list[tuple[Any, ...]]:
    columns = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        " ORDER BY indexname"
    ).fetchall()
    triggers = conn.execute(
        "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND NOT t.tgisinternal ORDER BY tgname"
    ).fetchall()
    return [*columns, *indexes, *triggers]


@pytest.mark.postgres
def test_a_blank_postgres_schema_gets_every_migration_recorded(blank_postgres: Any) -> None:
    assert migrate_postgres(blank_postgres) == NAMES

    names = blank_postgres.execute("SELECT name FROM _lf_migrations ORDER BY name").fetchall()
    assert [n for (n,) in names] == NAMES
    columns = blank_postgres.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = 'audit_records' ORDER BY ordinal_position"
    ).fetchall()
    assert tuple(c for (c,) in columns) == COLUMNS + CHAIN_COLUMNS
    indexes = {
        name
        for (name,) in blank_postgres.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        ).fetchall()
    }
    assert {f"audit_records_{c}" for c in ("ts", "face", "destination", "outcome")} <= indexes


@pytest.mark.postgres
def test_re_running_postgres_migrations_applies_nothing_and_changes_nothing(
    blank_postgres: Any,
) -> None:
    migrate_postgres(blank_postgres)
    schema = _postgres_schema(blank_postgres)

    assert migrate_postgres(blank_postgres) == []
    assert _postgres_schema(blank_postgres) == schema


def _drop_everything(conn: Any) -> None:
    """Drop every table and function of the current schema (what the migrations made)."""
    for (table,) in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    ).fetchall():
        conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    for (function,) in conn.execute(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = current_schema()"
    ).fetchall():
        conn.execute(f'DROP FUNCTION IF EXISTS "{function}"() CASCADE')


@pytest.mark.postgres
@pytest.mark.parametrize("done", range(len(MIGRATIONS) + 1))
def test_upgrading_postgres_from_each_earlier_schema_reaches_the_same_schema(
    blank_postgres: Any, done: int
) -> None:
    migrate_postgres(blank_postgres)
    one_shot = _postgres_schema(blank_postgres)
    _drop_everything(blank_postgres)

    assert migrate_postgres(blank_postgres, MIGRATIONS[:done]) == NAMES[:done]
    assert migrate_postgres(blank_postgres) == NAMES[done:]
    assert _postgres_schema(blank_postgres) == one_shot


@pytest.mark.postgres
def test_instances_starting_together_apply_each_postgres_migration_once(
    postgres_url: str,
) -> None:
    errors: list[BaseException] = []
    stores: list[PostgresAuditStore] = []
    barrier = threading.Barrier(4, timeout=30)

    def start() -> None:
        try:
            barrier.wait()
            stores.append(PostgresAuditStore(postgres_url))
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.close()

    assert errors == []
    assert len(stores) == 4
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM _lf_migrations").fetchone() == (len(NAMES),)


@pytest.mark.postgres
def test_the_postgres_log_refuses_update_delete_and_truncate(
    postgres_url: str, make_record: MakeRecord
) -> None:
    import psycopg

    store = PostgresAuditStore(postgres_url)
    store.write_many([make_record()])
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in (
            "UPDATE audit_records SET outcome = 'ok'",
            "DELETE FROM audit_records",
            "TRUNCATE audit_records",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT COUNT(*) FROM audit_records").fetchone() == (1,)
