"""providers/openai_compat.py against a loopback FakeUpstream (a fake, for fault injection)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llm_localfirst import PrivacyViolation
from llm_localfirst.providers.base import AttemptFailed, EgressTicket, egress_guard
from llm_localfirst.providers.openai_compat import OpenAICompatProvider
from llm_localfirst.registry import Destination
from llm_localfirst.testing import FakeUpstream

BODY = {"messages": [{"role": "user", "content": "hi"}]}


def dest(fake: FakeUpstream, *, locality: str = "local", timeout: float = 5.0) -> Destination:
    return Destination(
        name="d",
        provider="openai",
        base_url=fake.base_url,
        model="m",
        locality=locality,
        timeout=timeout,
    )  # type: ignore[arg-type]


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


async def chat_then_close(provider: OpenAICompatProvider, ticket: EgressTicket) -> Any:
    try:
        return await provider.chat(ticket, BODY)
    finally:
        await provider.aclose()


def test_a_chat_is_sent_with_the_destination_model_and_parsed(fake_local: FakeUpstream) -> None:
    d = dest(fake_local)
    result = run(chat_then_close(OpenAICompatProvider(d), egress_guard(d, sensitive=True)))
    assert result.text == "echo: hi" and result.finish_reason == "stop"
    assert result.input_tokens > 0 and result.output_tokens > 0
    assert fake_local.model_calls()[0].body["model"] == "m"


def test_a_sensitive_ticket_for_a_cloud_destination_sends_nothing(fake_cloud: FakeUpstream) -> None:
    d = dest(fake_cloud, locality="cloud")
    ticket = egress_guard(d, sensitive=False)
    forged = EgressTicket("d", True, ticket.seal)
    with pytest.raises(PrivacyViolation):
        run(chat_then_close(OpenAICompatProvider(d), forged))
    assert fake_cloud.requests == []


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
def test_http_errors_are_classified_for_failover(
    fake_local: FakeUpstream, status: int, outcome: str, retryable: bool
) -> None:
    fake_local.status = status
    d = dest(fake_local)
    with pytest.raises(AttemptFailed) as info:
        run(chat_then_close(OpenAICompatProvider(d), egress_guard(d, sensitive=False)))
    assert (info.value.outcome, info.value.status, info.value.retryable) == (
        outcome,
        status,
        retryable,
    )
    assert info.value.body is not None and "error" in info.value.body


def test_a_stopped_server_is_a_connect_error_and_a_hung_one_a_timeout(
    fake_local: FakeUpstream,
) -> None:
    hung = dest(fake_local, timeout=0.3)
    fake_local.hang = True
    with pytest.raises(AttemptFailed) as info:
        run(chat_then_close(OpenAICompatProvider(hung), egress_guard(hung, sensitive=False)))
    assert info.value.outcome == "timeout"
    fake_local.stop()
    d = dest(fake_local)
    with pytest.raises(AttemptFailed) as info:
        run(chat_then_close(OpenAICompatProvider(d), egress_guard(d, sensitive=False)))
    assert info.value.outcome == "connect_error"


def test_a_stream_fails_on_its_first_chunk_so_the_router_can_fail_over(
    fake_local: FakeUpstream,
) -> None:
    fake_local.status = 502
    d = dest(fake_local)
    provider = OpenAICompatProvider(d)

    async def first() -> None:
        try:
            await provider.stream_chat(egress_guard(d, sensitive=False), BODY).__anext__()
        finally:
            await provider.aclose()

    with pytest.raises(AttemptFailed) as info:
        run(first())
    assert info.value.outcome == "http_5xx"


def test_the_probe_reports_up_and_down(fake_local: FakeUpstream) -> None:
    d = dest(fake_local)
    provider = OpenAICompatProvider(d)

    async def probe() -> tuple[bool, str]:
        try:
            return await provider.probe()
        finally:
            await provider.aclose()

    assert run(probe())[0] is True
    fake_local.stop()
    assert run(probe())[0] is False
