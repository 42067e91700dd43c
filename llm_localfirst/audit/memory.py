"""`MemoryAuditStore`: the in-memory `AuditStore`, for tests and `llm_localfirst.testing`.

This module owns a list of records guarded by a lock, with the same semantics as
the SQL stores (newest first, duplicate ids skipped). It must never touch the disk
or the network.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from llm_localfirst.audit.record import AuditRecord
from llm_localfirst.audit.store import AuditFilter, TokenTotals

__all__ = ["MemoryAuditStore"]


class MemoryAuditStore:
    """An `AuditStore` that keeps records in process memory.

    Example:
        >>> store = MemoryAuditStore()
        >>> store.count(AuditFilter())
        0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, AuditRecord] = {}
        self._closed = False

    @property
    def location(self) -> str:
        """Always ``memory:``."""
        return "memory:"

    @property
    def records(self) -> list[AuditRecord]:
        """Every stored record, in insertion order (a copy)."""
        with self._lock:
            return list(self._by_id.values())

    def write_many(self, records: Sequence[AuditRecord]) -> None:
        """Append ``records``, skipping ids already stored.

        Raises:
            RuntimeError: The store is closed.
        """
        with self._lock:
            self._check_open()
            for record in records:
                self._by_id.setdefault(record.id, record)

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
