"""The SQL shared by the SQLite and PostgreSQL audit stores.

This module owns the statements (chained inserts, select, count, token totals,
report groups, taint) and the translation of an `AuditFilter` into a
parameterised ``WHERE`` clause; a subclass supplies only connections, its
placeholder style and the translation of driver errors into `AuditError`. Values
always travel as bound parameters; the f-strings (marked ``noqa: S608``) splice
only this module's constant identifiers and placeholders. It must never update or
delete audit rows (chain heads only advance; expired taint entries are pruned).
"""

from __future__ import annotations

import hashlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from llm_localfirst.audit.chain import CHAIN_COLUMNS, Chain
from llm_localfirst.audit.intent import INTENT_COLUMNS, AuditIntent
from llm_localfirst.audit.record import COLUMNS, AuditRecord, utc_now_iso
from llm_localfirst.audit.store import AuditFilter, ReportGroup, SensitiveRow, TokenTotals

__all__ = ["SQLAuditStore", "Transaction", "session_key", "taint_keys"]

_TABLE = "audit_records"
_INTENTS = "audit_intents"
_COLUMN_LIST = ", ".join(COLUMNS)
_NEWEST_FIRST = " ORDER BY ts DESC, id DESC"
_HEX = re.compile(r"[0-9a-fA-F]{8,128}")
_PRUNE_EVERY_S = 60.0
_TABLES: dict[str, tuple[str, ...]] = {_TABLE: COLUMNS, _INTENTS: INTENT_COLUMNS}


def session_key(session: str) -> str:
    """The stored form of a session id: its SHA-256, so no raw session id is kept."""
    return hashlib.sha256(session.encode("utf-8", "surrogatepass")).hexdigest()


def taint_keys(digests: Collection[str], sessions: Collection[str]) -> tuple[list[str], list[str]]:
    """Validate and normalise taint inputs: lower-case hex digests, hashed sessions.

    Raises:
        ValueError: A digest is not a hex string (8 to 128 digits): text never goes in.
    """
    if isinstance(digests, str) or isinstance(sessions, str):
        raise ValueError("digests and sessions must be collections of strings, not a string")
    keys: list[str] = []
    for digest in digests:
        if not isinstance(digest, str) or not _HEX.fullmatch(digest):
            raise ValueError("taint digests must be hex strings of 8 to 128 digits")
        keys.append(digest.lower())
    return sorted(set(keys)), sorted({session_key(s) for s in sessions if s})


class Transaction(Protocol):
    """One open write transaction of a SQL store."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run one statement; return its rows (empty when it returns none)."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run ``sql`` once per row."""
        ...


class SQLAuditStore(ABC):
    """Implements the `AuditStore` methods over DB-API connections.

    Subclasses set ``param`` (``?`` or ``%s``) and implement `_transaction` (one
    write transaction, driver errors turned into `AuditError`) and `_fetch_all`.
    """

    param: str
    _clock: Callable[[], float] = time.time
    #: The driver's error for a taken key: a duplicate in an optimistic batch.
    _duplicate_errors: tuple[type[BaseException], ...] = ()

    def _init_chains(self) -> None:
        self._chains = {_TABLE: Chain(_TABLE, COLUMNS), _INTENTS: Chain(_INTENTS, INTENT_COLUMNS)}
        self._last_prune = 0.0

    @property
    @abstractmethod
    def location(self) -> str:
        """Human-readable path or URL of the store, with any password redacted."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Transaction]:
        """Open one write transaction; commit on exit, roll back on error."""

    @abstractmethod
    def _fetch_all(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        """Run a query and return every row as a tuple."""

    @property
    def chain_ids(self) -> Mapping[str, str]:
        """This store's own chain per table (``audit_records``, ``audit_intents``)."""
        return {table: chain.chain_id for table, chain in self._chains.items()}

    # ------------------------------------------------------------------ writes

    def write_many(self, records: Sequence[AuditRecord]) -> None:
        """Append ``records`` in one transaction, chained; ids already stored are skipped."""
        self._append(_TABLE, [r.to_row() for r in records], ("id",))

    def write_intents(self, intents: Sequence[AuditIntent]) -> None:
        """Append and commit ``intents``, chained; stored (id, attempt) pairs are skipped."""
        self._append(_INTENTS, [i.to_row() for i in intents], ("id", "attempt"))

    def _append(self, table: str, rows: list[dict[str, object]], key: tuple[str, ...]) -> None:
        if not rows:
            return
        chain = self._chains[table]
        columns = (*_TABLES[table], *CHAIN_COLUMNS)
        p = self.param
        insert = (
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join([p] * len(columns))})"
        )
        with chain.lock:
            # Optimistic: ids are new by construction, so skip the lookup of stored ones
            # unless a failure made a duplicate possible (a retried batch). A duplicate
            # is refused by the key, and the batch is retried once with the lookup.
            for lookup in (chain.stale, True):
                try:
                    with self._transaction() as tx:
                        if chain.stale:
                            chain.resync(self._head(tx, table, chain.chain_id))
                        fresh = self._fresh(tx, table, key, rows) if lookup else _unique(rows, key)
                        linked = chain.link(fresh)
                        if linked:
                            tx.executemany(insert, [tuple(r[c] for c in columns) for r in linked])
                            self._set_head(tx, chain, linked[-1], first=chain.seq == 0)
                except self._duplicate_errors:
                    chain.stale = True
                    if lookup:
                        raise
                    continue
                except BaseException:
                    chain.stale = True  # a commit may or may not have happened: re-read the head
                    raise
                chain.advance(linked)
                return

    def _fresh(
        self, tx: Transaction, table: str, key: tuple[str, ...], rows: list[dict[str, object]]
    ) -> list[dict[str, object]]:
        unique = {tuple(row[k] for k in key): row for row in _unique(rows, key)}
        ids = sorted({str(row["id"]) for row in rows})
        marks = ", ".join([self.param] * len(ids))
        found = tx.execute(
            f"SELECT {', '.join(key)} FROM {table} WHERE id IN ({marks})",  # noqa: S608
            ids,
        )
        for existing in found:
            unique.pop(tuple(existing), None)
        return list(unique.values())

    def _head(self, tx: Transaction, table: str, chain_id: str) -> tuple[int, str] | None:
        p = self.param
        rows = tx.execute(
            f"SELECT seq, row_hash FROM audit_chain_heads WHERE tbl = {p} AND chain_id = {p}",  # noqa: S608
            (table, chain_id),
        )
        return (_as_int(rows[0][0]), str(rows[0][1])) if rows else None

    def _set_head(
        self, tx: Transaction, chain: Chain, last: Mapping[str, object], *, first: bool
    ) -> None:
        p = self.param
        values = (last["seq"], last["row_hash"], utc_now_iso(), chain.table, chain.chain_id)
        if first:
            tx.execute(
                "INSERT INTO audit_chain_heads (seq, row_hash, updated_at, tbl, chain_id) "  # noqa: S608
                f"VALUES ({p}, {p}, {p}, {p}, {p})",
                values,
            )
        else:
            tx.execute(
                f"UPDATE audit_chain_heads SET seq = {p}, row_hash = {p}, updated_at = {p} "  # noqa: S608
                f"WHERE tbl = {p} AND chain_id = {p}",
                values,
            )

    # ------------------------------------------------------------------ taint

    def taint_add(
        self, digests: Collection[str], sessions: Collection[str], *, ttl_s: float
    ) -> None:
        """Remember message digests and session ids as sensitive for ``ttl_s`` seconds.

        An entry already remembered keeps the later of its two expiry times.

        Raises:
            ValueError: A digest is not hex, or ``ttl_s`` is not positive.
            AuditError: The store cannot be written.
        """
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
        keys, session_keys = taint_keys(digests, sessions)
        if not keys and not session_keys:
            return
        now = self._clock()
        expires = now + ttl_s
        p = self.param
        upsert = (
            f"INSERT INTO audit_taint (kind, key, expires_at) VALUES ({p}, {p}, {p}) "  # noqa: S608
            "ON CONFLICT (kind, key) DO UPDATE SET expires_at = CASE "
            "WHEN excluded.expires_at > audit_taint.expires_at THEN excluded.expires_at "
            "ELSE audit_taint.expires_at END"
        )
        rows = [("d", k, expires) for k in keys] + [("s", k, expires) for k in session_keys]
        with self._transaction() as tx:
            tx.executemany(upsert, rows)
            if now - self._last_prune > _PRUNE_EVERY_S:
                tx.execute(f"DELETE FROM audit_taint WHERE expires_at <= {p}", (now,))  # noqa: S608
                self._last_prune = now

    def taint_match(self, digests: Collection[str], sessions: Collection[str]) -> str | None:
        """``"taint"`` if any digest is remembered and unexpired, ``"session"`` if any
        session is, else ``None``. One indexed query.

        Raises:
            ValueError: A digest is not hex.
            AuditError: The store cannot be read.
        """
        keys, session_keys = taint_keys(digests, sessions)
        if not keys and not session_keys:
            return None
        p = self.param
        clauses: list[str] = []
        params: list[object] = [self._clock()]
        for kind, values in (("d", keys), ("s", session_keys)):
            if values:
                clauses.append(f"(kind = '{kind}' AND key IN ({', '.join([p] * len(values))}))")
                params.extend(values)
        sql = (
            f"SELECT MIN(kind) FROM audit_taint WHERE expires_at > {p} "  # noqa: S608
            f"AND ({' OR '.join(clauses)})"
        )
        (found,) = self._fetch_all(sql, params)[0]
        return {"d": "taint", "s": "session"}.get(str(found)) if found is not None else None

    # ------------------------------------------------------------------ reads

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

    def report_groups(self, filter: AuditFilter) -> list[ReportGroup]:
        """Count matching records by face, locality, sensitivity, reasons and outcome."""
        where, params = self._where(filter)
        sql = (
            "SELECT face, locality, sensitive, sensitive_reasons_json, outcome, COUNT(*) "  # noqa: S608
            f"FROM {_TABLE}{where} "
            "GROUP BY face, locality, sensitive, sensitive_reasons_json, outcome"
        )
        return [
            ReportGroup(
                str(face),
                None if loc is None else str(loc),
                bool(sens),
                str(reasons),
                str(outcome),
                _as_int(n),
            )
            for face, loc, sens, reasons, outcome, n in self._fetch_all(sql, params)
        ]

    def sensitive_rows(self, filter: AuditFilter) -> Iterator[SensitiveRow]:
        """Yield the sensitive records that match (id, destination, locality, attempts)."""
        flt = AuditFilter(
            since=filter.since, until=filter.until, face=filter.face, sensitive=True, limit=1
        )
        where, params = self._where(flt)
        p = self.param
        last = ""
        while True:
            sql = (
                "SELECT id, ts, face, outcome, destination, locality, attempts_json "  # noqa: S608
                f"FROM {_TABLE}{where} AND id > {p} ORDER BY id LIMIT 1000"
            )
            page = self._fetch_all(sql, [*params, last])
            for rid, ts, face, outcome, dest, loc, attempts in page:
                yield SensitiveRow(
                    str(rid),
                    str(ts),
                    str(face),
                    str(outcome),
                    None if dest is None else str(dest),
                    None if loc is None else str(loc),
                    str(attempts),
                )
            if len(page) < 1000:
                return
            last = str(page[-1][0])

    def open_intents(self, filter: AuditFilter) -> list[AuditIntent]:
        """Intents in the window with no decision row: sent, outcome unknown."""
        p = self.param
        clauses, params = ["NOT EXISTS (SELECT 1 FROM audit_records r WHERE r.id = i.id)"], []
        if filter.since is not None:
            clauses.append(f"i.ts >= {p}")
            params.append(filter.since)
        if filter.until is not None:
            clauses.append(f"i.ts < {p}")
            params.append(filter.until)
        cols = ", ".join(f"i.{c}" for c in INTENT_COLUMNS)
        sql = (
            f"SELECT {cols} FROM {_INTENTS} i WHERE {' AND '.join(clauses)} "  # noqa: S608
            "ORDER BY i.ts, i.id, i.attempt"
        )
        return [
            AuditIntent.from_row(dict(zip(INTENT_COLUMNS, row, strict=True)))
            for row in self._fetch_all(sql, params)
        ]

    # ------------------------------------------------------------------ chain reads

    def chain_heads(self) -> dict[tuple[str, str], tuple[int, str]]:
        """Every recorded chain head: ``{(table, chain_id): (seq, row_hash)}``."""
        rows = self._fetch_all("SELECT tbl, chain_id, seq, row_hash FROM audit_chain_heads", ())
        return {(str(t), str(c)): (_as_int(s), str(h)) for t, c, s, h in rows}

    def chains_in(self, table: str) -> list[str | None]:
        """Every chain id present in ``table`` (``None`` if some rows carry none)."""
        _check_table(table)
        rows = self._fetch_all(f"SELECT DISTINCT chain_id FROM {table}", ())  # noqa: S608
        return [None if c is None else str(c) for (c,) in rows]

    def chain_rows(
        self, table: str, chain_id: str | None, *, after_seq: int = 0, limit: int = 2000
    ) -> list[dict[str, object]]:
        """A page of one chain's rows in ``seq`` order, every column included."""
        columns = (*_TABLES[_check_table(table)], *CHAIN_COLUMNS)
        p = self.param
        if chain_id is None:
            sql = (
                f"SELECT {', '.join(columns)} FROM {table} WHERE chain_id IS NULL "  # noqa: S608
                f"ORDER BY id LIMIT {p}"
            )
            rows = self._fetch_all(sql, (limit,))
        else:
            sql = (
                f"SELECT {', '.join(columns)} FROM {table} "  # noqa: S608
                f"WHERE chain_id = {p} AND seq > {p} ORDER BY seq LIMIT {p}"
            )
            rows = self._fetch_all(sql, (chain_id, after_seq, limit))
        return [dict(zip(columns, row, strict=True)) for row in rows]

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
        if not clauses:
            clauses.append("1 = 1")
        return " WHERE " + " AND ".join(clauses), params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    @staticmethod
    def _record(row: tuple[object, ...]) -> AuditRecord:
        return AuditRecord.from_row(dict(zip(COLUMNS, row, strict=True)))


def _unique(rows: list[dict[str, object]], key: tuple[str, ...]) -> list[dict[str, object]]:
    """``rows`` without repeats of a key within the batch (the first one wins)."""
    seen: dict[tuple[object, ...], dict[str, object]] = {}
    for row in rows:
        seen.setdefault(tuple(row[k] for k in key), row)
    return list(seen.values())


def _check_table(table: str) -> str:
    if table not in _TABLES:
        raise ValueError(f"not a chained audit table: {table!r}")
    return table


def _as_int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer from the database, got {value!r}")
    return value
