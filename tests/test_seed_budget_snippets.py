"""The 0.2.0 package's "Cloud spend ceiling" snippets run unchanged, and its doctor lines.

The local model and the cloud are loopback fakes; the cloud speaks the Anthropic wire
format at ``ANTHROPIC_BASE_URL``, as the default ``haiku`` destination expects.
"""

from __future__ import annotations

import pytest

from llm_localfirst.cli import main
from llm_localfirst.testing import FakeUpstream


@pytest.fixture
def seed_env(
    monkeypatch: pytest.MonkeyPatch, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> FakeUpstream:
    monkeypatch.setenv("LF_LOCAL_BASE_URL", fake_local.base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_cloud.root_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-secret")
    monkeypatch.setenv("LF_PROBE_TTL", "0.001")
    return fake_local


def test_every_completion_is_accounted_in_the_ledger(seed_env: FakeUpstream) -> None:
    long_document = "The quarterly figures were discussed at length. " * 20
    from llm_localfirst import Router, Usage

    router = Router.from_env()
    try:
        router.complete("summarise this", source=long_document)
        router.complete("think hard", kind="reason")

        assert router.ledger.calls("cloud") == 1
        assert isinstance(router.ledger.tokens("local"), Usage)
        assert router.ledger.tokens("local").input_tokens > 0
        assert router.ledger.snapshot()["calls"] == {"total": 2, "local": 1, "cloud": 1}
    finally:
        router.close()


def test_a_token_ceiling_stops_the_cloud_and_never_gates_local(seed_env: FakeUpstream) -> None:
    from llm_localfirst import Budget, BudgetExceeded, Router
    from llm_localfirst.config import Settings, policy_from_settings

    policy = policy_from_settings(Settings.load())
    router = Router(policy, budget=Budget(max_cloud_tokens=10))
    try:
        router.complete("think hard about this question", kind="reason")
        with pytest.raises(BudgetExceeded, match=r"cloud token budget spent: \d+/10 tokens"):
            router.complete("and this one", kind="reason")
        for _ in range(3):  # local calls are never gated
            assert router.complete("bulk work").decision.target == "local"
    finally:
        router.close()


def test_a_cost_ceiling_from_the_environment_with_lf_prices(
    seed_env: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "LF_PRICES", '{"haiku": [0.8, 4.0], "sonnet": [3.0, 15.0], "opus": [15.0, 75.0]}'
    )
    monkeypatch.setenv("LF_MAX_CLOUD_COST", "5.00")
    from llm_localfirst import Price, Router

    router = Router.from_env()
    try:
        assert router.budget is not None and router.budget.max_cloud_cost == 5.0
        assert router.ledger.prices["haiku"] == Price(0.8, 4.0)
        router.complete("think hard", kind="reason")
        assert router.ledger.cost("cloud") > 0
    finally:
        router.close()


def test_complete_usage_prints_the_tally_on_stderr(
    seed_env: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["complete", "hello", "--usage"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("echo: hello")
    assert '"calls"' in captured.err and '"cloud_cost"' in captured.err


def test_doctor_shows_the_budget_and_which_models_are_priced(
    seed_env: FakeUpstream, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LF_MAX_CLOUD_TOKENS", "200000")
    monkeypatch.setenv("LF_FALLBACK_MODEL", "claude-haiku-4-5")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "Cloud budget:" in out
    assert "max_cloud_tokens      = 200000" in out
    assert "priced models         = haiku" in out
    assert "unpriced cloud models = claude-haiku-4-5  (set LF_PRICES to cost them)" in out
