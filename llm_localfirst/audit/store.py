"""The audit store extension point: the `AuditStore` protocol and its query values.

This module owns what every store must do (`AuditStore`), how callers ask for rows
(`AuditFilter`, validated on construction) and what a usage summary looks like
(`TokenTotals`). `AuditFilter.matches` is the reference semantics that the SQL
stores reproduce in `WHERE` clauses.

It must never do I/O, and there is deliberately no update or delete: the log is
append-only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from llm_localfirst.audit.record import FACES, OUTCOMES, AuditRecord, normalize_iso

if TYPE_CHECKING:
    from llm_localfirst.audit.intent import AuditIntent

__all__ = ["MAX_LIMIT", "AuditFilter", "AuditStore", "ReportGroup", "SensitiveRow", "TokenTotals"]

#: Largest page `AuditFilter.limit` accepts.
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows to return. Fields left as ``None`` do not filter.

    ``since`` and ``until`` accept an ISO-8601 date (midnight UTC) or a date-time
    with an offset, and are stored normalised to the records' own format; ``since``
    is inclusive, ``until`` exclusive. ``limit`` and ``offset`` page through results
    newest first; `AuditStore.count` and `AuditStore.token_totals` ignore them.

    Raises:
        ValueError: On construction, when a value is out of range or malformed;
            the message names the field.
    """

    face: str | None = None
    destination: str | None = None
    outcome: str | None = None
    locality: str | None = None
    sensitive: bool | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.face is not None and self.face not in FACES:
            raise ValueError(f"face must be one of {sorted(FACES)}, got {self.face!r}")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, got {self.outcome!r}")
        if self.sensitive is not None and not isinstance(self.sensitive, bool):
            raise ValueError(f"sensitive must be True, False or None, got {self.sensitive!r}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise ValueError(f"limit must be an integer, got {self.limit!r}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int):
            raise ValueError(f"offset must be an integer, got {self.offset!r}")
        if self.offset < 0:
            raise ValueError(f"offset must be 0 or more, got {self.offset}")
        if self.since is not None:
            object.__setattr__(self, "since", normalize_iso(self.since, name="since"))
        if self.until is not None:
            object.__setattr__(self, "until", normalize_iso(self.until, name="until"))
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"since ({self.since}) must be before until ({self.until})")

    def matches(self, record: AuditRecord) -> bool:
        """Whether ``record`` passes every filter field (``limit`` and ``offset`` aside)."""
        return (
            (self.face is None or record.face == self.face)
            and (self.destination is None or record.destination == self.destination)
            and (self.outcome is None or record.outcome == self.outcome)
            and (self.locality is None or record.locality == self.locality)
            and (self.sensitive is None or record.sensitive == self.sensitive)
            and (self.since is None or record.ts >= self.since)
            and (self.until is None or record.ts < self.until)
        )


@dataclass(frozen=True, slots=True)
class TokenTotals:
    """Request and token counts, overall and per destination.

    Tokens an upstream did not report count as zero. Records with no destination
    (refused before dispatch) count in the totals but have no ``by_destination`` entry.

    Attributes:
        requests: Number of records.
        tokens_in: Sum of input tokens.
        tokens_out: Sum of output tokens.
        by_destination: The same figures per destination name (their own
            ``by_destination`` is empty).
    """

    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    by_destination: Mapping[str, TokenTotals] = field(default_factory=dict, hash=False)

    @classmethod
    def from_groups(cls, groups: Sequence[tuple[str | None, int, int, int]]) -> TokenTotals:
        """Build totals from ``(destination, requests, tokens_in, tokens_out)`` groups."""
        by_destination = {
            name: cls(requests, tokens_in, tokens_out)
            for name, requests, tokens_in, tokens_out in groups
            if name is not None
        }
        return cls(
            requests=sum(g[1] for g in groups),
            tokens_in=sum(g[2] for g in groups),
            tokens_out=sum(g[3] for g in groups),
            by_destination=dict(sorted(by_destination.items())),
        )

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-friendly form."""
        return {
            "requests": self.requests,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "by_destination": {
                name: {"requests": t.requests, "tokens_in": t.tokens_in, "tokens_out": t.tokens_out}
                for name, t in self.by_destination.items()
            },
        }


@dataclass(frozen=True, slots=True)
class ReportGroup:
    """How many records share face, locality, sensitivity, reasons and outcome.

    ``reasons_json`` is the stored ``sensitive_reasons_json`` text.
    """

    face: str
    locality: str | None
    sensitive: bool
    reasons_json: str
    outcome: str
    requests: int


@dataclass(frozen=True, slots=True)
class SensitiveRow:
    """The fields of a sensitive record that say where it went."""

    id: str
    ts: str
    face: str
    outcome: str
    destination: str | None
    locality: str | None
    attempts_json: str


class AuditStore(Protocol):
    """Where audit records live. Implementations must be safe to call from any thread.

    Shipped: `SQLiteAuditStore` (default), `PostgresAuditStore` (several instances
    sharing one log) and `MemoryAuditStore` (tests). Writes normally go through an
    `AuditWriter`, which calls `write_many` from its own thread.
    """

    @property
    def location(self) -> str:
        """Human-readable path or URL of the store, with any password redacted."""
        ...

    def write_many(self, records: Sequence[AuditRecord]) -> None:
        """Append ``records`` atomically: all are stored or none.

        A record whose id is already stored is skipped, so a retried batch is safe.
        """
        ...

    def get(self, id: str) -> AuditRecord | None:
        """Return the record with this id, or ``None``."""
        ...

    def query(self, filter: AuditFilter) -> list[AuditRecord]:
        """Return matching records, newest first, paged by ``filter.limit``/``offset``."""
        ...

    def count(self, filter: AuditFilter) -> int:
        """Return how many records match, ignoring ``limit`` and ``offset``."""
        ...

    def token_totals(self, filter: AuditFilter) -> TokenTotals:
        """Sum requests and tokens over matching records, ignoring ``limit``/``offset``."""
        ...

    def write_intents(self, intents: Sequence[AuditIntent]) -> None:
        """Append ``intents`` and commit them before returning (``durability: intent``).

        An ``(id, attempt)`` pair already stored is skipped.

        Raises:
            AuditError: The intents could not be committed.
        """
        ...

    def taint_add(
        self, digests: Collection[str], sessions: Collection[str], *, ttl_s: float
    ) -> None:
        """Remember message digests (hex) and session ids as sensitive for ``ttl_s`` seconds.

        Every instance sharing the store sees them. Session ids are stored hashed.

        Raises:
            ValueError: A digest is not a hex string, or ``ttl_s`` is not positive.
        """
        ...

    def taint_match(self, digests: Collection[str], sessions: Collection[str]) -> str | None:
        """``"taint"`` if any digest is remembered and unexpired, else ``"session"`` if
        any session is, else ``None``. One indexed query: cheap enough per request.
        """
        ...

    def report_groups(self, filter: AuditFilter) -> list[ReportGroup]:
        """Count matching records by face, locality, sensitivity, reasons and outcome."""
        ...

    def sensitive_rows(self, filter: AuditFilter) -> Iterator[SensitiveRow]:
        """Yield the sensitive records that match ``filter`` (ignoring its paging)."""
        ...

    def open_intents(self, filter: AuditFilter) -> list[AuditIntent]:
        """Intents in ``filter``'s time window with no decision row: sent, outcome unknown."""
        ...

    def chain_heads(self) -> dict[tuple[str, str], tuple[int, str]]:
        """Every recorded chain head: ``{(table, chain_id): (seq, row_hash)}``."""
        ...

    def chains_in(self, table: str) -> list[str | None]:
        """Every chain id present in ``table`` (``None`` if some rows carry none)."""
        ...

    def chain_rows(
        self, table: str, chain_id: str | None, *, after_seq: int = 0, limit: int = 2000
    ) -> list[dict[str, object]]:
        """A page of one chain's rows in ``seq`` order, every stored column included."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent."""
        ...
