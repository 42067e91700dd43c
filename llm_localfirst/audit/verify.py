"""`verify_store`: walk every chain of a store and report the first bad row of each.

This module owns reading a store chain by chain (pages in ``seq`` order, so
memory stays flat on a large log) and comparing each chain with its recorded
head. The checks themselves are `llm_localfirst.audit.chain.check_chain`. It
only reads.
"""

from __future__ import annotations

from collections.abc import Iterator

from llm_localfirst.audit.chain import LEGACY_CHAIN, ChainProblem, VerifyResult, check_chain
from llm_localfirst.audit.intent import INTENT_COLUMNS
from llm_localfirst.audit.record import COLUMNS
from llm_localfirst.audit.store import AuditStore

__all__ = ["verify_store"]

_TABLES = (("audit_records", COLUMNS), ("audit_intents", INTENT_COLUMNS))
_PAGE = 2000


def verify_store(store: AuditStore) -> VerifyResult:
    """Check every chain in ``store``: contents, links, order, and heads.

    An edit, a deletion (including of a chain's newest rows, via its head), an
    insertion, a reordering, or a row without chain fields makes the result not
    ``ok``; each bad chain contributes its first problem, in table then chain order.
    """
    heads = store.chain_heads()
    problems: list[ChainProblem] = []
    counts = {"audit_records": 0, "audit_intents": 0}
    legacy = 0
    chains = 0
    for table, columns in _TABLES:
        present = store.chains_in(table)
        if None in present:
            rows = store.chain_rows(table, None, limit=1)
            problems.append(
                ChainProblem(
                    table,
                    None,
                    str(rows[0]["id"]) if rows else None,
                    None,
                    "row carries no chain fields: it was not written by a store",
                )
            )
        ids = sorted({c for c in present if c is not None} | {c for t, c in heads if t == table})
        for chain_id in ids:
            chains += 1
            seen, problem = check_chain(
                table,
                columns,
                chain_id,
                _pages(store, table, chain_id),
                heads.get((table, chain_id)),
            )
            counts[table] += seen
            if chain_id == LEGACY_CHAIN and table == "audit_records":
                legacy = seen
            if problem is not None:
                problems.append(problem)
    by_table: dict[str, dict[str, tuple[int, str]]] = {}
    for (table, chain_id), head in sorted(heads.items()):
        by_table.setdefault(table, {})[chain_id] = head
    return VerifyResult(
        rows=counts["audit_records"],
        intents=counts["audit_intents"],
        chains=chains,
        legacy_rows=legacy,
        problems=tuple(problems),
        heads=by_table,
    )


def _pages(store: AuditStore, table: str, chain_id: str) -> Iterator[dict[str, object]]:
    after = 0
    while True:
        page = store.chain_rows(table, chain_id, after_seq=after, limit=_PAGE)
        yield from page
        if len(page) < _PAGE:
            return
        last = page[-1]["seq"]
        if not isinstance(last, int) or last <= after:
            return  # a non-increasing seq is reported by check_chain on this page
        after = last
