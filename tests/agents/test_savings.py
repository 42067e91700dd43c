"""The savings ledger: local tokens only, priced at the reference cloud destination."""

from __future__ import annotations

from typing import Any

import pytest

from llm_localfirst import Router
from llm_localfirst.agents import Worker, reference_destination, savings_report
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy


def policy_data(fake: FakeUpstream, **clouds: dict[str, Any]) -> dict[str, Any]:
    destinations: dict[str, Any] = {
        "local": {
            "provider": "openai",
            "base_url": fake.base_url,
            "model": "m",
            "locality": "local",
        }
    }
    for name, extra in clouds.items():
        destinations[name] = {
            "provider": "openai",
            "base_url": fake.base_url,
            "model": name,
            "locality": "cloud",
            **extra,
        }
    return {"version": 1, "destinations": destinations, "default": {"to": ["local"]}}


def test_only_local_tokens_count_and_every_face_is_included(
    router: Router, fake_local: FakeUpstream
) -> None:
    worker_run = Worker(router).run("Summarize", source="x" * 400)
    python_run = router.complete("Tidy this", source="y" * 200, kind="bulk")
    router.complete("Prove it", kind="reason")  # runs in the cloud: not a saving
    report = savings_report(router)
    assert report.requests == 2
    assert report.tokens_in == worker_run.tokens_in + python_run.usage.input_tokens
    assert report.tokens_out == worker_run.tokens_out + python_run.usage.output_tokens
    assert set(report.by_face) == {"worker", "python"}
    assert report.by_face["worker"].tokens_in == worker_run.tokens_in
    assert set(report.by_destination) == {"local"}


def test_cost_is_priced_at_the_default_fallback_cloud_destination(router: Router) -> None:
    Worker(router).run("Summarize", source="x" * 4000)
    report = savings_report(router)
    assert (report.reference, report.reference_model) == ("cloud", "fake-cloud")
    assert (report.price_in, report.price_out) == (1.0, 5.0)
    expected = (report.tokens_in * 1.0 + report.tokens_out * 5.0) / 1_000_000
    assert report.cloud_cost_usd == pytest.approx(expected)
    assert report.local_cost_usd == 0.0 and report.saved_usd == pytest.approx(expected)
    data = report.to_dict()
    assert data["reference"] == {
        "destination": "cloud",
        "model": "fake-cloud",
        "usd_per_million_input": 1.0,
        "usd_per_million_output": 5.0,
    }
    assert data["tokens"] == report.tokens == report.tokens_in + report.tokens_out


def test_the_face_filter_limits_the_ledger_to_the_worker(router: Router) -> None:
    worker_run = Worker(router).run("Summarize", source="x" * 400)
    router.complete("Tidy this", kind="bulk")
    report = savings_report(router, face="worker")
    assert (report.requests, report.tokens_in) == (1, worker_run.tokens_in)
    assert report.by_face == {} and report.to_dict()["scope"]["face"] == "worker"


def test_without_a_priced_cloud_in_the_default_the_most_expensive_one_is_the_reference(
    fake_local: FakeUpstream,
) -> None:
    policy = policy_from_data(
        policy_data(
            fake_local,
            cheap={"price": {"input": 0.1, "output": 0.2}},
            dear={"price": {"input": 10, "output": 30}},
            unpriced={},
        )
    )
    assert reference_destination(policy).name == "dear"  # type: ignore[union-attr]


def test_without_any_priced_cloud_the_cost_is_unknown(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(policy_from_data(policy_data(fake_local, unpriced={})), audit=memory_audit)
    try:
        Worker(router).run("Summarize", source="x")
        report = savings_report(router)
        assert report.tokens > 0 and report.reference is None
        assert report.cloud_cost_usd is None and report.saved_usd is None
    finally:
        router.close()


def test_a_priced_local_destination_is_subtracted(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    data = offline_policy(fake_local, fake_cloud).model_dump()
    data["destinations"]["local"]["price"] = {"input": 0.5, "output": 0.5}
    router = Router(type(offline_policy(fake_local)).model_validate(data), audit=memory_audit)
    try:
        Worker(router).run("Summarize", source="x" * 4000)
        report = savings_report(router)
        assert report.local_cost_usd == pytest.approx(report.tokens * 0.5 / 1e6)
        assert report.saved_usd == pytest.approx(report.cloud_cost_usd - report.local_cost_usd)
    finally:
        router.close()


def test_time_bounds_are_validated_and_applied(router: Router) -> None:
    Worker(router).run("Summarize", source="x")
    assert savings_report(router, since="2000-01-01").requests == 1
    assert savings_report(router, until="2000-01-01").requests == 0
    with pytest.raises(ValueError, match="since"):
        savings_report(router, since="yesterday")
