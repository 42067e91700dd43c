"""The hash chain that makes the audit log evident: linking rows, and checking the links.

Every stored row (a decision in ``audit_records``, an intent in ``audit_intents``)
carries ``chain_id``, ``seq`` (1, 2, 3... within its chain), ``prev_hash`` (the
``row_hash`` of the row before it in its chain, `GENESIS` for the first) and
``row_hash``: SHA-256 over a canonical encoding of the table name, the chain
fields and every stored column. One writer (one store instance) owns one chain,
so instances sharing a database never contend for a chain head. The newest
``(seq, row_hash)`` of every chain is also kept in ``audit_chain_heads``, so
deleting the newest rows of a chain (tail truncation) is evident too.

This module owns the encoding (`row_hash`), the per-writer state (`Chain`) and
the pure checks (`check_chain`); the stores read rows for it. It does no I/O.

What a keyless chain cannot prove: someone who can write the database directly,
drop its triggers and recompute every hash can forge a whole chain (or delete a
whole chain with its head). Anchor the heads elsewhere (``audit verify --json``
prints them) to detect that.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llm_localfirst.audit.record import new_id

if TYPE_CHECKING:
    from llm_localfirst.audit.intent import AuditIntent

__all__ = [
    "CHAIN_COLUMNS",
    "GENESIS",
    "LEGACY_CHAIN",
    "Chain",
    "ChainProblem",
    "VerifyResult",
    "check_chain",
    "row_hash",
]

#: ``prev_hash`` of the first row of every chain.
GENESIS = "0" * 64
#: The chain id given to rows written before the chain existed (sealed by migration m004).
LEGACY_CHAIN = "legacy"
#: The columns every chained table carries, in this order, after its own columns.
CHAIN_COLUMNS: tuple[str, ...] = ("chain_id", "seq", "prev_hash", "row_hash")
#: Columns stored as floating point: hashed as floats whatever number type was given.
FLOAT_COLUMNS = frozenset({"latency_ms"})

_VERSION = b"lf-audit-chain-v1\x00"
_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode


def row_hash(
    table: str,
    columns: Sequence[str],
    row: Mapping[str, object],
    *,
    chain_id: str,
    seq: int,
    prev_hash: str,
) -> str:
    """Return the hex SHA-256 of one row: table, chain fields, then ``columns`` in order.

    ``row`` holds values as the row form gives them (booleans as 0/1). Numbers in
    `FLOAT_COLUMNS` hash as floats, so the hash of a row as written equals the
    hash of the same row read back from SQLite or PostgreSQL.
    """
    values: list[object] = [table, chain_id, seq, prev_hash, *[row[c] for c in columns]]
    for i in _float_positions(tuple(columns)):
        value = values[i]
        if value is not None and type(value) is not float:
            values[i] = float(value)  # type: ignore[arg-type]
    return hashlib.sha256(_VERSION + _encode(values).encode("ascii")).hexdigest()


@functools.lru_cache(maxsize=8)
def _float_positions(columns: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(4 + i for i, name in enumerate(columns) if name in FLOAT_COLUMNS)


class Chain:
    """One writer's chain over one table: its id and current head.

    `link` computes chain fields for a batch without changing the head; the store
    calls `advance` once the batch is committed, so a failed transaction leaves
    the chain where it was. `resync` re-reads the head after a failure whose
    outcome is unknown (a commit that may have happened).

    Args:
        table: The table this chain covers.
        columns: The table's own columns, hashed in this order.
    """

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.chain_id = new_id()
        self.seq = 0
        self.head = GENESIS
        self.lock = threading.Lock()  # held by the store across link -> commit -> advance
        self.stale = False

    def link(self, rows: Iterable[Mapping[str, object]]) -> list[dict[str, object]]:
        """Return ``rows`` with ``chain_id``, ``seq``, ``prev_hash`` and ``row_hash`` added."""
        seq, head = self.seq, self.head
        linked: list[dict[str, object]] = []
        for row in rows:
            seq += 1
            digest = row_hash(
                self.table, self.columns, row, chain_id=self.chain_id, seq=seq, prev_hash=head
            )
            linked.append(
                {
                    **row,
                    "chain_id": self.chain_id,
                    "seq": seq,
                    "prev_hash": head,
                    "row_hash": digest,
                }
            )
            head = digest
        return linked

    def advance(self, linked: Sequence[Mapping[str, object]]) -> None:
        """Move the head past ``linked`` (call after the batch is committed)."""
        if linked:
            last = linked[-1]
            self.seq = int(last["seq"])  # type: ignore[call-overload]
            self.head = str(last["row_hash"])

    def resync(self, head: tuple[int, str] | None) -> None:
        """Set the head to what the database holds (``None``: nothing committed yet)."""
        self.seq, self.head = head if head is not None else (0, GENESIS)
        self.stale = False


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first thing wrong with one chain.

    Attributes:
        table: ``audit_records`` or ``audit_intents``.
        chain_id: The chain (``None`` for a row that carries no chain fields).
        id: The id of the first bad row (``None`` when rows are missing at the end).
        seq: Its position in the chain, when known.
        problem: What is wrong, in a sentence.
    """

    table: str
    chain_id: str | None
    id: str | None
    seq: int | None
    problem: str

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-friendly form."""
        return {
            "table": self.table,
            "chain_id": self.chain_id,
            "id": self.id,
            "seq": self.seq,
            "problem": self.problem,
        }

    def __str__(self) -> str:
        where = f"row {self.id}" if self.id else "end of chain"
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"{self.table} chain {self.chain_id}: {where}{seq}: {self.problem}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What `verify_store` found.

    Attributes:
        rows: Decision rows checked.
        intents: Intent rows checked.
        chains: Number of chains checked (both tables).
        legacy_rows: Rows written before the chain existed, sealed by migration
            m004 into the ``legacy`` chain: evident from then on, not before.
        problems: The first problem of every bad chain (empty when all is well).
        heads: ``{table: {chain_id: [seq, row_hash]}}``, to anchor elsewhere.
    """

    rows: int
    intents: int
    chains: int
    legacy_rows: int
    problems: tuple[ChainProblem, ...]
    heads: Mapping[str, Mapping[str, tuple[int, str]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every chain checked out."""
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-friendly form."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "intents": self.intents,
            "chains": self.chains,
            "legacy_rows": self.legacy_rows,
            "first_problem": self.problems[0].to_dict() if self.problems else None,
            "problems": [p.to_dict() for p in self.problems],
            "heads": {
                t: {c: list(h) for c, h in chains.items()} for t, chains in self.heads.items()
            },
        }

    def to_text(self, location: str, unknown: Sequence[AuditIntent] = ()) -> str:
        """The human form printed by ``audit verify``: a verdict, then any problems.

        Args:
            location: The store's path or redacted URL.
            unknown: Intents with no decision row (listed as "sent, outcome unknown").
        """
        lines: list[str] = []
        legacy = f", {self.legacy_rows} legacy rows sealed at upgrade" if self.legacy_rows else ""
        counts = (
            f"{self.rows} rows and {self.intents} intents in {self.chains} chain(s)"
            f"{legacy}; store {location}"
        )
        if self.ok:
            lines.append(f"audit log verified: {counts}")
        else:
            first = self.problems[0]
            lines.append(
                f"audit log NOT verified: first bad row {first.id or '-'} in chain "
                f"{first.chain_id} ({first.table}"
                f"{'' if first.seq is None else f', seq {first.seq}'}): {first.problem}"
            )
            lines.extend(f"  also: {p}" for p in self.problems[1:])
            lines.append(f"checked {counts}")
        for i in unknown:
            lines.append(
                f"sent, outcome unknown: {i.id} attempt {i.attempt} at {i.ts} to "
                f"{i.locality}:{i.destination}{' (sensitive)' if i.sensitive else ''}"
            )
        return "\n".join(lines) + "\n"


def check_chain(
    table: str,
    columns: Sequence[str],
    chain_id: str,
    rows: Iterable[Mapping[str, object]],
    head: tuple[int, str] | None,
) -> tuple[int, ChainProblem | None]:
    """Check one chain's rows, given in ``seq`` order, against each other and its head.

    Returns:
        ``(rows seen, first problem or None)``. Checking stops at the first problem.
    """
    expected_seq, prev, prev_id, count = 1, GENESIS, None, 0

    def bad(row: Mapping[str, object] | None, problem: str) -> tuple[int, ChainProblem]:
        rid = None if row is None else str(row["id"])
        seq = None if row is None else _int_or_none(row.get("seq"))
        return count, ChainProblem(table, chain_id, rid, seq, problem)

    for row in rows:
        count += 1
        seq = _int_or_none(row.get("seq"))
        if seq is None or seq < expected_seq:
            return bad(
                row,
                f"sequence number {seq} repeats or goes back (expected {expected_seq}): "
                "a row was inserted or reordered",
            )
        if seq > expected_seq:
            missing = seq - expected_seq
            return bad(
                row,
                f"{missing} row(s) missing before it (expected seq {expected_seq}, "
                f"after row {prev_id or 'the start'}): rows were deleted",
            )
        if row.get("prev_hash") != prev:
            return bad(
                row,
                "prev_hash does not match the row before it: a row was deleted, "
                "inserted or reordered",
            )
        recomputed = row_hash(table, columns, row, chain_id=chain_id, seq=seq, prev_hash=prev)
        if row.get("row_hash") != recomputed:
            return bad(row, "row_hash does not match its contents: the row was edited")
        prev, prev_id, expected_seq = recomputed, str(row["id"]), seq + 1
    last_seq = expected_seq - 1
    if head is None:
        if count:
            return count, ChainProblem(
                table,
                chain_id,
                None,
                None,
                "the chain has rows but no recorded head: it was not "
                "written by a store (forged or copied in)",
            )
    else:
        head_seq, head_hash = head
        if head_seq > last_seq:
            return count, ChainProblem(
                table,
                chain_id,
                None,
                last_seq + 1,
                f"the chain head records {head_seq} rows but only {last_seq} remain: "
                "the newest rows were deleted",
            )
        if head_seq < last_seq:
            return count, ChainProblem(
                table,
                chain_id,
                None,
                head_seq + 1,
                f"{last_seq - head_seq} row(s) follow the chain head (seq {head_seq}): "
                "rows were appended outside the writer",
            )
        if head_hash != prev:
            return count, ChainProblem(
                table,
                chain_id,
                prev_id,
                last_seq,
                "the newest row does not match the chain head: it was replaced",
            )
    return count, None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
