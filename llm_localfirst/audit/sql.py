"""The SQL shared by the SQLite and PostgreSQL audit stores.

This module owns the statements (insert, select, count, token totals) and the
translation of an `AuditFilter` into a parameterised ``WHERE`` clause; a subclass
supplies only connections and its placeholder style. Values always travel as
bound parameters; the f-strings (marked ``noqa: S608``) splice only this module's
constant identifiers and the placeholder. It must never update or delete rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from llm_localfirst.audit.record import COLUMNS, AuditRecord
from llm_localfirst.audit.store import AuditFilter, TokenTotals

__all__ = ["SQLAuditStore"]

_TABLE = "audit_records"
_COLUMN_LIST = ", ".join(COLUMNS)
_NEWEST_FIRST = " ORDER BY ts DESC, id DESC"


class SQLAuditStore(ABC):
    """Implements the `AuditStore` queries over DB-API connections.

    Subclasses set ``param`` (``?`` or ``%s``) and implement `_execute_many` (one
    transaction) and `_fetch_all`.
    """

    param: str

    @property
    @abstractmethod
    def location(self) -> str:
        """Human-readable path or URL of the store, with any password redacted."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    @abstractmethod
    def _execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run ``sql`` once per row, all in one transaction."""

    @abstractmethod
    def _fetch_all(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        """Run a query and return every row as a tuple."""

    def write_many(self, records: Sequence[AuditRecord]) -> None:
        """Append ``records`` in one transaction; ids already stored are skipped."""
        if not records:
            return
        placeholders = ", ".join([self.param] * len(COLUMNS))
        sql = (
            f"INSERT INTO {_TABLE} ({_COLUMN_LIST}) VALUES ({placeholders}) "  # noqa: S608
            "ON CONFLICT (id) DO NOTHING"
        )
        self._execute_many(sql, [tuple(r.to_row().values()) for r in records])

    def get(self, id: str) -> AuditRecord | None:
        """Return the record with this id, or ``None``."""
        rows = self._fetch_all(
            f"SELECT {_COLUMN_LIST} FROM {_TABLE} WHERE id = {self.param}",  # noqa: S608
            (id,),
        )
        return self._record(rows[0]) if rows else None

    def query(self, filter: AuditFilter) -> list[AuditRecord]:
        """Return matching records, newest first, paged by ``filter``."""
        where, params = self._where(filter)
        sql = (
            f"SELECT {_COLUMN_LIST} FROM {_TABLE}{where}{_NEWEST_FIRST} "  # noqa: S608
            f"LIMIT {self.param} OFFSET {self.param}"
        )
        rows = self._fetch_all(sql, [*params, filter.limit, filter.offset])
        return [self._record(row) for row in rows]

    def count(self, filter: AuditFilter) -> int:
        """Return how many records match, ignoring paging."""
        where, params = self._where(filter)
        sql = f"SELECT COUNT(*) FROM {_TABLE}{where}"  # noqa: S608
        (value,) = self._fetch_all(sql, params)[0]
        return _as_int(value)

    def token_totals(self, filter: AuditFilter) -> TokenTotals:
        """Sum requests and tokens over matching records, ignoring paging."""
        where, params = self._where(filter)
        # The casts keep PostgreSQL from widening the sums to NUMERIC.
        sql = (
            "SELECT destination, COUNT(*), "  # noqa: S608
            "CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT), "
            "CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT) "
            f"FROM {_TABLE}{where} GROUP BY destination"
        )
        groups = [
            (None if name is None else str(name), _as_int(n), _as_int(t_in), _as_int(t_out))
            for name, n, t_in, t_out in self._fetch_all(sql, params)
        ]
        return TokenTotals.from_groups(groups)

    def _where(self, filter: AuditFilter) -> tuple[str, list[object]]:
        p = self.param
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("face", filter.face),
            ("destination", filter.destination),
            ("outcome", filter.outcome),
            ("locality", filter.locality),
        ):
            if value is not None:
                clauses.append(f"{column} = {p}")
                params.append(value)
        if filter.sensitive is not None:
            clauses.append(f"sensitive = {p}")
            params.append(int(filter.sensitive))
        if filter.since is not None:
            clauses.append(f"ts >= {p}")
            params.append(filter.since)
        if filter.until is not None:
            clauses.append(f"ts < {p}")
            params.append(filter.until)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    @staticmethod
    def _record(row: tuple[object, ...]) -> AuditRecord:
        return AuditRecord.from_row(dict(zip(COLUMNS, row, strict=True)))


def _as_int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer from the database, got {value!r}")
    return value
