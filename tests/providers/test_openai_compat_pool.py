"""The one OpenAI-compatible provider: outcomes classified for failover, pooled connections.

Each fault is injected with ``FakeUpstream`` (loopback fake OpenAI server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import pytest

from llm_localfirst.errors import PrivacyViolation
from llm_localfirst.providers import make_provider
from llm_localfirst.providers.base import AttemptFailed, EgressTicket, Provider, egress_guard
from llm_localfirst.providers.openai_compat import OpenAICompatProvider
from llm_localfirst.registry import Destination
from llm_localfirst.testing import FakeUpstream

T = TypeVar("T")
PROVIDERS = [OpenAICompatProvider]


def destination(fake: FakeUpstream, **overrides: Any) -> Destination:
    fields: dict[str, Any] = {
        "name": "local",
        "provider": "openai",
        "base_url": fake.base_url,
        "model": "fake-local",
        "locality": "local",
        **overrides,
    }
    return Destination(**fields)


def run(provider: Provider, call: Callable[[Provider, EgressTicket], Awaitable[T]]) -> T:
    async def main() -> T:
        ticket = egress_guard(provider.destination, sensitive=False)
        try:
            with anyio.fail_after(10):
                return await call(provider, ticket)
        finally:
            await provider.aclose()

    return asyncio.run(main())


async def chat(provider: Provider, ticket: EgressTicket) -> Any:
    return await provider.chat(ticket, {"messages": [{"role": "user", "content": "hi"}]})


async def stream(provider: Provider, ticket: EgressTicket) -> list[Any]:
    body = {"messages": [{"role": "user", "content": "hello there"}]}
    return [chunk async for chunk in provider.stream_chat(ticket, body)]


def failure(
    provider: Provider, call: Callable[[Provider, EgressTicket], Awaitable[Any]]
) -> AttemptFailed:
    with pytest.raises(AttemptFailed) as caught:
        run(provider, call)
    return caught.value


def test_one_provider_serves_plain_http_and_tls_destinations(fake_local: FakeUpstream) -> None:
    assert isinstance(make_provider(destination(fake_local)), OpenAICompatProvider)
    tls = Destination(
        name="c",
        provider="openai",
        base_url="https://api.example.com/v1",
        model="m",
        locality="cloud",
    )
    assert isinstance(make_provider(tls), OpenAICompatProvider)


@pytest.mark.parametrize("cls", PROVIDERS)
def test_chat_and_stream_answers_are_the_same(
    cls: type[Provider], fake_local: FakeUpstream
) -> None:
    result = run(cls(destination(fake_local)), chat)  # type: ignore[call-arg]
    assert (result.text, result.finish_reason) == ("echo: hi", "stop")
    assert result.input_tokens and result.output_tokens
    chunks = run(cls(destination(fake_local)), stream)  # type: ignore[call-arg]
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        == "echo: hello there"
    )
    assert "usage" in chunks[-1]
    sent = fake_local.model_calls()[-1].body
    assert sent["model"] == "fake-local" and sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("cls", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "outcome", "retryable"),
    [
        (500, "http_5xx", True),
        (503, "http_5xx", True),
        (429, "http_429", True),
        (400, "http_4xx", False),
        (404, "http_4xx", False),
    ],
)
def test_error_statuses_are_classified_alike(
    cls: type[Provider], fake_local: FakeUpstream, status: int, outcome: str, retryable: bool
) -> None:
    fake_local.status = status
    for call in (chat, stream):
        failed = failure(cls(destination(fake_local)), call)  # type: ignore[call-arg]
        assert (failed.outcome, failed.status, failed.retryable) == (outcome, status, retryable)
        assert failed.body is not None
        assert failed.body["error"]["message"] == f"fake upstream answers {status}"


@pytest.mark.parametrize("cls", PROVIDERS)
def test_a_server_that_is_gone_is_a_connect_error(
    cls: type[Provider], fake_local: FakeUpstream
) -> None:
    dest = destination(fake_local)
    fake_local.stop()
    for call in (chat, stream):
        assert failure(cls(dest), call).outcome == "connect_error"  # type: ignore[call-arg]
    ok, detail = run(cls(dest), lambda p, t: p.probe())  # type: ignore[call-arg]
    assert not ok and detail.startswith("unreachable")


@pytest.mark.parametrize("cls", PROVIDERS)
def test_a_server_that_hangs_is_a_timeout(cls: type[Provider], fake_local: FakeUpstream) -> None:
    fake_local.hang = True
    for call in (chat, stream):
        failed = failure(cls(destination(fake_local, timeout=0.2)), call)  # type: ignore[call-arg]
        assert failed.outcome == "timeout" and failed.retryable


@pytest.mark.parametrize("cls", PROVIDERS)
def test_a_stream_broken_mid_way_raises_after_the_first_chunks(
    cls: type[Provider], fake_local: FakeUpstream
) -> None:
    fake_local.break_stream_after = 2
    got: list[Any] = []

    async def partial(provider: Provider, ticket: EgressTicket) -> None:
        body = {"messages": [{"role": "user", "content": "hello there"}]}
        async for chunk in provider.stream_chat(ticket, body):
            got.append(chunk)

    failed = failure(cls(destination(fake_local)), partial)  # type: ignore[call-arg]
    assert failed.outcome == "connect_error" and len(got) == 2


def test_a_sensitive_ticket_for_a_cloud_destination_sends_nothing(fake_local: FakeUpstream) -> None:
    cloud = destination(fake_local, locality="cloud", name="cloud")
    local_ticket = egress_guard(destination(fake_local), sensitive=True)
    provider = OpenAICompatProvider(cloud)

    async def main() -> None:
        with pytest.raises(PrivacyViolation):
            await provider.chat(local_ticket, {"messages": []})
        with pytest.raises(PrivacyViolation):
            await provider.post_json(local_ticket, "/embeddings", {"input": "x"})
        with pytest.raises(PrivacyViolation):
            async for _ in provider.stream_chat(local_ticket, {"messages": []}):
                pass
        await provider.aclose()

    asyncio.run(main())
    assert fake_local.model_calls() == []


def test_connections_are_kept_alive_and_a_stale_one_is_replaced(fake_local: FakeUpstream) -> None:
    provider = OpenAICompatProvider(destination(fake_local))

    async def main() -> list[str]:
        ticket = egress_guard(provider.destination, sensitive=False)
        texts = []
        with anyio.fail_after(10):
            for _ in range(3):
                texts.append((await chat(provider, ticket)).text)
            pool = next(iter(provider._pools.values()))
            assert len(pool._idle) == 1  # one connection served all three
            stale = pool._idle[0]
            await asyncio.to_thread(fake_local.stop)  # the server closes the idle connection
            await asyncio.to_thread(fake_local.start)  # and comes back on the same port
            texts.append((await chat(provider, ticket)).text)
            assert stale.closed and pool._idle and pool._idle[0] is not stale
        await provider.aclose()
        return texts

    assert asyncio.run(main()) == ["echo: hi"] * 4


def test_the_probe_counts_any_answer_below_500_as_up(fake_local: FakeUpstream) -> None:
    provider = OpenAICompatProvider(destination(fake_local))
    assert run(provider, lambda p, t: p.probe()) == (True, "answered 200")
