"""Budget counters in the audit store: atomic reserve and settle across processes.

This module owns the ``lf_budget_usage`` table (created by the audit migration
``m007_budget_usage``): one row per budget and period with what is *spent* (settled
calls) and what is *reserved* (calls in flight). It must never hold prompt text and
never decide whether a call may go (that is :mod:`llm_localfirst.budget`).

Atomicity:

- SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock before reading, so the
  check and the increment of a reservation are one step for every process on the file.
- PostgreSQL: one conditional ``UPDATE ... WHERE spent + reserved + estimate <= limit
  RETURNING``; the row lock serialises concurrent updates and the condition is
  re-checked against the committed row.
- Memory: a lock, for one process (``memory:`` audit stores and 0.2.0 budgets).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
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
_TABLE = "lf_budget_usage"
_ZERO: Counters = (0, 0, 0, 0, 0, 0)


class BudgetStore(Protocol):
    """Counters per ``(budget, period)``, shared by every instance that opens the store."""

    #: True when calls do I/O and should run off the event loop.
    blocking: bool

    def reserve(
        self,
        budget: str,
        period: str,
        micros: int,
        tokens: int,
        calls: int,
        limit_micros: int | None,
        limit_tokens: int | None,
        limit_calls: int | None,
    ) -> bool:
        """Add a reservation if spent + reserved + it stays within every limit given."""
        ...

    def settle(
        self,
        budget: str,
        period: str,
        release_micros: int,
        release_tokens: int,
        release_calls: int,
        micros: int,
        tokens: int,
        calls: int,
    ) -> None:
        """Release a reservation and add what the call really spent, in one step."""
        ...

    def read(self, budget: str, period: str) -> Counters:
        """The counters of one period (zeros when nothing was spent yet)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def _conditions(
    p: str,
    micros: int,
    tokens: int,
    calls: int,
    limit_micros: int | None,
    limit_tokens: int | None,
    limit_calls: int | None,
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if limit_micros is not None:
        clauses.append(f"spent_micros + reserved_micros + {p} <= {p}")
        params += [micros, limit_micros]
    if limit_tokens is not None:
        clauses.append(f"spent_tokens + reserved_tokens + {p} <= {p}")
        params += [tokens, limit_tokens]
    if limit_calls is not None:
        clauses.append(f"spent_calls + reserved_calls + {p} <= {p}")
        params += [calls, limit_calls]
    return "".join(f" AND {c}" for c in clauses), params


def _statements(p: str) -> tuple[str, str, str]:
    insert = (
        f"INSERT INTO {_TABLE} (budget, period_start, spent_micros, "  # noqa: S608
        "spent_tokens, "
        "spent_calls, reserved_micros, reserved_tokens, reserved_calls, updated_at) "
        f"VALUES ({p}, {p}, 0, 0, 0, 0, 0, 0, {p}) "
        "ON CONFLICT (budget, period_start) DO NOTHING"
    )
    reserve = (
        f"UPDATE {_TABLE} SET reserved_micros = reserved_micros + {p}, "  # noqa: S608
        f"reserved_tokens = reserved_tokens + {p}, reserved_calls = reserved_calls + {p}, "
        f"updated_at = {p} WHERE budget = {p} AND period_start = {p}"
    )
    settle = (
        f"UPDATE {_TABLE} SET "  # noqa: S608
        f"reserved_micros = MAX_(reserved_micros - {p}), "
        f"reserved_tokens = MAX_(reserved_tokens - {p}), "
        f"reserved_calls = MAX_(reserved_calls - {p}), "
        f"spent_micros = spent_micros + {p}, spent_tokens = spent_tokens + {p}, "
        f"spent_calls = spent_calls + {p}, updated_at = {p} "
        f"WHERE budget = {p} AND period_start = {p}"
    )
    return insert, reserve, settle


_READ = (
    "SELECT spent_micros, spent_tokens, spent_calls, reserved_micros, "  # noqa: S608
    f"reserved_tokens, reserved_calls FROM {_TABLE} WHERE budget = {{p}} "
    "AND period_start = {p}"
)


def _counters(row: tuple[Any, ...] | None) -> Counters:
    if row is None:
        return _ZERO
    a, b, c, d, e, f = (int(v) for v in row)
    return a, b, c, d, e, f


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
        micros: int,
        tokens: int,
        calls: int,
        limit_micros: int | None,
        limit_tokens: int | None,
        limit_calls: int | None,
    ) -> bool:
        with self._lock:
            row = self._rows.setdefault((budget, period), [0] * 6)
            if (
                (limit_micros is not None and row[0] + row[3] + micros > limit_micros)
                or (limit_tokens is not None and row[1] + row[4] + tokens > limit_tokens)
                or (limit_calls is not None and row[2] + row[5] + calls > limit_calls)
            ):
                return False
            row[3] += micros
            row[4] += tokens
            row[5] += calls
            return True

    def settle(
        self,
        budget: str,
        period: str,
        release_micros: int,
        release_tokens: int,
        release_calls: int,
        micros: int,
        tokens: int,
        calls: int,
    ) -> None:
        with self._lock:
            row = self._rows.setdefault((budget, period), [0] * 6)
            row[3] = max(0, row[3] - release_micros)
            row[4] = max(0, row[4] - release_tokens)
            row[5] = max(0, row[5] - release_calls)
            row[0] += micros
            row[1] += tokens
            row[2] += calls

    def read(self, budget: str, period: str) -> Counters:
        with self._lock:
            row = self._rows.get((budget, period))
            return _counters(tuple(row) if row else None)

    def close(self) -> None:
        """Nothing to release."""


class SQLiteBudgetStore:
    """Counters in the audit SQLite file, one ``BEGIN IMMEDIATE`` transaction per step.

    Args:
        path: The audit database file (already migrated by the audit store).
        busy_timeout: Seconds to wait for another process's write lock.
    """

    blocking = True

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        insert, reserve, settle = _statements("?")
        self._insert, self._reserve = insert, reserve
        self._settle = settle.replace("MAX_(", "MAX(0, ")
        self._read = _READ.format(p="?")

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
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def reserve(
        self,
        budget: str,
        period: str,
        micros: int,
        tokens: int,
        calls: int,
        limit_micros: int | None,
        limit_tokens: int | None,
        limit_calls: int | None,
    ) -> bool:
        where, params = _conditions(
            "?", micros, tokens, calls, limit_micros, limit_tokens, limit_calls
        )
        now = utc_now_iso()
        with self._immediate() as conn:
            conn.execute(self._insert, (budget, period, now))
            cur = conn.execute(
                self._reserve + where, (micros, tokens, calls, now, budget, period, *params)
            )
            return cur.rowcount == 1

    def settle(
        self,
        budget: str,
        period: str,
        release_micros: int,
        release_tokens: int,
        release_calls: int,
        micros: int,
        tokens: int,
        calls: int,
    ) -> None:
        with self._immediate() as conn:
            conn.execute(
                self._settle,
                (
                    release_micros,
                    release_tokens,
                    release_calls,
                    micros,
                    tokens,
                    calls,
                    utc_now_iso(),
                    budget,
                    period,
                ),
            )

    def read(self, budget: str, period: str) -> Counters:
        return _counters(self._conn().execute(self._read, (budget, period)).fetchone())

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


class PostgresBudgetStore:
    """Counters in the audit PostgreSQL database: one conditional UPDATE per reservation.

    Args:
        pool: The audit store's connection pool (autocommit connections).
    """

    blocking = True

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        insert, reserve, settle = _statements("%s")
        self._insert, self._reserve = insert, reserve
        self._settle = settle.replace("MAX_(", "GREATEST(0, ")
        self._read = _READ.format(p="%s")

    def reserve(
        self,
        budget: str,
        period: str,
        micros: int,
        tokens: int,
        calls: int,
        limit_micros: int | None,
        limit_tokens: int | None,
        limit_calls: int | None,
    ) -> bool:
        where, params = _conditions(
            "%s", micros, tokens, calls, limit_micros, limit_tokens, limit_calls
        )
        now = utc_now_iso()
        with self._pool.connection() as conn:
            conn.execute(self._insert, (budget, period, now))
            row = conn.execute(
                self._reserve + where + " RETURNING 1",
                (micros, tokens, calls, now, budget, period, *params),
            ).fetchone()
            return row is not None

    def settle(
        self,
        budget: str,
        period: str,
        release_micros: int,
        release_tokens: int,
        release_calls: int,
        micros: int,
        tokens: int,
        calls: int,
    ) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                self._settle,
                (
                    release_micros,
                    release_tokens,
                    release_calls,
                    micros,
                    tokens,
                    calls,
                    utc_now_iso(),
                    budget,
                    period,
                ),
            )

    def read(self, budget: str, period: str) -> Counters:
        with self._pool.connection() as conn:
            return _counters(conn.execute(self._read, (budget, period)).fetchone())

    def close(self) -> None:
        """The pool belongs to the audit store, which closes it."""


def budget_store_for(audit: object) -> BudgetStore:
    """The budget store that shares ``audit``'s database (memory for other stores)."""
    from llm_localfirst.audit.sqlite import SQLiteAuditStore

    if isinstance(audit, SQLiteAuditStore):
        return SQLiteBudgetStore(audit.path)
    if type(audit).__name__ == "PostgresAuditStore":
        return PostgresBudgetStore(audit._pool)  # type: ignore[attr-defined]
    return MemoryBudgetStore()
