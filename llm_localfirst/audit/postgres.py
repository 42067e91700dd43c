"""`PostgresAuditStore`: one audit log shared by several router instances.

This module owns connecting to PostgreSQL with psycopg 3 (an optional extra,
imported only when a store is built), serialising concurrent migrations with an
advisory lock, and redacting passwords from URLs shown to people. It must never
store prompt text, never update or delete rows, and never let a password reach a
log line, ``repr`` or `location`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from llm_localfirst.audit.migrations import Dialect, Migration, migrate
from llm_localfirst.audit.pool import ConnectionPool
from llm_localfirst.audit.sql import SQLAuditStore, Transaction
from llm_localfirst.errors import AuditError

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresAuditStore", "migrate_postgres", "redact_url"]

INSTALL_HINT = "pip install 'llm-localfirst[postgres]'"

# pg_advisory_xact_lock key for migrations: the bytes "lfaudit!" as a bigint.
_MIGRATION_LOCK = int.from_bytes(b"lfaudit!", "big")
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


def redact_url(url: str) -> str:
    """Return ``url`` with the password (userinfo or query parameter) replaced by ``***``.

    Example:
        >>> redact_url("postgresql://lf:s3cret@db:5432/audit")
        'postgresql://lf:***@db:5432/audit'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if has_password else netloc
    query = "&".join(
        f"{key}=***" if unquote(key).lower() in _SECRET_PARAMS else f"{key}{sep}{value}"
        for key, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ImportError(
            f"PostgresAuditStore needs psycopg 3, which is not installed: {INSTALL_HINT}"
        ) from exc
    return psycopg


class PostgresAuditStore(SQLAuditStore):
    """An `AuditStore` in a PostgreSQL database (11 or later), migrated on open.

    Tables are created in the connection's ``search_path`` schema, so a
    ``?options=-csearch_path%3Dname`` URL parameter selects another schema.

    Args:
        url: A ``postgresql://`` or ``postgres://`` URL as libpq accepts it.
        max_connections: Most connections open at once in this process.
        timeout: Seconds to wait for a connection (network connect or a free one).
        clock: Wall-clock seconds, for taint expiry (tests pass a fake).

    Raises:
        ImportError: psycopg 3 is not installed (the message has the install hint).
        AuditError: The database cannot be reached.
        psycopg.Error: The database cannot be migrated.
    """

    param = "%s"
    #: Reads are network round trips: never on an event loop (see `taint.alookup`).
    inline_reads = False

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 4,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._psycopg = _import_psycopg()
        self._duplicate_errors = (self._psycopg.IntegrityError,)
        self._clock = clock
        self._init_chains()
        self._url = url
        self._location = redact_url(url)
        self._timeout = timeout
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            self._connect,
            lambda conn: conn.close(),
            max_size=max_connections,
            timeout=timeout,
            is_usable=self._is_usable,
        )
        try:
            with self._errors(), self._pool.connection() as conn:
                migrate_postgres(conn)
        except BaseException:
            self._pool.close()
            raise

    @property
    def location(self) -> str:
        """The URL with its password replaced by ``***``."""
        return self._location

    def close(self) -> None:
        """Close every connection. Idempotent."""
        self._pool.close()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        # Autocommit for reads; writes open explicit transactions.
        conn: psycopg.Connection[tuple[Any, ...]] = self._psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=max(1, round(self._timeout)),
            application_name="llm-localfirst audit",
        )
        return conn

    def _is_usable(self, conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
        # Lend a connection again only if it is alive and not stuck in a transaction.
        idle = self._psycopg.pq.TransactionStatus.IDLE
        return not conn.closed and not conn.broken and conn.info.transaction_status == idle

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn an unreachable server or a pool timeout into `AuditError`."""
        try:
            yield
        except self._psycopg.OperationalError as exc:
            raise AuditError(
                f"audit database {self._location} failed: {exc}", location=self._location
            ) from exc
        except TimeoutError as exc:
            raise AuditError(
                f"audit database {self._location}: {exc}", location=self._location
            ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with (
            self._errors(),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            yield _PostgresTransaction(cur)

    def _fetch_all(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        with self._errors(), self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()


class _PostgresTransaction:
    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        self._cur.execute(sql, params or None)
        return list(self._cur.fetchall()) if self._cur.description is not None else []

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._cur.executemany(sql, rows)


class _PostgresMigrationDB:
    dialect: Dialect = "postgres"
    param = "%s"

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        # None, not (), so psycopg leaves a parameterless statement's '%' alone.
        cur = self._conn.execute(sql, params or None)
        return cur.fetchall() if cur.description is not None else []


def migrate_postgres(
    conn: psycopg.Connection[tuple[Any, ...]], migrations: Sequence[Migration] | None = None
) -> list[str]:
    """Apply pending migrations in one transaction under an advisory lock.

    The lock serialises instances that start at the same moment: the second waits,
    then finds nothing left to apply.

    Args:
        conn: An open psycopg connection.
        migrations: What to apply; every migration by default.

    Returns:
        The names applied by this call.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        return migrate(_PostgresMigrationDB(conn), migrations)
