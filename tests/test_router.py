"""router.py over loopback fakes: dispatch, failover, fail-closed, streaming, audit rows.

The upstreams here are ``llm_localfirst.testing.FakeUpstream``: fakes used for
fault injection. The real local-model tier is tests/test_llama_tier.py.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from llm_localfirst import (
    InvalidRequest,
    Kind,
    LocalUnavailable,
    ModelNotAllowed,
    PrivacyViolation,
    Router,
    UpstreamError,
)
from llm_localfirst.audit import AuditFilter
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy


def run_in_loop(router: Router, coro_fn):  # type: ignore[no-untyped-def]
    """asyncio.run a coroutine, then close the clients it opened on that loop."""

    async def main():  # type: ignore[no-untyped-def]
        try:
            with anyio.fail_after(10):
                return await coro_fn()
        finally:
            await router.aclose()

    return asyncio.run(main())


def rows(store: MemoryAuditStore, router: Router) -> list:  # type: ignore[type-arg]
    router.flush()
    return store.query(AuditFilter(limit=1000))


def test_bulk_work_runs_on_the_local_model(
    router: Router,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    out = router.complete("Summarise this.", source="some long text", kind=Kind.BULK)
    assert out.text.startswith("echo: Summarise this.")
    assert out.decision.target == "local" and not out.decision.fell_back
    assert len(fake_local.model_calls()) == 1 and fake_cloud.model_calls() == []
    sent = fake_local.model_calls()[0].body
    assert sent["model"] == "fake-local" and "some long text" in sent["messages"][-1]["content"]
    (row,) = rows(memory_audit, router)
    assert (row.id, row.outcome, row.destination, row.locality) == (
        out.audit_id,
        "ok",
        "local",
        "local",
    )
    assert row.tokens_in and row.tokens_out and row.prompt_sha256
    assert "Summarise" not in repr(row)  # no prompt text in the audit log


def test_reasoning_runs_in_the_cloud_through_the_anthropic_wire_format(
    router: Router, fake_cloud: FakeUpstream
) -> None:
    out = router.complete("Prove it.", kind="reason")
    assert out.decision.target == "cloud" and out.decision.destination == "cloud"
    (call,) = fake_cloud.model_calls()
    assert call.path == "/v1/messages" and call.body["model"] == "fake-cloud"
    assert "test-key-not-secret" in (
        call.headers.get("x-api-key", "") + call.headers.get("authorization", "")
    )


def test_bulk_fails_over_to_the_cloud_when_local_answers_500(
    router: Router,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    fake_local.status = 500
    out = router.complete("hello", kind="bulk")
    assert out.decision.destination == "cloud" and out.decision.fell_back
    (row,) = rows(memory_audit, router)
    assert [(a.destination, a.outcome) for a in row.attempts] == [
        ("local", "http_5xx"),
        ("cloud", "ok"),
    ]


def test_bulk_falls_back_when_the_local_server_is_stopped(
    router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.stop()
    out = router.complete("hello")
    assert out.decision.destination == "cloud" and out.decision.fell_back


@pytest.mark.parametrize("fault", ["500", "429", "stopped", "hang"])
def test_sensitive_requests_fail_closed_under_every_local_fault(
    fault: str, fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    policy = offline_policy(fake_local, fake_cloud)
    if fault == "hang":
        data = policy.model_dump()
        data["destinations"]["local"]["timeout"] = 0.3
        policy = type(policy).model_validate(data)
    router = Router(policy, audit=memory_audit, probe_ttl=0.001)
    try:
        if fault == "stopped":
            fake_local.stop()
        elif fault == "hang":
            fake_local.hang = True
        else:
            fake_local.status = int(fault)
        with pytest.raises(LocalUnavailable) as info:
            router.complete("my SSN is 078-05-1120", sensitive=True)
        assert fake_cloud.model_calls() == []
        (row,) = rows(memory_audit, router)
        assert row.outcome == "refused" and row.sensitive and row.id == info.value.decision_id
    finally:
        router.close()


def test_detected_pii_pins_an_unflagged_request_to_local(
    router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.stop()
    with pytest.raises(LocalUnavailable):
        router.complete("Write to jane.doe@example.com about the invoice", kind="reason")
    assert fake_cloud.model_calls() == []


def test_a_failing_detector_makes_the_request_sensitive(
    router: Router, fake_cloud: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(text: str) -> frozenset[str]:
        raise RuntimeError("detector crashed")

    broken = type("Broken", (), {"scan": staticmethod(boom)})()
    monkeypatch.setattr(router.lifecycle.assessor, "scanner", broken)
    d = router.decide("harmless", kind="reason")
    assert d.sensitive and d.sensitive_reasons == ("detector_error",) and d.target == "local"


def test_explicit_cloud_model_on_a_sensitive_request_is_refused_and_audited(
    router: Router, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    with pytest.raises(PrivacyViolation):
        router.complete("hi", model="cloud", sensitive=True)
    assert fake_cloud.model_calls() == []
    assert rows(memory_audit, router)[0].outcome == "refused"


def test_unknown_models_and_urls_are_refused_without_contacting_anything(
    router: Router,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    for model in ("gpt-9", f"{fake_local.base_url}"):
        with pytest.raises(ModelNotAllowed):
            router.complete("hi", model=model)
    assert fake_local.model_calls() == [] and fake_cloud.model_calls() == []
    assert [r.error_class for r in rows(memory_audit, router)] == ["ModelNotAllowed"] * 2


def test_empty_prompts_and_huge_sources_are_rejected_and_audited(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    from llm_localfirst.config import Settings

    router = Router(
        offline_policy(fake_local), audit=memory_audit, settings=Settings.load(max_input_chars=1000)
    )
    try:
        with pytest.raises(InvalidRequest, match="empty"):
            router.complete("   ")
        with pytest.raises(InvalidRequest, match="limit is 1000"):
            router.complete("summarise", source="x" * 5000)
        assert [r.outcome for r in rows(memory_audit, router)] == ["error", "error"]
        assert fake_local.model_calls() == []
    finally:
        router.close()


def test_a_non_retryable_4xx_is_not_failed_over(
    router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.status = 400
    with pytest.raises(UpstreamError) as info:
        router.complete("hello")
    assert info.value.status == 400 and fake_cloud.model_calls() == []


def test_every_candidate_failing_raises_upstream_error(
    router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.status = 503
    fake_cloud.status = 529
    with pytest.raises(UpstreamError, match="every destination failed"):
        router.complete("hello")


def test_streaming_yields_text_chunks_and_audits_once(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    async def run() -> str:
        with anyio.fail_after(10):
            return "".join([c.text async for c in router.astream("stream me")])

    assert run_in_loop(router, run) == "echo: stream me"
    (row,) = rows(memory_audit, router)
    assert row.endpoint == "stream" and row.outcome == "ok" and row.completion_chars == 15


def test_streaming_fails_over_before_the_first_byte(
    router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.status = 500

    async def run() -> str:
        with anyio.fail_after(10):
            return "".join([c.text async for c in router.astream("stream me")])

    assert run_in_loop(router, run) == "echo: stream me"
    assert len(fake_cloud.model_calls()) == 1


def test_a_failure_mid_stream_is_an_error_not_a_failover(
    router: Router,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    fake_local.break_stream_after = 2

    async def run() -> list[str]:
        got: list[str] = []
        with anyio.fail_after(10):
            async for chunk in router.astream("stream me"):
                got.append(chunk.text)
        return got

    with pytest.raises(UpstreamError, match="mid-way"):
        run_in_loop(router, run)
    assert fake_cloud.model_calls() == []
    (row,) = rows(memory_audit, router)
    assert row.outcome == "error"


def test_closing_a_stream_early_audits_it_as_cancelled(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    async def run() -> None:
        with anyio.fail_after(10):
            stream = await router.lifecycle.stream(router.lifecycle.build("stream me"))
            await stream.__anext__()
            await stream.aclose()

    run_in_loop(router, run)
    (row,) = rows(memory_audit, router)
    assert row.outcome == "cancelled"


def test_acomplete_works_inside_the_callers_event_loop(router: Router) -> None:
    async def run() -> str:
        with anyio.fail_after(10):
            out = await router.acomplete("hello from async")
            return out.text

    assert run_in_loop(router, run) == "echo: hello from async"


def test_decide_probes_local_reachability_and_caches_it(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(offline_policy(fake_local), audit=memory_audit, probe_ttl=60)
    try:
        for _ in range(5):
            assert router.decide(kind="bulk").target == "local"
        probes = [r for r in fake_local.requests if r.path.endswith("/models")]
        assert len(probes) == 1
        fake_local.stop()
        assert router.decide().target == "local"  # still cached
        router.health.invalidate()
        with pytest.raises(LocalUnavailable):
            router.decide(sensitive=True)
    finally:
        router.close()


def test_every_request_leaves_exactly_one_audit_row(
    router: Router, fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router.complete("a")
    with pytest.raises(ModelNotAllowed):
        router.complete("b", model="nope")
    fake_local.status = 500
    router.complete("c")  # fails over to the cloud
    router.complete("d", kind="reason")
    with pytest.raises(LocalUnavailable):
        router.complete("e", sensitive=True)
    assert len(rows(memory_audit, router)) == 5


def test_long_messages_resent_in_a_chat_history_are_scanned_once(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = router.lifecycle.assessor.scanner

    class Counting:
        def scan(self, text: str) -> frozenset[str]:
            calls.append(len(text))
            return real.scan(text)

    monkeypatch.setattr(router.lifecycle.assessor, "scanner", Counting())
    history = "Meeting notes. " * 100 + " Reach me at jane.roe@example.org."
    first = router.decide(messages=[{"role": "user", "content": history}])
    again = router.decide(
        messages=[
            {"role": "user", "content": history},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "and now?"},
        ]
    )
    assert first.sensitive and again.sensitive
    assert again.detectors == ("email",)
    assert calls.count(len(history)) == 1
    # Only digests are kept, never the text: BLAKE2b for long strings, (length, keyed
    # hash) for short ones.
    assert all(
        (isinstance(k, bytes) and len(k) == 16)
        or (isinstance(k, tuple) and all(isinstance(i, int) for i in k))
        for k in router.lifecycle.assessor.scan_cache
    )
