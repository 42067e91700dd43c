"""Prices, cost, the 0.2.0 ledger and budget, and shared budgets held across routers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_localfirst import Budget, BudgetExceeded, Ledger, PolicyError, Price, Router, Usage
from llm_localfirst.audit import AuditFilter
from llm_localfirst.audit.sqlite import SQLiteAuditStore
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore


@pytest.fixture
def local() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def cloud() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def _data(
    local: FakeUpstream,
    cloud: FakeUpstream,
    *budgets: dict[str, Any],
    price: dict[str, float] | None = None,
) -> dict[str, Any]:
    dest: dict[str, Any] = {
        "provider": "openai",
        "base_url": cloud.base_url,
        "model": "c",
        "locality": "cloud",
        "api_key_env": "LF_FAKE_CLOUD_KEY",
    }
    if price is not None:
        dest["price"] = price
    return {
        "version": 1,
        "destinations": {
            "local": {
                "provider": "openai",
                "base_url": local.base_url,
                "model": "l",
                "locality": "local",
            },
            "haiku": dest,
        },
        "budgets": list(budgets),
        "default": {"to": ["haiku"]},
    }


def test_price_is_usd_per_million_tokens_and_cost_is_integer_micro_usd() -> None:
    price = Price(0.8, 4.0)
    assert price.cost(Usage(1_000_000, 1_000_000)) == pytest.approx(4.8)
    assert price.micros(1000, 500) == 2800


def test_the_ledger_tallies_by_locality_as_in_0_2_0() -> None:
    ledger = Ledger({"haiku": Price(1.0, 1.0)})
    ledger.record("haiku", Usage(10, 5), target="cloud")
    ledger.record("local", Usage(3, 3), target="local")
    assert ledger.calls("cloud") == 1 and ledger.tokens("local") == Usage(3, 3)
    assert ledger.snapshot()["cloud_cost"] == pytest.approx(15 / 1e6)


def test_a_0_2_0_token_budget_blocks_the_next_cloud_call(
    local: FakeUpstream, cloud: FakeUpstream
) -> None:
    r = Router(
        policy_from_data(_data(local, cloud)),
        audit=MemoryAuditStore(),
        budget=Budget(max_cloud_tokens=20),
    )
    try:
        r.complete("hello there")
        r.complete("hello there")
        with pytest.raises(BudgetExceeded, match="cloud token budget spent"):
            r.complete("hello there")
        assert r.ledger.calls("cloud") == 2
    finally:
        r.close()


def test_lf_max_cloud_cost_needs_prices_and_lf_prices_gives_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, local: FakeUpstream, cloud: FakeUpstream
) -> None:
    import yaml

    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump(_data(local, cloud)))
    monkeypatch.setenv("LF_POLICY", str(policy))
    monkeypatch.setenv("LF_MAX_CLOUD_COST", "5.00")
    with pytest.raises(PolicyError, match="needs a price for every allowlisted cloud model"):
        Router.from_env()
    monkeypatch.setenv("LF_PRICES", '{"haiku": [0.8, 4.0], "sonnet": [3.0, 15.0]}')
    r = Router.from_env()
    try:
        assert r.ledger.prices["haiku"] == Price(0.8, 4.0)
        assert r.budget is not None and r.budget.max_cloud_cost == 5.0
    finally:
        r.close()


def test_a_usd_budget_over_an_unpriced_cloud_destination_is_a_policy_error(
    local: FakeUpstream, cloud: FakeUpstream
) -> None:
    with pytest.raises(PolicyError, match="unpriced"):
        policy_from_data(_data(local, cloud, {"name": "b", "limit_usd": 1}))


def test_a_spent_refuse_budget_raises_and_every_row_has_its_cost(
    local: FakeUpstream, cloud: FakeUpstream
) -> None:
    spec = {"name": "team", "period": "month", "limit_usd": 0.1, "on_exceeded": "refuse"}
    store = MemoryAuditStore()
    r = Router(
        policy_from_data(_data(local, cloud, spec, price={"input": 1000, "output": 1000})),
        audit=store,
    )
    try:
        outcomes = []
        for _ in range(7):
            try:
                r.complete("hello there", max_tokens=10)
                outcomes.append("ok")
            except BudgetExceeded as exc:
                outcomes.append(f"refused by {exc.budget}")
        # Each call costs 14,000 micro-USD and reserves 37,000 (its input's UTF-8 bytes
        # bound its input tokens): the sixth would need 70,000 + 37,000 > 100,000.
        assert outcomes == ["ok"] * 5 + ["refused by team"] * 2
        (state,) = r.spend.status()  # the leases this process holds count as reserved
        assert state.spent_micros == 70_000
        assert state.spent_micros + state.reserved_micros <= 100_000
        r.flush()
        rows = store.query(AuditFilter(limit=10, outcome="ok"))
        assert sum(int(row.metadata["lf.cost_usd_micros"]) for row in rows) == state.spent_micros
    finally:
        r.close()
    (state,) = r.spend.status()  # closing handed every lease back
    assert (state.spent_micros, state.reserved_micros, state.reserved_calls) == (70_000, 0, 0)


def test_on_exceeded_local_sends_cloud_bound_work_to_the_local_chain(
    local: FakeUpstream, cloud: FakeUpstream
) -> None:
    spec = {"name": "calls", "period": "day", "limit_calls": 1, "on_exceeded": "local"}
    r = Router(policy_from_data(_data(local, cloud, spec)), audit=MemoryAuditStore())
    try:
        assert r.complete("one").decision.destination == "haiku"
        second = r.complete("two").decision
        assert second.destination == "local" and second.budget == "calls"
    finally:
        r.close()


def test_a_budget_scoped_to_a_key_counts_only_that_key(
    local: FakeUpstream, cloud: FakeUpstream
) -> None:
    spec = {"name": "alice", "limit_calls": 1, "scope": {"keys": ["alice"]}}
    r = Router(policy_from_data(_data(local, cloud, spec)), audit=MemoryAuditStore())
    try:
        req = r.lifecycle.build("hi", client_key="alice")
        r.lifecycle.run_sync(r.lifecycle.complete(req))
        with pytest.raises(BudgetExceeded):
            r.lifecycle.run_sync(r.lifecycle.complete(r.lifecycle.build("hi", client_key="alice")))
        r.lifecycle.run_sync(r.lifecycle.complete(r.lifecycle.build("hi", client_key="bob")))
    finally:
        r.close()


def test_two_routers_on_one_sqlite_file_share_one_budget(
    tmp_path: Path, local: FakeUpstream, cloud: FakeUpstream
) -> None:
    spec = {"name": "shared", "period": "total", "limit_calls": 3}
    policy = policy_from_data(_data(local, cloud, spec))
    path = tmp_path / "audit.db"
    a = Router(policy, audit=SQLiteAuditStore(path))
    b = Router(policy, audit=SQLiteAuditStore(path))
    try:
        sent = 0
        for router in (a, b, a, b, a):
            try:
                router.complete("hi")
                sent += 1
            except BudgetExceeded:
                pass
        assert sent == 3
    finally:
        a.close()
        b.close()
    state = a.spend.status()[0]
    assert (state.spent_calls, state.reserved_calls) == (3, 0)


def test_budget_status_prints_spent_and_left_and_json(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    local: FakeUpstream,
    cloud: FakeUpstream,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    import yaml

    from llm_localfirst.cli import main

    spec = {"name": "team", "period": "week", "limit_calls": 5}
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump(_data(local, cloud, spec)))
    monkeypatch.setenv("LF_POLICY", str(policy))
    monkeypatch.setenv("LF_AUDIT_URL", str(tmp_path / "audit.db"))
    assert main(["complete", "hello"]) == 0
    capsys.readouterr()
    assert main(["budget", "status"]) == 0
    assert "team: 1/5 calls this week" in capsys.readouterr().out
    assert main(["budget", "status", "--json"]) == 0
    (state,) = json.loads(capsys.readouterr().out)["budgets"]
    assert (state["spent_calls"], state["reserved_calls"]) == (1, 0)
    assert state["remaining"]["calls"] == 4


def test_lf_proxy_keys_names_keys_inline_or_in_a_keys_file(tmp_path: Path) -> None:
    from llm_localfirst import ConfigError, Settings

    inline = Settings.load(env_file=None, environ={"LF_PROXY_KEYS": "alice:sk-a, bob:sk-b"})
    assert inline.proxy_named_keys() == (("alice", "sk-a"), ("bob", "sk-b"))
    assert inline.proxy_key_list() == ("sk-a", "sk-b")
    bare = Settings.load(env_file=None, environ={"LF_PROXY_KEYS": "sk-1,sk-2"})
    assert bare.proxy_named_keys() == (("key1", "sk-1"), ("key2", "sk-2"))
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nalice: sk-a\n\ncarol:sk-c  # on call\n")
    for value in (f"@{keys}", str(keys)):
        from_file = Settings.load(env_file=None, environ={"LF_PROXY_KEYS": value})
        assert from_file.proxy_named_keys() == (("alice", "sk-a"), ("carol", "sk-c"))
    assert "sk-a" not in repr(from_file)
    twice = Settings.load(env_file=None, environ={"LF_PROXY_KEYS": "a:k1,a:k2"})
    with pytest.raises(ConfigError, match="used twice"):
        twice.proxy_named_keys()
