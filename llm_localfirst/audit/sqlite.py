"""`SQLiteAuditStore`: the default audit store, one SQLite file on this machine.

This module owns opening the file safely for several threads and several processes
at once (the proxy, the MCP server and a script may share it): WAL journal so
readers never block the writer, ``synchronous=NORMAL`` (durable across process
crashes; a power cut may lose the last transactions, never corrupt the file), a
busy timeout, write transactions that take the lock up front (``BEGIN IMMEDIATE``)
and a small pool of connections. It must never store prompt text and never
update or delete rows.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from llm_localfirst.audit.migrations import Dialect, Migration, migrate
from llm_localfirst.audit.pool import ConnectionPool
from llm_localfirst.audit.sql import SQLAuditStore, Transaction
from llm_localfirst.errors import AuditError

__all__ = ["SQLiteAuditStore", "migrate_sqlite"]


class SQLiteAuditStore(SQLAuditStore):
    """An `AuditStore` in one SQLite file, migrated to the current schema on open.

    Args:
        path: The database file; missing parent directories are created and a new
            file is made readable by its owner only.
        busy_timeout: Seconds to wait for another connection's write lock.
        max_connections: Most connections open at once in this process.
        clock: Wall-clock seconds, for taint expiry (tests pass a fake).

    Raises:
        AuditError: The file stays locked past ``busy_timeout`` or cannot be opened.
        sqlite3.Error: The file is not a usable database (corrupt, wrong schema).
    """

    param = "?"
    _duplicate_errors = (sqlite3.IntegrityError,)
    #: In WAL mode a read never waits behind a writer and touches only a local file:
    #: cheap enough to run on an event loop (see `taint.alookup`). Cleared when the
    #: file could not be switched to WAL.
    inline_reads = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 10.0,
        max_connections: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path).expanduser().absolute()
        self._busy_timeout = busy_timeout
        self._clock = clock
        # This process's writers (records, intents, taint) take turns here: a Python
        # lock hands over at once, while SQLite's busy handler sleeps 1, 2, 5, 10... ms
        # between retries, which delayed intents (and so requests) by milliseconds.
        self._write_lock = threading.Lock()
        self._commits = 0  # since the last checkpoint
        self._init_chains()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if not self._path.exists():
            # Decision metadata (tags, hashes, destinations) is the user's business
            # alone; SQLite gives the -wal and -shm files the same mode.
            os.close(os.open(self._path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._pool: ConnectionPool[sqlite3.Connection] = ConnectionPool(
            self._connect,
            sqlite3.Connection.close,
            max_size=max_connections,
            timeout=busy_timeout,
            is_usable=lambda conn: not conn.in_transaction,
        )
        try:
            with self._errors(), self._pool.connection() as conn:
                self._enable_wal(conn)
                migrate_sqlite(conn)
        except BaseException:
            self._pool.close()
            raise

    @property
    def location(self) -> str:
        """The absolute path of the database file."""
        return str(self._path)

    @property
    def path(self) -> Path:
        """The absolute path of the database file."""
        return self._path

    def close(self) -> None:
        """Close every connection. Idempotent."""
        self._pool.close()

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # WAL is a property of the file: set once, later connections inherit it.
        # Switching needs an exclusive lock and SQLite does not call the busy
        # handler for it, so two processes (or threads) opening a new file at once
        # see "database is locked": retry within the busy timeout.
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.005
        while True:
            try:
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                self.inline_reads = str(mode).lower() == "wal"
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn a lock held past the timeout (or an unreadable file) into `AuditError`."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise AuditError(
                f"audit database {self._path} failed: {exc}"
                + (f" (still locked after {self._busy_timeout:g}s)" if _is_busy(exc) else ""),
                location=str(self._path),
            ) from exc
        except TimeoutError as exc:  # no pooled connection came free
            raise AuditError(
                f"audit database {self._path}: {exc}", location=str(self._path)
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; writes use BEGIN IMMEDIATE
        # so a busy file is waited on up front instead of failing mid-transaction.
        conn = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # the pool hands a connection to one thread at a time
        )
        conn.execute("PRAGMA synchronous = NORMAL")
        # No checkpoint inside a commit: it fsyncs, and the commit that crossed the
        # 1000-page mark (one intent in ~250) waited 4-10 ms for it. `checkpoint` runs
        # it instead, from the writer thread, off every request's path.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        with self._errors(), self._writing(), self._pool.connection() as conn:
            self._begin(conn)
            try:
                yield _SQLiteTransaction(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._commits += 1

    def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, retried every 0.1-2 ms while another process writes.

        SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20... ms between tries, so
        with several processes on one file (``serve --workers N``) a write that found
        the lock taken for 60 us waited a millisecond or more, and request tails grew.
        Reads keep the connection's busy timeout.
        """
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            deadline: float | None = None
            delay = 0.0001
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self._busy_timeout
                    elif now >= deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 0.002)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")

    def checkpoint(self, *, min_commits: int = 200) -> bool:
        """Copy the write-ahead log into the database file once ``min_commits`` commits
        of this store have accumulated there (a PASSIVE checkpoint: it waits for no one).

        `AuditWriter` calls it from its thread after each batch, so the fsync it costs is
        paid off the request path; commits never checkpoint themselves.

        Returns:
            Whether it ran.

        Raises:
            AuditError: The file could not be checkpointed.
        """
        if self._commits < min_commits:
            return False
        self._commits = 0
        with self._errors(), self._pool.connection() as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return True

    @contextmanager
    def _writing(self) -> Iterator[None]:
        if not self._write_lock.acquire(timeout=self._busy_timeout):
            raise TimeoutError(f"the audit write lock was not free within {self._busy_timeout}s")
        try:
            yield
        finally:
            self._write_lock.release()

    def _fetch_all(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        with self._errors(), self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class _SQLiteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._conn.executemany(sql, rows)


class _SQLiteMigrationDB:
    dialect: Dialect = "sqlite"
    param = "?"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        return self._conn.execute(sql, params).fetchall()


def migrate_sqlite(
    conn: sqlite3.Connection, migrations: Sequence[Migration] | None = None
) -> list[str]:
    """Apply pending migrations in one ``BEGIN IMMEDIATE`` transaction.

    The write lock serialises processes that open a new file at the same moment:
    the second one waits, then finds nothing left to apply.

    Args:
        conn: A connection opened with ``isolation_level=None``.
        migrations: What to apply; every migration by default.

    Returns:
        The names applied by this call.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        applied = migrate(_SQLiteMigrationDB(conn), migrations)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return applied
