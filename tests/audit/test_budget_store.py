"""The budget counters in the audit store: conditional reserve, settle, dead holders reaped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_localfirst.audit import open_store
from llm_localfirst.audit.budget_store import BudgetStore, budget_store_for

LIMITS = (1000, None, None)  # micro-USD only


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BudgetStore]:
    if request.param == "sqlite":
        url = str(tmp_path / "audit.db")
    else:
        url = request.getfixturevalue("postgres_url")
    audit = open_store(url, data_dir=tmp_path)
    budgets = budget_store_for(audit)
    try:
        yield budgets
    finally:
        budgets.close()
        audit.close()


def test_a_reservation_past_the_limit_is_refused(store: BudgetStore) -> None:
    assert store.reserve("b", "total", (600, 0, 1), LIMITS, holder="a", ttl=60)
    assert not store.reserve("b", "total", (500, 0, 1), LIMITS, holder="b", ttl=60)
    assert store.reserve("b", "total", (400, 0, 1), LIMITS, holder="b", ttl=60)
    assert store.read("b", "total") == (0, 0, 0, 1000, 0, 2)


def test_settling_moves_spend_from_reserved_to_spent(store: BudgetStore) -> None:
    assert store.reserve("b", "total", (600, 10, 1), LIMITS, holder="a", ttl=60)
    store.settle("b", "total", (250, 10, 1), (250, 7, 1), holder="a", ttl=60)
    assert store.read("b", "total") == (250, 7, 1, 350, 0, 0)


def test_a_dead_holders_lease_is_handed_back_at_the_next_reservation(
    store: BudgetStore,
) -> None:
    assert store.reserve("b", "total", (900, 0, 1), LIMITS, holder="dead", ttl=-1)
    # The dead holder's 900 would block this; it is reaped first.
    assert store.reserve("b", "total", (800, 0, 1), LIMITS, holder="live", ttl=60)
    assert store.read("b", "total")[3] == 800
    # A holder that was reaped (it only looked dead) cannot shrink the others' share.
    store.settle("b", "total", (900, 0, 1), (100, 0, 1), holder="dead", ttl=60)
    assert store.read("b", "total")[:4] == (100, 0, 1, 800)
