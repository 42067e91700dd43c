"""Routing input (headers, tags, A/B keys, detectors), the privacy pin, failover and errors.

Cloud and faults are ``FakeUpstream`` fakes on loopback: ``status`` answers every
model call with an error, ``hang`` never answers, ``break_stream_after`` drops the
connection mid-stream, ``stop()`` takes the destination away.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream
from tests.server.conftest import LiveProxy


def chat(
    proxy: LiveProxy, text: str = "hello", *, headers: dict[str, str] | None = None, **body: Any
) -> httpx2.Response:
    payload = {"model": "auto", "messages": [{"role": "user", "content": text}], **body}
    with proxy.client() as client:
        return client.post("/v1/chat/completions", json=payload, headers=headers or {})


@pytest.fixture
def second_local() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="from b") as fake:
        yield fake


@pytest.mark.parametrize("header", ["x-lf-sensitive", "x-sensitive"])
def test_a_sensitive_header_keeps_even_reasoning_local(proxy: LiveProxy, header: str) -> None:
    response = chat(proxy, headers={header: "true", "x-lf-kind": "reason"})
    assert response.status_code == 200
    assert response.headers["x-lf-destination"] == "local"
    assert not proxy.cloud.model_calls()
    (row,) = proxy.rows()
    assert row.sensitive and f"header:{header}" in row.sensitive_reasons


def test_a_sensitive_tag_keeps_the_request_local(proxy: LiveProxy) -> None:
    response = chat(proxy, headers={"x-lf-tags": "billing, PII", "x-lf-kind": "reason"})
    assert response.headers["x-lf-destination"] == "local"
    (row,) = proxy.rows()
    assert row.tags == ("billing", "pii") and "tag:pii" in row.sensitive_reasons


def test_detectors_scan_every_message_not_just_the_last(proxy: LiveProxy) -> None:
    messages = [
        {"role": "system", "content": "Customer: jane.doe@example.com"},
        {"role": "user", "content": [{"type": "text", "text": "draft a reply"}]},
    ]
    response = chat(proxy, headers={"x-lf-kind": "reason"}, messages=messages)
    assert response.headers["x-lf-destination"] == "local"
    assert not proxy.cloud.model_calls()
    assert "detector:email" in proxy.rows()[0].sensitive_reasons


def test_detectors_scan_tool_call_arguments(proxy: LiveProxy) -> None:
    messages = [
        {"role": "user", "content": "send it"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "mail", "arguments": '{"to": "jane.doe@example.com"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sent"},
    ]
    response = chat(proxy, headers={"x-lf-kind": "reason"}, messages=messages)
    assert response.headers["x-lf-destination"] == "local"
    assert not proxy.cloud.model_calls()


def test_a_sensitive_request_naming_a_cloud_model_is_refused_with_403(proxy: LiveProxy) -> None:
    response = chat(proxy, "mail jane.doe@example.com", model="cloud")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "privacy_violation"
    assert not proxy.cloud.model_calls() and not proxy.local.model_calls()
    (row,) = proxy.rows()
    assert row.outcome == "refused" and response.headers["x-lf-decision-id"] == row.id


def test_sensitive_with_no_local_destination_up_fails_closed_with_503(proxy: LiveProxy) -> None:
    proxy.local.stop()
    response = chat(proxy, "my card is 4111 1111 1111 1111")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "local_unavailable" and error["type"] == "server_error"
    assert not proxy.cloud.model_calls()
    (row,) = proxy.rows()
    assert (row.outcome, row.error_class, row.sensitive) == ("refused", "LocalUnavailable", True)


def test_the_privacy_pin_applies_to_embeddings(proxy: LiveProxy) -> None:
    with proxy.client() as client:
        ok = client.post(
            "/v1/embeddings",
            headers={"x-lf-kind": "reason"},
            json={"model": "auto", "input": ["write to jane.doe@example.com"]},
        )
        assert ok.status_code == 200 and ok.headers["x-lf-destination"] == "local"
        proxy.local.stop()
        refused = client.post(
            "/v1/embeddings",
            headers={"x-lf-kind": "reason"},
            json={"model": "auto", "input": "jane.doe@example.com"},
        )
        opaque = client.post(
            "/v1/embeddings",
            headers={"x-lf-kind": "reason"},
            json={"model": "auto", "input": [[101, 2023, 102]]},
        )
    assert refused.status_code == 503
    # Token ids cannot be scanned, so they count as sensitive (detection fails closed).
    assert opaque.status_code == 503
    assert not proxy.cloud.model_calls()


def test_ab_arms_are_sticky_by_header_key_and_by_user(
    proxy_factory: Any, fake_local: FakeUpstream, second_local: FakeUpstream
) -> None:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "a": {
                    "provider": "openai",
                    "base_url": fake_local.base_url,
                    "model": "m-a",
                    "locality": "local",
                },
                "b": {
                    "provider": "openai",
                    "base_url": second_local.base_url,
                    "model": "m-b",
                    "locality": "local",
                },
            },
            "default": {
                "to": [{"destination": "a", "weight": 50}, {"destination": "b", "weight": 50}]
            },
        }
    )
    proxy = proxy_factory(policy=policy)
    by_header = {
        k: {chat(proxy, headers={"x-lf-ab-key": k}).headers["x-lf-destination"] for _ in range(3)}
        for k in ("alice", "bob", "carol", "dave", "erin")
    }
    assert all(len(arms) == 1 for arms in by_header.values())
    assert {next(iter(a)) for a in by_header.values()} == {"a", "b"}
    by_user = {chat(proxy, user="alice").headers["x-lf-destination"] for _ in range(3)}
    assert by_user == by_header["alice"]


def test_failover_before_the_first_byte_is_reported(proxy: LiveProxy) -> None:
    proxy.local.status = 500
    response = chat(proxy, "plain words")
    assert response.status_code == 200
    assert response.headers["x-lf-destination"] == "cloud"
    assert response.headers["x-lf-fell-back"] == "true"
    (row,) = proxy.rows()
    assert row.fell_back and [a.outcome for a in row.attempts] == ["http_5xx", "ok"]
    with (
        proxy.client() as client,
        client.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "auto", "stream": True, "messages": [{"role": "user", "content": "s"}]},
        ) as streamed,
    ):
        assert streamed.headers["x-lf-destination"] == "cloud"
        assert streamed.read().endswith(b"data: [DONE]\n\n")


def test_a_failure_mid_stream_ends_with_an_error_event_and_no_failover(proxy: LiveProxy) -> None:
    proxy.local.break_stream_after = 2
    client = openai.OpenAI(base_url=proxy.base_url, api_key="sk", max_retries=0, timeout=10)
    received: list[str] = []

    def consume() -> None:
        for chunk in client.chat.completions.create(
            model="auto", stream=True, messages=[{"role": "user", "content": "long"}]
        ):
            received.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError) as caught:
        consume()
    assert "stream failed mid-way" in caught.value.message
    assert received  # the first chunks did reach the client
    assert not proxy.cloud.model_calls()
    (row,) = proxy.rows()
    assert (row.outcome, row.error_class, row.fell_back) == ("error", "UpstreamError", False)


def test_an_upstream_4xx_passes_through_without_failover(proxy: LiveProxy) -> None:
    proxy.local.status = 400
    response = chat(proxy)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "fake upstream answers 400"
    assert set(response.json()["error"]) >= {"message", "type", "param", "code"}
    assert not proxy.cloud.model_calls()


def test_rate_limits_everywhere_become_429(proxy: LiveProxy) -> None:
    proxy.local.status = 429
    proxy.cloud.status = 429
    response = chat(proxy)
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_every_destination_failing_is_a_502(proxy: LiveProxy) -> None:
    proxy.local.status = 500
    proxy.cloud.status = 503
    response = chat(proxy)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    (row,) = proxy.rows()
    assert row.outcome == "error" and len(row.attempts) == 2


def test_an_upstream_timeout_is_a_504(proxy_factory: Any, fake_local: FakeUpstream) -> None:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": fake_local.base_url,
                    "model": "m",
                    "locality": "local",
                    "timeout": 0.3,
                }
            },
            "default": {"to": ["local"]},
        }
    )
    proxy = proxy_factory(policy=policy)
    with proxy.client() as client:  # warm the health probe before the fake starts hanging
        assert (
            client.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
            ).status_code
            == 200
        )
    fake_local.hang = True
    response = chat(proxy)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
