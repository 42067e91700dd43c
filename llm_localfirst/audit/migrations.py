"""Named, ordered schema migrations for the SQL audit stores (SQLite and PostgreSQL).

This module owns the audit schema's history. Each migration is a function
registered with `@migration`, named ``mNNN_what``, and applied once: `migrate`
records its name and time in the ``_lf_migrations`` table in the same transaction as
its DDL (both SQLite and PostgreSQL have transactional DDL). The design follows
simonw/llm's ``llm/migrations.py``.

Rules: never edit or reorder a migration that has shipped, append a new one; write
SQL per dialect where the two differ; a migration must never copy prompt text into
the log. The caller (each store) provides the transaction and the lock that
serialises concurrent processes; `migrate` itself runs plain statements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from llm_localfirst.audit.record import utc_now_iso

__all__ = ["MIGRATIONS", "MigrationDB", "applied_migrations", "migrate", "migration"]

Dialect = Literal["sqlite", "postgres"]


class MigrationDB(Protocol):
    """The little a migration needs from a database connection."""

    @property
    def dialect(self) -> Dialect:
        """Which SQL dialect to emit."""
        ...

    @property
    def param(self) -> str:
        """The parameter placeholder: ``?`` for SQLite, ``%s`` for psycopg."""
        ...

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run one statement and return its rows (empty for DDL)."""
        ...


Migration = Callable[[MigrationDB], None]

#: Every migration, in the order they apply.
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration; its ``__name__`` is its permanent name."""
    MIGRATIONS.append(fn)
    return fn


def ensure_migrations_table(db: MigrationDB) -> None:
    """Create the ``_lf_migrations`` bookkeeping table if it is missing."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _lf_migrations "
        "(name TEXT PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL)"
    )


def applied_migrations(db: MigrationDB) -> list[str]:
    """Return the names of applied migrations, oldest first."""
    ensure_migrations_table(db)
    rows = db.execute("SELECT name FROM _lf_migrations ORDER BY applied_at, name")
    return [str(row[0]) for row in rows]


def migrate(db: MigrationDB, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Apply every migration not yet recorded, in order, and record each one.

    Run it inside one transaction that holds the store's migration lock, so that
    several processes opening the same database apply each migration exactly once.

    Args:
        db: The connection adapter.
        migrations: The sequence to apply; all of `MIGRATIONS` by default. Tests pass
            a prefix to check that upgrading step by step gives the same schema.

    Returns:
        The names applied by this call (empty when the schema was current).
    """
    done = set(applied_migrations(db))
    applied: list[str] = []
    for fn in MIGRATIONS if migrations is None else migrations:
        if fn.__name__ in done:
            continue
        fn(db)
        p = db.param
        db.execute(
            f"INSERT INTO _lf_migrations (name, applied_at) VALUES ({p}, {p})",  # noqa: S608
            (fn.__name__, utc_now_iso()),
        )
        applied.append(fn.__name__)
    return applied


@migration
def m001_audit_records(db: MigrationDB) -> None:
    # The type names are chosen to mean the same on both dialects: SQLite maps
    # BIGINT to INTEGER affinity and DOUBLE PRECISION to REAL. `ts` stays TEXT in the
    # fixed-width '...T..:..:..sssZ' form, which sorts chronologically as a string.
    db.execute(
        """
        CREATE TABLE audit_records (
            id TEXT PRIMARY KEY NOT NULL,
            ts TEXT NOT NULL,
            face TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            outcome TEXT NOT NULL,
            kind TEXT NOT NULL,
            request_model TEXT NOT NULL,
            sensitive INTEGER NOT NULL,
            sensitive_reasons_json TEXT NOT NULL,
            rule TEXT,
            arm TEXT,
            destination TEXT,
            locality TEXT,
            model TEXT,
            fell_back INTEGER NOT NULL,
            attempts_json TEXT NOT NULL,
            error_class TEXT,
            error_message TEXT,
            tokens_in BIGINT,
            tokens_out BIGINT,
            latency_ms DOUBLE PRECISION NOT NULL,
            prompt_sha256 TEXT,
            prompt_chars BIGINT NOT NULL,
            completion_chars BIGINT NOT NULL,
            tags_json TEXT NOT NULL,
            metadata_json TEXT NOT NULL
        )
        """
    )


@migration
def m002_audit_indexes(db: MigrationDB) -> None:
    for column in ("ts", "face", "destination", "outcome"):
        db.execute(f"CREATE INDEX audit_records_{column} ON audit_records ({column})")


@migration
def m003_audit_append_only(db: MigrationDB) -> None:
    # Enforce append-only in the database itself, so a stray UPDATE or DELETE from
    # another tool fails loudly. Retention, if it comes, is a later migration.
    if db.dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER audit_records_no_{event.lower()} "
                f"BEFORE {event} ON audit_records "
                "BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END"
            )
        return
    db.execute(
        "CREATE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_records is append-only'; END $$"
    )
    db.execute(
        "CREATE TRIGGER audit_records_no_update_delete BEFORE UPDATE OR DELETE "
        "ON audit_records FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()"
    )
    db.execute(
        "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE "
        "ON audit_records FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()"
    )
