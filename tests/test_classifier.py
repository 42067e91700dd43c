"""The opt-in content classifier: digest cache, fail closed, labels in rules and decisions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from llm_localfirst import PolicyError, Router
from llm_localfirst.audit import AuditFilter
from llm_localfirst.policy import policy_from_data
from llm_localfirst.sensitivity.classifier import Classifier, parse_label
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore

LABELS = ["medical", "legal", "hr", "financial", "code", "general"]


def _policy(
    local: FakeUpstream,
    cloud: FakeUpstream,
    *,
    classifier_dest: str = "local",
    timeout_ms: int = 1500,
) -> Any:
    return policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": local.base_url,
                    "model": "small",
                    "locality": "local",
                },
                "local-big": {
                    "provider": "openai",
                    "base_url": local.base_url,
                    "model": "big",
                    "locality": "local",
                },
                "cloud": {
                    "provider": "openai",
                    "base_url": cloud.base_url,
                    "model": "c",
                    "locality": "cloud",
                    "api_key_env": "LF_FAKE_CLOUD_KEY",
                },
            },
            "sensitivity": {
                "classifier": {
                    "destination": classifier_dest,
                    "labels": LABELS,
                    "sensitive": ["medical", "legal", "hr", "financial"],
                    "timeout_ms": timeout_ms,
                }
            },
            "rules": [
                {
                    "name": "code goes to the big local model",
                    "when": {"classifier": ["code"]},
                    "to": ["local-big"],
                }
            ],
            "default": {"to": ["cloud"], "fallback": ["local"]},
        }
    )


def _labeler(body: dict[str, Any]) -> str:
    last = str(body["messages"][-1]["content"])
    if not last.endswith("Label:"):
        return "an answer"
    if "scan shows" in last:
        return "Medical\n"
    if "def f" in last:
        return "code"
    if "gibberish" in last:
        return "I think it is medical."
    return "general"


@pytest.fixture
def local() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply=_labeler) as fake:
        yield fake


@pytest.fixture
def cloud() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def router(local: FakeUpstream, cloud: FakeUpstream) -> Iterator[Router]:
    r = Router(_policy(local, cloud), audit=MemoryAuditStore(), probe_ttl=30)
    yield r
    r.close()


def _classifier_calls(fake: FakeUpstream) -> int:
    return sum(
        1
        for seen in fake.requests
        if isinstance(seen.body, dict) and "Label:" in str(seen.body.get("messages"))
    )


def test_a_sensitive_label_pins_the_request_local_and_says_why(
    router: Router, cloud: FakeUpstream
) -> None:
    out = router.complete("the patient's scan shows a 2 cm mass")
    assert out.decision.target == "local"
    assert "classifier:medical" in out.decision.sensitive_reasons
    assert out.decision.classifier_label == "medical"
    assert not [s for s in cloud.requests if s.path.endswith("/chat/completions")]


def test_a_general_label_leaves_the_request_to_the_rules(router: Router) -> None:
    decision = router.decide("what is the capital of France")
    assert decision.target == "cloud"
    assert decision.classifier_label == "general"
    assert not decision.sensitive


def test_rules_match_on_the_classifier_label(router: Router) -> None:
    decision = router.decide("def f(x): return x")
    assert decision.destination == "local-big"
    assert decision.rule == "code goes to the big local model"


def test_the_classifier_runs_once_per_distinct_content(router: Router, local: FakeUpstream) -> None:
    first = router.decide("the same question again")
    second = router.decide("the same question again")
    assert (first.classifier_cached, second.classifier_cached) == (False, True)
    assert second.classifier_ms == 0.0
    assert _classifier_calls(local) == 1


def test_an_answer_that_is_not_exactly_a_label_fails_closed(router: Router) -> None:
    decision = router.decide("gibberish follows")
    assert decision.sensitive and "classifier_invalid" in decision.sensitive_reasons
    assert decision.classifier_label is None and decision.target == "local"


def test_a_hung_classifier_is_cut_at_timeout_ms(local: FakeUpstream, cloud: FakeUpstream) -> None:
    release = threading.Event()

    def hang(text: str) -> str:
        release.wait(5)
        return "general"

    r = Router(
        _policy(local, cloud, timeout_ms=100),
        audit=MemoryAuditStore(),
        probe_ttl=30,
        classifier=hang,
    )
    try:
        decision = r.decide("anything")
    finally:
        release.set()
        r.close()
    assert "classifier_timeout" in decision.sensitive_reasons
    assert decision.classifier_ms is not None and decision.classifier_ms < 1000


def test_a_raising_hook_fails_closed(local: FakeUpstream, cloud: FakeUpstream) -> None:
    async def broken(text: str) -> str:
        raise RuntimeError("model crashed")

    r = Router(_policy(local, cloud), audit=MemoryAuditStore(), probe_ttl=30, classifier=broken)
    try:
        decision = r.decide("anything")
    finally:
        r.close()
    assert "classifier_error" in decision.sensitive_reasons and decision.target == "local"


def test_a_sensitive_label_never_removes_declared_sensitivity(
    local: FakeUpstream, cloud: FakeUpstream
) -> None:
    r = Router(
        _policy(local, cloud),
        audit=MemoryAuditStore(),
        probe_ttl=30,
        classifier=lambda text: "general",
    )
    try:
        decision = r.decide("hello", sensitive=True)
    finally:
        r.close()
    assert decision.sensitive and decision.target == "local"
    assert decision.classifier_label == "general"


def test_a_cloud_classifier_destination_is_a_policy_error(
    local: FakeUpstream, cloud: FakeUpstream
) -> None:
    with pytest.raises(PolicyError, match="must be local"):
        _policy(local, cloud, classifier_dest="cloud")


def test_a_classifier_rule_without_a_classifier_is_a_policy_error(local: FakeUpstream) -> None:
    with pytest.raises(PolicyError, match=r"sensitivity\.classifier is not configured"):
        policy_from_data(
            {
                "version": 1,
                "destinations": {
                    "local": {
                        "provider": "openai",
                        "base_url": local.base_url,
                        "model": "m",
                        "locality": "local",
                    }
                },
                "rules": [{"name": "x", "when": {"classifier": ["legal"]}, "to": ["local"]}],
                "default": {"to": ["local"]},
            }
        )


def test_the_label_its_latency_and_the_cache_flag_are_in_the_audit_row(router: Router) -> None:
    router.complete("the patient's scan shows a 2 cm mass")
    router.flush()
    (row,) = router.audit.query(AuditFilter(limit=5))
    assert row.metadata["lf.classifier"] == "medical"
    assert float(row.metadata["lf.classifier_ms"]) > 0
    assert row.metadata["lf.classifier_cached"] == "false"


def test_parsing_is_strict_exact_label_after_strip_and_casefold() -> None:
    assert parse_label("  LEGAL\n", LABELS) == "legal"
    assert parse_label("legal.", LABELS) is None
    assert parse_label("it is legal", LABELS) is None
    assert parse_label(None, LABELS) is None


def test_the_cache_is_bounded_and_keyed_by_digest_never_text() -> None:
    clf = Classifier(lambda t: "general", labels=LABELS, cache_size=2)
    for text in ("one", "two", "three"):
        asyncio.run(clf.classify([text]))
    keys = list(clf._cache)
    assert len(keys) == 2 and all(isinstance(k, bytes) and len(k) == 16 for k in keys)
    assert clf.lookup(Classifier.digest(["one"])) is None


def test_policy_explain_shows_the_effect_of_a_given_label(
    tmp_path: Any, local: FakeUpstream, cloud: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from llm_localfirst.cli import main

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(_policy(local, cloud).redacted()))
    assert main(["policy", "explain", str(path), "--prompt", "x", "--label", "medical"]) == 0
    out = capsys.readouterr().out
    assert "to:     local:local" in out and "classifier:medical" in out
    assert "classifier: medical (given with --label)" in out
    assert main(["policy", "explain", str(path), "--prompt", "x"]) == 0
    assert "asks the local model 'local'" in capsys.readouterr().out
    assert not local.model_calls()  # explain never calls a model


def test_identical_content_arriving_together_asks_the_model_once() -> None:
    calls = 0

    async def slow(text: str) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)  # yield so that the others arrive while this one runs
        return "general"

    clf = Classifier(slow, labels=LABELS)

    async def together() -> list[Any]:
        return list(await asyncio.gather(*(clf.classify(["same"]) for _ in range(8))))

    results = asyncio.run(together())
    assert calls == 1
    assert {r.label for r in results} == {"general"}
    assert sum(not r.cached for r in results) == 1
