"""The seed's Python snippets run unchanged, with the behaviour of its routing table.

The local model is a loopback fake (``FakeUpstream``) at the URL the seed's
``LF_LOCAL_BASE_URL`` setting names; the cloud is never configured, so any
attempt to reach it would fail loudly.
"""

from __future__ import annotations

import pytest

from llm_localfirst.testing import FakeUpstream


@pytest.fixture
def seed_env(monkeypatch: pytest.MonkeyPatch, fake_local: FakeUpstream) -> FakeUpstream:
    monkeypatch.setenv("LF_LOCAL_BASE_URL", fake_local.base_url)
    monkeypatch.setenv("LF_PROBE_TTL", "0.001")
    return fake_local


def test_the_privacy_guarantee_in_five_lines(seed_env: FakeUpstream) -> None:
    customer_record = "Jane Roe, jane@example.com, card 4111 1111 1111 1111"
    from llm_localfirst import LocalUnavailable, Router

    router = Router.from_env()
    try:
        out = router.complete(
            "Redact all PII from this record.", source=customer_record, sensitive=True
        )
        assert out.decision.target == "local"
        seed_env.stop()
        router.health.invalidate()
        with pytest.raises(LocalUnavailable):
            router.complete(
                "Redact all PII from this record.", source=customer_record, sensitive=True
            )
    finally:
        router.close()


def test_the_quickstart_inspects_routing_and_runs_bulk_work(
    seed_env: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    long_text = "The meeting covered budgets. " * 50
    from llm_localfirst import Kind, Router

    router = Router.from_env()
    try:
        print(router.decide(kind=Kind.BULK))  # -> local (cheap + private)
        print(router.decide(kind="reason"))  # -> cloud (the hard part)
        print(router.decide(sensitive=True))  # -> local (pinned; never cloud)
        print(
            router.complete(
                "Summarize this in one sentence.", source=long_text, kind=Kind.BULK
            ).text
        )
    finally:
        router.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("local:local")
    assert lines[1].startswith("cloud:haiku")
    assert lines[2].startswith("local:local")
    assert lines[3].startswith("echo: Summarize this in one sentence.")
