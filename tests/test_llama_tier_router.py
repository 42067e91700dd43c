"""The routing core against a real llama.cpp server (tiny random-weight model).

The local destination is a real ``llama_cpp.server`` speaking the real OpenAI wire
protocol; the "cloud" is a loopback FakeUpstream (a fake, used only to observe
whether anything was sent to it).
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from llm_localfirst import LocalUnavailable, Router
from llm_localfirst.audit import AuditFilter
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama


def make_router(local: LlamaServer, cloud: FakeUpstream, store: MemoryAuditStore) -> Router:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": local.base_url,
                    "model": local.model_id,
                    "locality": "local",
                    "context_window": 2048,
                    "timeout": 60,
                },
                "cloud": {
                    "provider": "openai",
                    "base_url": cloud.base_url,
                    "model": "fake-cloud",
                    "locality": "cloud",
                    "api_key_env": "LF_FAKE_CLOUD_KEY",
                },
            },
            "default": {"to": ["local"], "fallback": ["cloud"]},
        }
    )
    return Router(policy, audit=store, probe_ttl=0.001)


def test_a_real_local_model_answers_bulk_work(
    llama_server: LlamaServer, fake_cloud: FakeUpstream
) -> None:
    store = MemoryAuditStore()
    with make_router(llama_server, fake_cloud, store) as router:
        out = router.complete(
            "Summarise: the cat sat on the mat.", kind="bulk", max_tokens=8, temperature=0.0
        )
        assert out.decision.target == "local" and out.decision.model == "tiny"
        assert isinstance(out.text, str) and out.usage.input_tokens > 0
        assert fake_cloud.model_calls() == []
        router.flush()
        (row,) = store.query(AuditFilter())
        assert row.outcome == "ok" and row.tokens_out and row.tokens_out <= 8


def test_streaming_from_the_real_local_model(
    llama_server: LlamaServer, fake_cloud: FakeUpstream
) -> None:
    store = MemoryAuditStore()
    router = make_router(llama_server, fake_cloud, store)

    async def run() -> list[str]:
        try:
            with anyio.fail_after(60):
                return [c.text async for c in router.astream("Say something.", max_tokens=8)]
        finally:
            await router.aclose()

    chunks = asyncio.run(run())
    assert chunks and fake_cloud.model_calls() == []
    rows = store.query(AuditFilter())
    assert rows[0].endpoint == "stream" and rows[0].outcome == "ok"


def test_bulk_fails_over_to_the_cloud_when_the_real_server_is_stopped(
    llama_server_factory, fake_cloud: FakeUpstream
) -> None:  # type: ignore[no-untyped-def]
    server = llama_server_factory()
    store = MemoryAuditStore()
    with make_router(server, fake_cloud, store) as router:
        assert router.complete("hello", max_tokens=4).decision.destination == "local"
        server.stop()
        out = router.complete("hello again", max_tokens=4)
        assert out.decision.destination == "cloud" and out.decision.fell_back
        assert len(fake_cloud.model_calls()) == 1


def test_sensitive_work_fails_closed_when_the_real_server_is_down(
    llama_server_factory, fake_cloud: FakeUpstream
) -> None:  # type: ignore[no-untyped-def]
    server = llama_server_factory()
    store = MemoryAuditStore()
    with make_router(server, fake_cloud, store) as router:
        out = router.complete("Patient John Smith, SSN 536-22-8726: summarise.", max_tokens=4)
        assert out.decision.sensitive and out.decision.target == "local"
        server.stop()
        with pytest.raises(LocalUnavailable):
            router.complete("Patient John Smith, SSN 536-22-8726: summarise.", max_tokens=4)
        with pytest.raises(LocalUnavailable):
            router.complete("anything", sensitive=True, max_tokens=4)
        assert fake_cloud.model_calls() == []
        server.start()
        router.health.invalidate()
        assert router.complete("back", sensitive=True, max_tokens=4).decision.target == "local"


def test_a_prompt_over_the_real_context_window_is_a_clear_upstream_error(
    llama_server: LlamaServer, fake_cloud: FakeUpstream
) -> None:
    from llm_localfirst import UpstreamError

    store = MemoryAuditStore()
    with make_router(llama_server, fake_cloud, store) as router:
        with pytest.raises(UpstreamError) as info:
            router.complete("word " * 3000, sensitive=True, max_tokens=4)
        assert info.value.status == 400
        assert fake_cloud.model_calls() == []
