"""Dispatch through the Router: send-time locality, stream end markers, typed failures, reloads."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from llm_localfirst import LocalUnavailable, Router, UpstreamError
from llm_localfirst.audit import AuditFilter
from llm_localfirst.errors import UpstreamTimeout
from llm_localfirst.policy import Policy, policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore
from tests.providers.scripted import ScriptedServer, Seen, sse


def local(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "openai",
        "base_url": url,
        "model": "m",
        "locality": "local",
        "timeout": 5,
        "connect_timeout": 2,
        **extra,
    }


def policy(
    destinations: dict[str, Any],
    to: list[str],
    fallback: list[str] = (),  # type: ignore[assignment]
    **top: Any,
) -> Policy:
    return policy_from_data(
        {
            "version": 1,
            "destinations": destinations,
            "default": {"to": to, "fallback": list(fallback)},
            **top,
        },
        source="<test>",
    )


@pytest.fixture
def fakes() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as first, FakeUpstream() as second:
        yield first, second


def rows(router: Router, store: MemoryAuditStore) -> list[Any]:
    router.flush(10)
    return store.query(AuditFilter(limit=100))


# ------------------------------------------------------------------ send-time locality


def test_a_trusted_name_that_moves_to_a_public_address_after_the_probe_is_never_connected_to(
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = {"model.internal": "127.0.0.1"}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answer:  # fault injection: the DNS answer changes between probe and send
            return real_getaddrinfo(answer[host], port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    connected: list[str] = []
    create_connection = asyncio.BaseEventLoop.create_connection

    async def record(
        self: asyncio.BaseEventLoop, factory: Any, host: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        connected.append(str(host))
        return await create_connection(self, factory, host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", record)
    pol = policy(
        {
            "gpu": local(f"http://model.internal:{fake_local.port}/v1"),
            "cloud": {
                "provider": "openai",
                "base_url": fake_cloud.base_url,
                "model": "c",
                "api_key_env": "LF_FAKE_CLOUD_KEY",
            },
        },
        ["gpu"],
        ["cloud"],
        trusted_local_hosts=["model.internal"],
    )
    with Router(pol, audit=memory_audit, probe_ttl=600) as router:
        assert router.decide("warm up").destination == "gpu"  # probed while it was local
        assert router.health.is_up("gpu") and fake_local.requests  # the probe reached it
        answer["model.internal"] = "1.1.1.1"
        calls = len(fake_local.model_calls())
        with pytest.raises(LocalUnavailable):
            router.complete("customer alice@example.com", sensitive=True)
        row = rows(router, memory_audit)[0]
    assert "1.1.1.1" not in connected
    assert len(fake_local.model_calls()) == calls and fake_cloud.model_calls() == []
    assert [(a.destination, a.outcome) for a in row.attempts] == [("gpu", "not_local")]


# ------------------------------------------------------------------ streams


CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}\n\n'


def test_astream_raises_when_the_stream_ends_without_its_end_marker(
    memory_audit: MemoryAuditStore,
) -> None:
    async def script(seen: Seen) -> bytes:
        return sse(CHUNK, done=False)

    with (
        ScriptedServer(script) as server,
        Router(policy({"a": local(server.url())}, ["a"]), audit=memory_audit) as router,
    ):
        texts: list[str] = []

        async def consume() -> None:
            async for chunk in router.astream("hi"):
                texts.append(chunk.text)

        async def main() -> list[str]:
            with anyio.fail_after(10), pytest.raises(UpstreamError, match="mid-way") as failed:
                await consume()
            assert failed.value.attempts[-1].outcome == "incomplete_stream"
            return texts

        assert router.lifecycle.run_sync(main()) == ["par"]
        row = rows(router, memory_audit)[0]
    assert row.outcome == "error" and row.attempts[-1].outcome == "incomplete_stream"


def test_a_200_stream_with_no_parseable_chunk_fails_over_before_the_first_byte(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    async def script(seen: Seen) -> bytes:
        return sse(b"data: not json\n\n")

    with (
        ScriptedServer(script) as server,
        Router(
            policy({"a": local(server.url()), "b": local(fake_local.base_url)}, ["a"], ["b"]),
            audit=memory_audit,
        ) as router,
    ):

        async def main() -> str:
            with anyio.fail_after(10):
                return "".join([c.text async for c in router.astream("hi")])

        assert router.lifecycle.run_sync(main()).startswith("echo: hi")
        row = rows(router, memory_audit)[0]
    assert row.outcome == "ok" and row.destination == "b"
    assert [a.outcome for a in row.attempts] == ["error", "ok"]


# ------------------------------------------------------------------ typed failures


def test_upstream_errors_carry_every_attempt_and_a_timeout_is_its_own_type(
    memory_audit: MemoryAuditStore,
) -> None:
    with FakeUpstream(status=503) as broken, FakeUpstream(hang=True) as hung:
        pol = policy(
            {"a": local(broken.base_url), "b": local(hung.base_url, timeout=0.3)}, ["a"], ["b"]
        )
        with Router(pol, audit=memory_audit) as router, pytest.raises(UpstreamTimeout) as err:
            router.complete("hi")
    attempts = err.value.attempts
    assert [(a.destination, a.outcome, a.status) for a in attempts] == [
        ("a", "http_5xx", 503),
        ("b", "timeout", None),
    ]
    assert all(a.latency_ms > 0 for a in attempts)
    assert err.value.destination == "b" and len(err.value.attempts) == 2


def test_an_early_stop_names_the_destination_that_stopped_it(
    fakes: tuple[FakeUpstream, FakeUpstream], memory_audit: MemoryAuditStore
) -> None:
    first, second = fakes
    first.status = 400
    with (
        Router(
            policy({"a": local(first.base_url), "b": local(second.base_url)}, ["a"], ["b"]),
            audit=memory_audit,
        ) as router,
        pytest.raises(UpstreamError) as err,
    ):
        router.complete("hi")
    assert type(err.value) is UpstreamError and err.value.status == 400
    assert err.value.destination == "a" and [a.destination for a in err.value.attempts] == ["a"]
    assert second.model_calls() == []


# ------------------------------------------------------------------ reloads


def test_reloads_that_change_a_destination_close_the_retired_connections(
    memory_audit: MemoryAuditStore,
) -> None:
    from tests.providers.scripted import CHAT, json_response

    async def script(seen: Seen) -> bytes:
        return json_response(CHAT)

    with ScriptedServer(script) as server:
        router = Router(policy({"a": local(server.url())}, ["a"]), audit=memory_audit)
        try:
            for i in range(15):
                router.reload(policy({"a": local(server.url(), model=f"m{i}")}, ["a"]))
                assert router.complete("hi").text == "ok"
                assert server.wait_open(1), f"{server.open_now} connections open after reload {i}"
        finally:
            router.close()
        assert server.wait_open(0)
    assert server.opened == 2 * 15  # per generation: one probe, one kept-alive connection


def test_a_stream_in_flight_survives_a_reload_and_its_provider_closes_after_it(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(policy({"a": local(fake_local.base_url)}, ["a"]), audit=memory_audit)

    async def main() -> str:
        with anyio.fail_after(10):
            request = router.lifecycle.build("hello there")
            stream = await router.lifecycle.stream(request)
            old = router.lifecycle.dispatcher.providers["a"]
            router.reload(policy({"a": local(fake_local.base_url, model="new")}, ["a"]))
            texts = []
            async with stream:
                async for chunk in stream:
                    texts.append(
                        chunk["choices"][0]["delta"].get("content") or ""
                        if chunk.get("choices")
                        else ""
                    )
            assert old.idle_connections == 0  # type: ignore[attr-defined]
            return "".join(texts)

    try:
        assert router.lifecycle.run_sync(main()).startswith("echo: hello")
    finally:
        router.close()


def test_a_local_anthropic_destination_is_vetted_at_send_time_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llm_localfirst.providers.anthropic import AnthropicProvider
    from llm_localfirst.providers.base import AttemptFailed, egress_guard
    from llm_localfirst.registry import Destination, TrustedHosts

    answer = {"model.internal": "127.0.0.1"}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo(answer.get(host, host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    body = {"messages": [{"role": "user", "content": "hi"}]}
    with FakeUpstream() as fake:
        dest = Destination(
            name="claude-box",
            provider="anthropic",
            model="m",
            locality="local",
            base_url=f"http://model.internal:{fake.port}",
        )
        ticket = egress_guard(dest, sensitive=True, trusted=TrustedHosts.parse(["model.internal"]))

        async def chat() -> str:
            provider = AnthropicProvider(dest)
            try:
                with anyio.fail_after(10):
                    return (await provider.chat(ticket, body)).text
            finally:
                await provider.aclose()

        assert asyncio.run(chat()).startswith("echo: hi")
        answer["model.internal"] = "1.1.1.1"
        with pytest.raises(AttemptFailed) as refused:
            asyncio.run(chat())
        assert refused.value.outcome == "not_local"
        assert len(fake.model_calls()) == 1


def test_each_asyncio_run_closes_the_connections_it_opened(memory_audit: MemoryAuditStore) -> None:
    from tests.providers.scripted import CHAT, json_response

    async def script(seen: Seen) -> bytes:
        return json_response(CHAT)

    with ScriptedServer(script) as server:
        router = Router(policy({"a": local(server.url())}, ["a"]), audit=memory_audit)
        try:
            for _ in range(5):
                assert asyncio.run(router.acomplete("hi")).text == "ok"
                assert server.wait_open(0), f"{server.open_now} connections left open"
        finally:
            router.close()
