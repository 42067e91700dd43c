"""Budgets and the classifier on the proxy: 429 budget_exceeded, headers, keys, admin, metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream
from tests.server.conftest import LiveProxy


def _policy(local: FakeUpstream, cloud: FakeUpstream, on_exceeded: str) -> Any:
    return policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": local.base_url,
                    "model": "l",
                    "locality": "local",
                },
                "haiku": {
                    "provider": "openai",
                    "base_url": cloud.base_url,
                    "model": "c",
                    "locality": "cloud",
                    "api_key_env": "LF_FAKE_CLOUD_KEY",
                    "price": {"input": 1000, "output": 1000},
                },
            },
            "sensitivity": {
                "classifier": {
                    "destination": "local",
                    "labels": ["general", "legal"],
                    "sensitive": ["legal"],
                }
            },
            "budgets": [
                {
                    "name": "alice monthly",
                    "period": "month",
                    "limit_usd": 0.1,
                    "scope": {"destinations": ["haiku"], "keys": ["alice"]},
                    "on_exceeded": on_exceeded,
                }
            ],
            "default": {"to": ["haiku"]},
        }
    )


@pytest.fixture
def make(
    proxy_factory: Callable[..., LiveProxy], fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> Callable[[str], LiveProxy]:
    def reply(body: dict[str, Any]) -> str:
        text = str(body["messages"][-1]["content"])
        if not text.endswith("Label:"):
            return "local answer"
        return "legal" if "contract" in text else "general"

    fake_local.reply = reply
    return lambda on_exceeded: proxy_factory(
        policy=_policy(fake_local, fake_cloud, on_exceeded), proxy_keys="alice:sk-alice,bob:sk-bob"
    )


def _ask(proxy: LiveProxy, key: str) -> Any:
    with openai.OpenAI(base_url=proxy.base_url, api_key=key, max_retries=2) as client:
        return client.chat.completions.with_raw_response.create(
            model="auto", max_tokens=10, messages=[{"role": "user", "content": "hello there"}]
        )


def test_a_spent_refuse_budget_is_a_429_budget_exceeded_sent_once(
    make: Callable[[str], LiveProxy],
) -> None:
    proxy = make("refuse")
    for _ in range(5):  # 14,000 micro-USD each; the sixth would not fit its reservation
        _ask(proxy, "sk-alice")
    before = len(proxy.rows())
    with pytest.raises(openai.RateLimitError) as info:
        _ask(proxy, "sk-alice")
    assert info.value.status_code == 429
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.body["code"] == "budget_exceeded"  # type: ignore[index]
    assert len(proxy.rows()) == before + 1  # the SDK did not retry
    assert _ask(proxy, "sk-bob").headers["x-lf-destination"] == "haiku"  # bob is not in scope


def test_on_exceeded_local_answers_from_the_local_chain_with_headers(
    make: Callable[[str], LiveProxy],
) -> None:
    proxy = make("local")
    for _ in range(5):  # 14,000 micro-USD each; the sixth would not fit its reservation
        _ask(proxy, "sk-alice")
    raw = _ask(proxy, "sk-alice")
    assert raw.headers["x-lf-destination"] == "local"
    assert raw.headers["x-lf-budget"] == "alice monthly"


def test_the_classifier_headers_and_the_key_name_in_the_audit_row(
    make: Callable[[str], LiveProxy],
) -> None:
    proxy = make("refuse")
    first, second = _ask(proxy, "sk-alice"), _ask(proxy, "sk-alice")
    assert first.headers["x-lf-classifier"] == "general"
    assert first.headers["x-lf-classifier-cached"] == "false"
    assert second.headers["x-lf-classifier-cached"] == "true"
    assert float(second.headers["x-lf-classifier-ms"]) == 0
    rows = proxy.rows(outcome="ok")
    assert {r.metadata["lf.key"] for r in rows} == {"alice"}
    assert all("sk-alice" not in str(r.to_dict()) for r in rows)
    assert all(int(r.metadata["lf.cost_usd_micros"]) > 0 for r in rows)


def test_admin_budgets_and_the_prometheus_gauges_show_spend(
    make: Callable[[str], LiveProxy],
) -> None:
    proxy = make("refuse")
    _ask(proxy, "sk-alice")
    with proxy.client() as http:
        data = http.get("/admin/budgets", headers=proxy.admin_headers()).json()
        metrics = http.get("/metrics", headers={"authorization": "Bearer sk-bob"}).text
    (state,) = data["budgets"]
    assert state["name"] == "alice monthly" and state["spent_calls"] + state["reserved_calls"] == 1
    assert 'llm_localfirst_budget_remaining_usd{budget="alice monthly",period="month"}' in metrics


def test_a_streamed_cloud_answer_is_costed_and_settled(make: Callable[[str], LiveProxy]) -> None:
    proxy = make("refuse")
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-alice", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="auto",
            max_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "hello there"}],
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text
    (row,) = proxy.rows(outcome="ok")
    assert row.destination == "haiku" and int(row.metadata["lf.cost_usd_micros"]) > 0
    (state,) = proxy.router.spend.status()
    assert state.spent_calls == 1 and state.spent_micros == int(row.metadata["lf.cost_usd_micros"])


def test_the_classifier_reads_every_endpoints_body(make: Callable[[str], LiveProxy]) -> None:
    proxy = make("refuse")
    with proxy.client(headers={"authorization": "Bearer sk-alice"}) as http:
        http.post("/v1/embeddings", json={"model": "auto", "input": "the contract terms"})
    (row,) = proxy.rows()
    assert row.endpoint == "embeddings" and row.metadata["lf.classifier"] == "legal"
    assert "classifier:legal" in row.sensitive_reasons  # so it never went to the cloud
    assert proxy.cloud.model_calls() == []
