"""Budget counters in the audit store: atomic reserve and settle across processes.

This module owns two tables (created by the audit migration ``m007_budget_usage``):
``lf_budget_usage``, one row per budget and period with what is *spent* (settled
calls) and what is *reserved* (leases that instances hold for calls in flight); and
``lf_budget_leases``, which instance (a *holder*) holds how much of that reservation,
until when. A holder refreshes its rows whenever it writes; rows past their expiry
(an instance that crashed) are reaped at the next reservation, so a dead instance
cannot keep a budget's share forever. It must never hold prompt text and never
decide whether a call may go (that is :mod:`llm_localfirst.budget_gate`).

Atomicity:

- SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock before reading, so the
  check and the increment of a reservation are one step for every process on the file.
- PostgreSQL: one conditional ``UPDATE ... WHERE spent + reserved + estimate <= limit
  RETURNING``; the row lock serialises concurrent updates and the condition is
  re-checked against the committed row. Reaping and the holder's row share its
  transaction.
- Memory: a lock, for one process (``memory:`` audit stores and 0.2.0 budgets).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from llm_localfirst.audit.record import utc_now_iso

__all__ = [
    "BudgetStore",
    "MemoryBudgetStore",
    "PostgresBudgetStore",
    "SQLiteBudgetStore",
    "budget_store_for",
]

#: spent micros, spent tokens, spent calls, reserved micros, reserved tokens, reserved calls
Counters = tuple[int, int, int, int, int, int]
Triple = tuple[int, int, int]
_TABLE = "lf_budget_usage"
_LEASES = "lf_budget_leases"
_ZERO: Counters = (0, 0, 0, 0, 0, 0)


class BudgetStore(Protocol):
    """Counters per ``(budget, period)``, shared by every instance that opens the store."""

    #: True when calls do I/O and should run off the event loop.
    blocking: bool

    def reserve(
        self,
        budget: str,
        period: str,
        amount: Triple,
        limits: tuple[int | None, int | None, int | None],
        *,
        holder: str,
        ttl: float,
    ) -> bool:
        """Reserve ``amount`` (micro-USD, tokens, calls) for ``holder`` if spent + reserved +
        it stays within every limit given; expired holders are reaped first."""
        ...

    def settle(
        self,
        budget: str,
        period: str,
        release: Triple,
        spent: Triple,
        *,
        holder: str,
        ttl: float,
    ) -> None:
        """Hand back ``release`` of the holder's reservation and add ``spent``, in one step;
        refreshes the holder's expiry."""
        ...

    def read(self, budget: str, period: str) -> Counters:
        """The counters of one period (zeros when nothing was spent yet)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MemoryBudgetStore:
    """Counters in this process only (``memory:`` audit stores, 0.2.0 budgets)."""

    blocking = False

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], list[int]] = {}
        self._lock = threading.Lock()

    def reserve(
        self,
        budget: str,
        period: str,
        amount: Triple,
        limits: tuple[int | None, int | None, int | None],
        *,
        holder: str = "",
        ttl: float = 0.0,
    ) -> bool:
        with self._lock:
            row = self._rows.setdefault((budget, period), [0] * 6)
            for i, limit in enumerate(limits):
                if limit is not None and row[i] + row[3 + i] + amount[i] > limit:
                    return False
            for i in range(3):
                row[3 + i] += amount[i]
            return True

    def settle(
        self,
        budget: str,
        period: str,
        release: Triple,
        spent: Triple,
        *,
        holder: str = "",
        ttl: float = 0.0,
    ) -> None:
        with self._lock:
            row = self._rows.setdefault((budget, period), [0] * 6)
            for i in range(3):
                row[3 + i] = max(0, row[3 + i] - release[i])
                row[i] += spent[i]

    def read(self, budget: str, period: str) -> Counters:
        with self._lock:
            row = self._rows.get((budget, period))
            return _counters(tuple(row) if row else None)

    def close(self) -> None:
        """Nothing to release."""


class _Tx(Protocol):
    def __call__(self, sql: str, params: Sequence[object] = ()) -> Any: ...


class _SQLBudgetStore:
    """The statements both SQL dialects share; subclasses give transactions."""

    blocking = True
    param = "?"
    greatest = "MAX"
    returning = False

    def _transaction(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def reserve(
        self,
        budget: str,
        period: str,
        amount: Triple,
        limits: tuple[int | None, int | None, int | None],
        *,
        holder: str,
        ttl: float,
    ) -> bool:
        p = self.param
        now, stamp = time.time(), utc_now_iso()
        where: list[str] = []
        params: list[object] = []
        for column, value, limit in zip(("micros", "tokens", "calls"), amount, limits, strict=True):
            if limit is not None:
                where.append(f" AND spent_{column} + reserved_{column} + {p} <= {p}")
                params += [value, limit]
        with self._transaction() as tx:
            tx(
                f"INSERT INTO {_TABLE} (budget, period_start, spent_micros, spent_tokens, "  # noqa: S608
                "spent_calls, reserved_micros, reserved_tokens, reserved_calls, updated_at) "
                f"VALUES ({p}, {p}, 0, 0, 0, 0, 0, 0, {p}) "
                "ON CONFLICT (budget, period_start) DO NOTHING",
                (budget, period, stamp),
            )
            self._reap(tx, budget, period, now, stamp)
            cur = tx(
                f"UPDATE {_TABLE} SET reserved_micros = reserved_micros + {p}, "  # noqa: S608
                f"reserved_tokens = reserved_tokens + {p}, "
                f"reserved_calls = reserved_calls + {p}, updated_at = {p} "
                f"WHERE budget = {p} AND period_start = {p}"
                + "".join(where)
                + (" RETURNING 1" if self.returning else ""),
                (*amount, stamp, budget, period, *params),
            )
            granted = cur.fetchone() is not None if self.returning else cur.rowcount == 1
            if granted:
                tx(
                    f"INSERT INTO {_LEASES} (budget, period_start, holder, micros, tokens, "  # noqa: S608
                    f"calls, expires_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) "
                    "ON CONFLICT (budget, period_start, holder) DO UPDATE SET "
                    f"micros = {_LEASES}.micros + excluded.micros, "
                    f"tokens = {_LEASES}.tokens + excluded.tokens, "
                    f"calls = {_LEASES}.calls + excluded.calls, "
                    "expires_at = excluded.expires_at",
                    (budget, period, holder, *amount, now + ttl),
                )
            return granted

    def _reap(self, tx: _Tx, budget: str, period: str, now: float, stamp: str) -> None:
        """Hand back the reservations of holders past their expiry (crashed instances)."""
        p = self.param
        rows = tx(
            f"SELECT micros, tokens, calls FROM {_LEASES} WHERE budget = {p} "  # noqa: S608
            f"AND period_start = {p} AND expires_at < {p}",
            (budget, period, now),
        ).fetchall()
        if not rows:
            return
        dead = tuple(sum(int(r[i]) for r in rows) for i in range(3))
        self._move(tx, budget, period, dead, (0, 0, 0), stamp)
        tx(
            f"DELETE FROM {_LEASES} WHERE budget = {p} AND period_start = {p} "  # noqa: S608
            f"AND expires_at < {p}",
            (budget, period, now),
        )

    def _move(
        self,
        tx: _Tx,
        budget: str,
        period: str,
        release: Sequence[int],
        spent: Sequence[int],
        stamp: str,
    ) -> None:
        p, g = self.param, self.greatest
        tx(
            f"UPDATE {_TABLE} SET "  # noqa: S608
            f"reserved_micros = {g}(0, reserved_micros - {p}), "
            f"reserved_tokens = {g}(0, reserved_tokens - {p}), "
            f"reserved_calls = {g}(0, reserved_calls - {p}), "
            f"spent_micros = spent_micros + {p}, spent_tokens = spent_tokens + {p}, "
            f"spent_calls = spent_calls + {p}, updated_at = {p} "
            f"WHERE budget = {p} AND period_start = {p}",
            (*release, *spent, stamp, budget, period),
        )

    def settle(
        self,
        budget: str,
        period: str,
        release: Triple,
        spent: Triple,
        *,
        holder: str,
        ttl: float,
    ) -> None:
        p, g = self.param, self.greatest
        with self._transaction() as tx:
            row = tx(
                f"SELECT micros, tokens, calls FROM {_LEASES} WHERE budget = {p} "  # noqa: S608
                f"AND period_start = {p} AND holder = {p}",
                (budget, period, holder),
            ).fetchone()
            # Hand back no more than this holder still holds: if its lease was reaped
            # (it looked dead), others' reservations must not shrink.
            held = tuple(int(v) for v in row) if row is not None else (0, 0, 0)
            mine = tuple(min(release[i], held[i]) for i in range(3))
            self._move(tx, budget, period, mine, spent, utc_now_iso())
            if row is not None:
                tx(
                    f"UPDATE {_LEASES} SET micros = {g}(0, micros - {p}), "  # noqa: S608
                    f"tokens = {g}(0, tokens - {p}), calls = {g}(0, calls - {p}), "
                    f"expires_at = {p} WHERE budget = {p} AND period_start = {p} "
                    f"AND holder = {p}",
                    (*mine, time.time() + ttl, budget, period, holder),
                )
                tx(
                    f"DELETE FROM {_LEASES} WHERE budget = {p} AND period_start = {p} "  # noqa: S608
                    f"AND holder = {p} AND micros = 0 AND tokens = 0 AND calls = 0",
                    (budget, period, holder),
                )

    def read(self, budget: str, period: str) -> Counters:
        p = self.param
        with self._transaction() as tx:
            row = tx(
                "SELECT spent_micros, spent_tokens, spent_calls, reserved_micros, "  # noqa: S608
                f"reserved_tokens, reserved_calls FROM {_TABLE} WHERE budget = {p} "
                f"AND period_start = {p}",
                (budget, period),
            ).fetchone()
        return _counters(row)


class SQLiteBudgetStore(_SQLBudgetStore):
    """Counters in the audit SQLite file, one ``BEGIN IMMEDIATE`` transaction per step.

    Args:
        path: The audit database file (already migrated by the audit store).
        busy_timeout: Seconds to wait for another process's write lock.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[_Tx]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield lambda sql, params=(): conn.execute(sql, params)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close this store's connections (the audit store keeps its own)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


class PostgresBudgetStore(_SQLBudgetStore):
    """Counters in the audit PostgreSQL database: one conditional UPDATE per reservation.

    Args:
        pool: The audit store's connection pool (autocommit connections).
    """

    param = "%s"
    greatest = "GREATEST"
    returning = True

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @contextmanager
    def _transaction(self) -> Iterator[_Tx]:
        with self._pool.connection() as conn, conn.transaction():
            yield lambda sql, params=(): conn.execute(sql, params or None)

    def close(self) -> None:
        """The pool belongs to the audit store, which closes it."""


def _counters(row: Sequence[Any] | None) -> Counters:
    if row is None:
        return _ZERO
    a, b, c, d, e, f = (int(v) for v in row)
    return a, b, c, d, e, f


def budget_store_for(audit: object) -> BudgetStore:
    """The budget store that shares ``audit``'s database (memory for other stores)."""
    from llm_localfirst.audit.sqlite import SQLiteAuditStore

    if isinstance(audit, SQLiteAuditStore):
        return SQLiteBudgetStore(audit.path)
    if type(audit).__name__ == "PostgresAuditStore":
        return PostgresBudgetStore(audit._pool)  # type: ignore[attr-defined]
    return MemoryBudgetStore()
