"""Sensitivity sticks to the data: message digests and sessions remembered in the audit store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_localfirst import Router
from llm_localfirst.audit import open_store
from llm_localfirst.errors import LocalUnavailable
from llm_localfirst.sensitivity.taint import message_digests
from llm_localfirst.testing import FakeUpstream
from tests.server.test_proxy_egress import TURN_1, cloud_first

TURN_2 = [
    *TURN_1,
    {"role": "assistant", "content": "Understood."},
    {"role": "user", "content": "Summarise   what I said."},
]


@pytest.fixture
def routers(
    tmp_path: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> Iterator[tuple[Router, Router]]:
    """Two routers (two instances) sharing one SQLite audit file."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    policy = cloud_first(fake_local, fake_cloud)
    first = Router(policy, audit=open_store(url, data_dir=tmp_path), probe_ttl=0.001)
    second = Router(policy, audit=open_store(url, data_dir=tmp_path), probe_ttl=0.001)
    yield first, second
    first.close()
    second.close()


def test_digests_are_normalised_hex_and_skip_system_messages() -> None:
    spaced = [{"role": "user", "content": "  a \n b  "}]
    assert message_digests(spaced) == message_digests([{"role": "user", "content": "a b"}])
    assert message_digests([{"role": "assistant", "content": "a b"}]) != message_digests(spaced)
    assert message_digests([{"role": "system", "content": "rules"}]) == []
    (digest,) = message_digests(spaced)
    assert len(digest) == 32 and int(digest, 16) >= 0 and "a b" not in digest


def test_a_resent_history_stays_sensitive_on_another_instance_and_fails_closed(
    routers: tuple[Router, Router], fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    first, second = routers
    turn_1 = first.complete(messages=TURN_1, headers={"x-lf-sensitive": "true"})
    assert turn_1.decision.target == "local"
    fake_local.status = 503  # the local model goes down between the turns
    with pytest.raises(LocalUnavailable) as refused:
        second.complete(messages=TURN_2)
    assert "taint" in refused.value.sensitive_reasons
    assert fake_cloud.model_calls() == []


def test_an_unrelated_conversation_is_not_tainted(
    routers: tuple[Router, Router], fake_cloud: FakeUpstream
) -> None:
    first, second = routers
    first.complete(messages=TURN_1, sensitive=True)
    other = second.complete(
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "What is 2 + 2?"},
        ]
    )
    assert other.decision.target == "cloud" and not other.decision.sensitive
    assert len(fake_cloud.model_calls()) == 1


def test_a_sensitive_session_stays_sensitive(
    routers: tuple[Router, Router], fake_cloud: FakeUpstream
) -> None:
    first, second = routers
    first.complete("the first turn", sensitive=True, session="conv-1")
    later = second.complete("a brand new question", session="conv-1")
    other = second.complete("another question", session="conv-2")
    assert later.decision.target == "local" and later.decision.sensitive_reasons == ("session",)
    assert other.decision.target == "cloud"
    assert second.decide("anything", session="conv-1").sensitive_reasons == ("session",)
    assert len(fake_cloud.model_calls()) == 1


def test_the_taint_expires_after_its_ttl(
    tmp_path: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    clock = [1000.0]
    store: Any = open_store(f"sqlite:///{tmp_path / 'ttl.db'}", data_dir=tmp_path)
    store._clock = lambda: clock[0]
    with Router(
        cloud_first(fake_local, fake_cloud, taint_ttl_s=60), audit=store, probe_ttl=0.001
    ) as router:
        router.complete(messages=TURN_1, sensitive=True)
        assert router.decide(messages=TURN_2).sensitive_reasons == ("taint",)
        clock[0] += 61
        assert not router.decide(messages=TURN_2).sensitive


def test_a_taint_lookup_that_fails_makes_the_request_sensitive(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> str | None:
        raise RuntimeError("store down")

    memory_audit.taint_match = broken
    with Router(cloud_first(fake_local, fake_cloud), audit=memory_audit, probe_ttl=0.001) as router:
        answer = router.complete("hello")
    assert answer.decision.target == "local"
    assert answer.decision.sensitive_reasons == ("taint_error",)
    assert fake_cloud.model_calls() == []


def test_lf_taint_ttl_overrides_the_policy(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: Any
) -> None:
    from llm_localfirst import Settings

    policy = cloud_first(fake_local, fake_cloud, taint_ttl_s=600)
    with Router(policy, audit=memory_audit) as router:
        assert router.lifecycle.assessor.taint_ttl == 600
    settings = Settings.load(environ={"LF_TAINT_TTL": "5"}, env_file=None)
    with Router(policy, audit=memory_audit, settings=settings) as router:
        assert router.lifecycle.assessor.taint_ttl == 5
    with Router(cloud_first(fake_local, fake_cloud), audit=memory_audit) as router:
        assert router.lifecycle.assessor.taint_ttl == 86400
