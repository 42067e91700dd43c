"""`MemoryAuditStore`: the in-memory `AuditStore`, for tests and `llm_localfirst.testing`.

This module owns lists of rows guarded by a lock, with the same semantics as the
SQL stores (newest first, duplicate ids skipped, rows chained, taint with expiry).
It must never touch the disk or the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

from llm_localfirst.audit.chain import Chain
from llm_localfirst.audit.intent import INTENT_COLUMNS, AuditIntent
from llm_localfirst.audit.record import COLUMNS, AuditRecord
from llm_localfirst.audit.sql import taint_keys
from llm_localfirst.audit.store import AuditFilter, ReportGroup, SensitiveRow, TokenTotals

__all__ = ["MemoryAuditStore"]


class MemoryAuditStore:
    """An `AuditStore` that keeps records in process memory.

    Args:
        clock: Wall-clock seconds, for taint expiry (tests pass a fake).

    Example:
        >>> store = MemoryAuditStore()
        >>> store.count(AuditFilter())
        0
    """

    #: Reads are a dict lookup under a lock: fine to run on an event loop.
    inline_reads = True

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._by_id: dict[str, AuditRecord] = {}
        self._rows: dict[str, list[dict[str, object]]] = {"audit_records": [], "audit_intents": []}
        self._intents: dict[tuple[str, int], AuditIntent] = {}
        self._chains = {
            "audit_records": Chain("audit_records", COLUMNS),
            "audit_intents": Chain("audit_intents", INTENT_COLUMNS),
        }
        self._heads: dict[tuple[str, str], tuple[int, str]] = {}
        self._taint: dict[tuple[str, str], float] = {}
        self._closed = False

    @property
    def location(self) -> str:
        """Always ``memory:``."""
        return "memory:"

    @property
    def chain_ids(self) -> Mapping[str, str]:
        """This store's own chain per table."""
        return {table: chain.chain_id for table, chain in self._chains.items()}

    @property
    def records(self) -> list[AuditRecord]:
        """Every stored record, in insertion order (a copy)."""
        with self._lock:
            return list(self._by_id.values())

    @property
    def intents(self) -> list[AuditIntent]:
        """Every stored intent, in insertion order (a copy)."""
        with self._lock:
            return list(self._intents.values())

    def write_many(self, records: Sequence[AuditRecord]) -> None:
        """Append ``records``, chained, skipping ids already stored.

        Raises:
            RuntimeError: The store is closed.
        """
        with self._lock:
            self._check_open()
            fresh: dict[str, AuditRecord] = {}
            for record in records:
                if record.id not in self._by_id:
                    fresh.setdefault(record.id, record)
            self._by_id.update(fresh)
            self._append("audit_records", [r.to_row() for r in fresh.values()])

    def write_intents(self, intents: Sequence[AuditIntent]) -> None:
        """Append ``intents``, chained, skipping (id, attempt) pairs already stored.

        Raises:
            RuntimeError: The store is closed.
        """
        with self._lock:
            self._check_open()
            fresh: dict[tuple[str, int], AuditIntent] = {}
            for intent in intents:
                key = (intent.id, intent.attempt)
                if key not in self._intents:
                    fresh.setdefault(key, intent)
            self._intents.update(fresh)
            self._append("audit_intents", [i.to_row() for i in fresh.values()])

    def _append(self, table: str, rows: list[dict[str, object]]) -> None:
        chain = self._chains[table]
        linked = chain.link(rows)
        chain.advance(linked)
        self._rows[table].extend(linked)
        if linked:
            self._heads[(table, chain.chain_id)] = (chain.seq, chain.head)

    def taint_add(
        self, digests: Collection[str], sessions: Collection[str], *, ttl_s: float
    ) -> None:
        """Remember digests and sessions as sensitive for ``ttl_s`` seconds.

        Raises:
            ValueError: A digest is not hex, or ``ttl_s`` is not positive.
        """
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
        keys, session_keys = taint_keys(digests, sessions)
        expires = self._clock() + ttl_s
        with self._lock:
            for entry in [("d", k) for k in keys] + [("s", k) for k in session_keys]:
                self._taint[entry] = max(expires, self._taint.get(entry, 0.0))

    def taint_match(self, digests: Collection[str], sessions: Collection[str]) -> str | None:
        """``"taint"``, ``"session"`` or ``None`` (see `AuditStore.taint_match`)."""
        keys, session_keys = taint_keys(digests, sessions)
        now = self._clock()
        with self._lock:
            if any(self._taint.get(("d", k), 0.0) > now for k in keys):
                return "taint"
            if any(self._taint.get(("s", k), 0.0) > now for k in session_keys):
                return "session"
        return None

    def get(self, id: str) -> AuditRecord | None:
        """Return the record with this id, or ``None``."""
        with self._lock:
            self._check_open()
            return self._by_id.get(id)

    def query(self, filter: AuditFilter) -> list[AuditRecord]:
        """Return matching records, newest first, paged by ``filter``."""
        matching = self._matching(filter)
        matching.sort(key=lambda r: (r.ts, r.id), reverse=True)
        return matching[filter.offset : filter.offset + filter.limit]

    def count(self, filter: AuditFilter) -> int:
        """Return how many records match, ignoring paging."""
        return len(self._matching(filter))

    def token_totals(self, filter: AuditFilter) -> TokenTotals:
        """Sum requests and tokens over matching records, ignoring paging."""
        groups: dict[str | None, tuple[int, int, int]] = {}
        for record in self._matching(filter):
            requests, tokens_in, tokens_out = groups.get(record.destination, (0, 0, 0))
            groups[record.destination] = (
                requests + 1,
                tokens_in + (record.tokens_in or 0),
                tokens_out + (record.tokens_out or 0),
            )
        return TokenTotals.from_groups([(name, *sums) for name, sums in groups.items()])

    def report_groups(self, filter: AuditFilter) -> list[ReportGroup]:
        """Count matching records by face, locality, sensitivity, reasons and outcome."""
        counts: dict[tuple[str, str | None, bool, str, str], int] = {}
        for record in self._matching(filter):
            row = record.to_row()
            key = (
                record.face,
                record.locality,
                record.sensitive,
                str(row["sensitive_reasons_json"]),
                record.outcome,
            )
            counts[key] = counts.get(key, 0) + 1
        return [ReportGroup(*key, requests=n) for key, n in counts.items()]

    def sensitive_rows(self, filter: AuditFilter) -> Iterator[SensitiveRow]:
        """Yield the sensitive records that match ``filter``."""
        for record in self._matching(filter):
            if record.sensitive:
                yield SensitiveRow(
                    record.id,
                    record.ts,
                    record.face,
                    record.outcome,
                    record.destination,
                    record.locality,
                    str(record.to_row()["attempts_json"]),
                )

    def open_intents(self, filter: AuditFilter) -> list[AuditIntent]:
        """Intents in the window with no decision row: sent, outcome unknown."""
        with self._lock:
            return sorted(
                (
                    i
                    for i in self._intents.values()
                    if i.id not in self._by_id
                    and (filter.since is None or i.ts >= filter.since)
                    and (filter.until is None or i.ts < filter.until)
                ),
                key=lambda i: (i.ts, i.id, i.attempt),
            )

    def chain_heads(self) -> dict[tuple[str, str], tuple[int, str]]:
        """Every chain head: ``{(table, chain_id): (seq, row_hash)}``."""
        with self._lock:
            return dict(self._heads)

    def chains_in(self, table: str) -> list[str | None]:
        """Every chain id present in ``table``."""
        with self._lock:
            return list(dict.fromkeys(str(r["chain_id"]) for r in self._rows[table]))

    def chain_rows(
        self, table: str, chain_id: str | None, *, after_seq: int = 0, limit: int = 2000
    ) -> list[dict[str, object]]:
        """A page of one chain's rows in ``seq`` order."""
        with self._lock:
            rows = [
                dict(r)
                for r in self._rows[table]
                if r["chain_id"] == chain_id and _seq(r) > after_seq
            ]
        rows.sort(key=_seq)
        return rows[:limit]

    def close(self) -> None:
        """Mark the store closed; the records stay readable through `records`."""
        with self._lock:
            self._closed = True

    def _matching(self, filter: AuditFilter) -> list[AuditRecord]:
        with self._lock:
            self._check_open()
            return [r for r in self._by_id.values() if filter.matches(r)]

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("MemoryAuditStore is closed")

    def __repr__(self) -> str:
        return f"MemoryAuditStore({len(self._by_id)} records)"


def _seq(row: Mapping[str, object]) -> int:
    seq = row["seq"]
    return seq if isinstance(seq, int) else 0
