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


def _sqlite_refuse(name: str, when: str, message: str, event: str, table: str) -> str:
    condition = f" WHEN {when}" if when else ""
    return (
        f"CREATE TRIGGER {name} BEFORE {event} ON {table}{condition} "
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


def _chain_heads(db: MigrationDB) -> None:
    # The newest (seq, row_hash) of every chain, updated in the same transaction as
    # the rows: deleting a chain's newest rows leaves a head that points past them.
    db.execute(
        """
        CREATE TABLE audit_chain_heads (
            tbl TEXT NOT NULL,
            chain_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            row_hash TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tbl, chain_id)
        )
        """
    )
    if db.dialect == "sqlite":
        db.execute(
            _sqlite_refuse(
                "audit_chain_heads_no_replace",
                "EXISTS (SELECT 1 FROM audit_chain_heads h "
                "WHERE h.tbl = NEW.tbl AND h.chain_id = NEW.chain_id)",
                "audit_chain_heads: a chain head is only advanced",
                "INSERT",
                "audit_chain_heads",
            )
        )
        db.execute(
            _sqlite_refuse(
                "audit_chain_heads_only_forward",
                "NEW.seq <= OLD.seq OR NEW.tbl != OLD.tbl OR NEW.chain_id != OLD.chain_id",
                "audit_chain_heads: a chain head is only advanced",
                "UPDATE",
                "audit_chain_heads",
            )
        )
        db.execute(
            _sqlite_refuse(
                "audit_chain_heads_no_delete",
                "",
                "audit_chain_heads is append-only",
                "DELETE",
                "audit_chain_heads",
            )
        )
        return
    db.execute(
        "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
    )
    db.execute(
        "CREATE FUNCTION audit_chain_heads_guard() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP = 'UPDATE' AND NEW.seq > OLD.seq AND NEW.tbl = OLD.tbl "
        "AND NEW.chain_id = OLD.chain_id THEN RETURN NEW; END IF; "
        "RAISE EXCEPTION 'audit_chain_heads: a chain head is only advanced'; END $$"
    )
    db.execute(
        "CREATE TRIGGER audit_chain_heads_guard BEFORE UPDATE OR DELETE ON audit_chain_heads "
        "FOR EACH ROW EXECUTE FUNCTION audit_chain_heads_guard()"
    )
    db.execute(
        "CREATE TRIGGER audit_chain_heads_no_truncate BEFORE TRUNCATE ON audit_chain_heads "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
    )


def _seal_legacy_rows(db: MigrationDB) -> None:
    # Rows written before the chain existed join one "legacy" chain, in (ts, id)
    # order: from now on an edit, deletion or reordering of them is evident too.
    from llm_localfirst.audit.chain import GENESIS, LEGACY_CHAIN, row_hash
    from llm_localfirst.audit.record import COLUMNS

    p = db.param
    rows = db.execute(
        f"SELECT {', '.join(COLUMNS)} FROM audit_records ORDER BY ts, id"  # noqa: S608
    )
    if not rows:
        return
    if db.dialect == "sqlite":
        db.execute("DROP TRIGGER audit_records_no_update")
    else:
        db.execute("ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_update_delete")
    head = GENESIS
    for seq, values in enumerate(rows, start=1):
        row = dict(zip(COLUMNS, values, strict=True))
        digest = row_hash(
            "audit_records", COLUMNS, row, chain_id=LEGACY_CHAIN, seq=seq, prev_hash=head
        )
        db.execute(
            f"UPDATE audit_records SET chain_id = {p}, seq = {p}, prev_hash = {p}, "  # noqa: S608
            f"row_hash = {p} WHERE id = {p}",
            (LEGACY_CHAIN, seq, head, digest, row["id"]),
        )
        head = digest
    if db.dialect == "sqlite":
        db.execute(
            _sqlite_refuse(
                "audit_records_no_update",
                "",
                "audit_records is append-only",
                "UPDATE",
                "audit_records",
            )
        )
    else:
        db.execute("ALTER TABLE audit_records ENABLE TRIGGER audit_records_no_update_delete")
    db.execute(
        f"INSERT INTO audit_chain_heads (tbl, chain_id, seq, row_hash, updated_at) "  # noqa: S608
        f"VALUES ({p}, {p}, {p}, {p}, {p})",
        ("audit_records", LEGACY_CHAIN, len(rows), head, utc_now_iso()),
    )


@migration
def m004_audit_chain(db: MigrationDB) -> None:
    # Hash chain (see audit/chain.py); one chain per writer. Replace-style rewrites
    # are refused as well: SQLite's INSERT OR REPLACE deletes the old row without
    # firing DELETE triggers, so a BEFORE INSERT trigger refuses a taken id or
    # chain position before conflict resolution runs.
    for column, kind in (
        ("chain_id", "TEXT"),
        ("seq", "BIGINT"),
        ("prev_hash", "TEXT"),
        ("row_hash", "TEXT"),
    ):
        db.execute(f"ALTER TABLE audit_records ADD COLUMN {column} {kind}")
    _chain_heads(db)
    _seal_legacy_rows(db)
    db.execute("CREATE UNIQUE INDEX audit_records_chain ON audit_records (chain_id, seq)")
    if db.dialect == "sqlite":
        db.execute(
            _sqlite_refuse(
                "audit_records_no_replace",
                "EXISTS (SELECT 1 FROM audit_records r WHERE r.id = NEW.id) OR EXISTS "
                "(SELECT 1 FROM audit_records r "
                "WHERE r.chain_id = NEW.chain_id AND r.seq = NEW.seq)",
                "audit_records is append-only: that id or chain position is taken",
                "INSERT",
                "audit_records",
            )
        )
        db.execute(
            _sqlite_refuse(
                "audit_records_chained",
                "NEW.chain_id IS NULL OR NEW.seq IS NULL OR NEW.prev_hash IS NULL "
                "OR NEW.row_hash IS NULL",
                "audit_records rows must carry chain fields",
                "INSERT",
                "audit_records",
            )
        )
        return
    for column in ("chain_id", "seq", "prev_hash", "row_hash"):
        db.execute(f"ALTER TABLE audit_records ALTER COLUMN {column} SET NOT NULL")


@migration
def m005_audit_intents(db: MigrationDB) -> None:
    # Intents: committed before an upstream attempt under `durability: intent`.
    db.execute(
        """
        CREATE TABLE audit_intents (
            id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            ts TEXT NOT NULL,
            face TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            kind TEXT NOT NULL,
            destination TEXT NOT NULL,
            locality TEXT NOT NULL,
            model TEXT,
            sensitive INTEGER NOT NULL,
            sensitive_reasons_json TEXT NOT NULL,
            rule TEXT,
            prompt_sha256 TEXT,
            prompt_chars BIGINT NOT NULL,
            chain_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            prev_hash TEXT NOT NULL,
            row_hash TEXT NOT NULL,
            PRIMARY KEY (id, attempt)
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX audit_intents_chain ON audit_intents (chain_id, seq)")
    db.execute("CREATE INDEX audit_intents_ts ON audit_intents (ts)")
    if db.dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            db.execute(
                _sqlite_refuse(
                    f"audit_intents_no_{event.lower()}",
                    "",
                    "audit_intents is append-only",
                    event,
                    "audit_intents",
                )
            )
        db.execute(
            _sqlite_refuse(
                "audit_intents_no_replace",
                "EXISTS (SELECT 1 FROM audit_intents i WHERE i.id = NEW.id "
                "AND i.attempt = NEW.attempt) OR EXISTS (SELECT 1 FROM audit_intents i "
                "WHERE i.chain_id = NEW.chain_id AND i.seq = NEW.seq)",
                "audit_intents is append-only: that id or chain position is taken",
                "INSERT",
                "audit_intents",
            )
        )
        return
    db.execute(
        "CREATE TRIGGER audit_intents_no_update_delete BEFORE UPDATE OR DELETE "
        "ON audit_intents FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
    )
    db.execute(
        "CREATE TRIGGER audit_intents_no_truncate BEFORE TRUNCATE "
        "ON audit_intents FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
    )


@migration
def m006_audit_taint(db: MigrationDB) -> None:
    # Sensitivity that sticks to the data, shared by every instance on this store:
    # kind 'd' = message digest (hex, never text), 's' = SHA-256 of a session id.
    db.execute(
        """
        CREATE TABLE audit_taint (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (kind, key)
        )
        """
    )
    db.execute("CREATE INDEX audit_taint_expires ON audit_taint (expires_at)")


@migration
def m007_budget_usage(db: MigrationDB) -> None:
    # Shared budget counters (llm_localfirst.audit.budget_store): settled spend and
    # reservations in flight per budget and period; integer micro-USD, no prompt text.
    db.execute(
        """
        CREATE TABLE lf_budget_usage (
            budget TEXT NOT NULL,
            period_start TEXT NOT NULL,
            spent_micros BIGINT NOT NULL DEFAULT 0,
            spent_tokens BIGINT NOT NULL DEFAULT 0,
            spent_calls BIGINT NOT NULL DEFAULT 0,
            reserved_micros BIGINT NOT NULL DEFAULT 0,
            reserved_tokens BIGINT NOT NULL DEFAULT 0,
            reserved_calls BIGINT NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (budget, period_start)
        )
        """
    )
    # Which instance holds how much of that reservation, until when (Unix seconds);
    # rows past expires_at belong to instances that died and are handed back.
    db.execute(
        """
        CREATE TABLE lf_budget_leases (
            budget TEXT NOT NULL,
            period_start TEXT NOT NULL,
            holder TEXT NOT NULL,
            micros BIGINT NOT NULL,
            tokens BIGINT NOT NULL,
            calls BIGINT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (budget, period_start, holder)
        )
        """
    )
