"""Local-only is a field of the request; the worker rides the router's failover, in parallel.

- ``decide`` intersects the candidates with the local destinations: none left is
  ``LocalUnavailable``, an explicit cloud model is ``PrivacyViolation``, and being
  local-only adds no sensitivity reason;
- the worker makes one router call per chunk and the router fails over among the
  local destinations (each row keeps every attempt); the cloud never gets a byte;
- map calls run up to the destination's ``max_concurrency`` at once, in order.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from llm_localfirst import LocalUnavailable, PrivacyViolation, Request, Router
from llm_localfirst.agents import Worker
from llm_localfirst.audit import AuditRecord
from llm_localfirst.policy import decide, policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy
from tests.agents.conftest import long_text

Rows = Callable[[Router], list[AuditRecord]]


def test_local_only_keeps_local_candidates_and_claims_no_sensitivity(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    policy = offline_policy(fake_local, fake_cloud)
    decision = decide(policy, Request.build("think hard", kind="reason", local_only=True))
    assert decision.destination == "local" and decision.chain == ("local",)
    assert not decision.sensitive and decision.sensitive_reasons == ()
    assert decide(policy, Request.build("think hard", kind="reason")).destination == "cloud"


def test_local_only_with_an_explicit_cloud_model_is_a_privacy_violation(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    policy = offline_policy(fake_local, fake_cloud)
    with pytest.raises(PrivacyViolation, match="local-only"):
        decide(policy, Request.build("x", model="cloud", local_only=True))
    with pytest.raises(PrivacyViolation):
        decide(policy, Request.build("x", local_only=("local", "cloud")))


def test_local_only_without_a_local_destination_is_local_unavailable(
    fake_cloud: FakeUpstream,
) -> None:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "cloud": {"provider": "openai", "base_url": fake_cloud.base_url, "model": "m"}
            },
            "default": {"to": ["cloud"]},
        }
    )
    with pytest.raises(LocalUnavailable, match="local-only"):
        decide(policy, Request.build("x", local_only=True))
    with pytest.raises(LocalUnavailable, match="no local destination is up"):
        decide(
            offline_policy(fake_cloud, fake_cloud),
            Request.build("x", local_only=True),
            is_up={"local": False},
        )


def test_a_local_only_call_that_fails_locally_never_reaches_the_cloud(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(offline_policy(fake_local, fake_cloud), audit=memory_audit)
    fake_local.status = 500
    try:
        with pytest.raises(LocalUnavailable):
            router.complete("Summarize", local_only=True)
        assert router.complete("Summarize").decision.destination == "cloud"  # not local-only
    finally:
        router.close()
    assert len(fake_cloud.model_calls()) == 1


@pytest.fixture
def two_locals() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as first, FakeUpstream() as second:
        yield first, second


def two_local_router(
    first: FakeUpstream,
    second: FakeUpstream,
    cloud: FakeUpstream,
    store: MemoryAuditStore,
    **gpu: Any,
) -> Router:
    local = {"provider": "openai", "locality": "local", "context_window": 1024}
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "gpu": {**local, "base_url": first.base_url, "model": "big", **gpu},
                "laptop": {**local, "base_url": second.base_url, "model": "small"},
                "cloud": {"provider": "openai", "base_url": cloud.base_url, "model": "c"},
            },
            "default": {"to": ["cloud"]},
        }
    )
    return Router(policy, audit=store, probe_ttl=3600)


def test_the_worker_makes_one_call_per_chunk_and_the_router_fails_over_between_locals(
    two_locals: tuple[FakeUpstream, FakeUpstream],
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
    audit_rows: Rows,
) -> None:
    first, second = two_locals
    first.status = 503
    router = two_local_router(first, second, fake_cloud, memory_audit)
    try:
        result = Worker(router).run("Summarize", source=long_text(20), task_kind="summarize")
        rows = audit_rows(router)
    finally:
        router.close()
    assert result.chunks > 1 and result.destination == "laptop"
    assert fake_cloud.model_calls() == []
    assert len(rows) == result.chunks + 1 == len(second.model_calls())
    for row in rows:
        assert [a.destination for a in row.attempts] in (["gpu", "laptop"], ["laptop"])
        assert row.fell_back or row.attempts[0].destination == "laptop"
        assert not row.sensitive and row.locality == "local"


def test_map_calls_run_up_to_max_concurrency_and_keep_their_order(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    delay = 0.1
    finished: list[float] = []
    lock = threading.Lock()
    part = re.compile(r"part (\d+) of (\d+)")

    def reply(body: dict[str, Any]) -> str:
        with lock:
            finished.append(time.monotonic())
        found = part.search(str(body["messages"][0]["content"]))
        return f"<{found.group(1)}>" if found else "done"

    fake_local.reply, fake_local.delay = reply, delay
    data = offline_policy(fake_local, fake_cloud).model_dump()
    data["destinations"]["local"].update(context_window=1024, max_concurrency=3)
    router = Router(policy_from_data(data), audit=memory_audit, probe_ttl=3600)
    try:
        result = Worker(router).run(
            "Translate", source=long_text(24), task_kind="translate", target_language="French"
        )
    finally:
        router.close()
    assert result.chunks >= 6
    assert result.text == "\n\n".join(f"<{i}>" for i in range(1, result.chunks + 1))
    spans = [(end - delay, end) for end in finished]
    overlap = max(
        sum(1 for s, e in spans if s < t < e) for t, _ in [(s + delay / 2, 0.0) for s, _ in spans]
    )
    assert overlap == 3
