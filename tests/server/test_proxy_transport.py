"""The proxy over the one provider: end markers, endpoint-aware failover, timeouts by type."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream
from tests.providers.scripted import ScriptedServer, Seen, sse
from tests.server.conftest import LiveProxy

CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"content":"half an ans"},"finish_reason":null}]}\n\n'
)


def sdk(proxy: LiveProxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0, timeout=10)


def one_local(url: str, **extra: Any) -> Any:
    return policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": url,
                    "model": "m",
                    "locality": "local",
                    **extra,
                }
            },
            "default": {"to": ["local"]},
        }
    )


def test_a_stream_that_ends_without_its_end_marker_ends_with_an_error_event_and_no_done(
    proxy_factory: Any,
) -> None:
    async def script(seen: Seen) -> bytes:
        return sse(CHUNK, done=False)

    with ScriptedServer(script) as upstream:
        proxy = proxy_factory(policy=one_local(upstream.url()))
        with proxy.client() as client:
            response = client.post(
                "/v1/chat/completions",
                json={
                    "model": "auto",
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            )
        body = response.text
        (row,) = proxy.rows()
    assert response.status_code == 200 and "half an ans" in body
    assert "data: [DONE]" not in body and '"error"' in body.rsplit("data: ", 1)[-1]
    assert row.outcome == "error" and row.attempts[-1].outcome == "incomplete_stream"


def test_the_openai_sdk_sees_the_cut_stream_as_an_error(proxy_factory: Any) -> None:
    async def script(seen: Seen) -> bytes:
        return sse(CHUNK, done=False)

    with ScriptedServer(script) as upstream:
        proxy = proxy_factory(policy=one_local(upstream.url()))
        stream = sdk(proxy).chat.completions.create(
            model="auto", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.APIError):
            for _ in stream:
                pass


def test_failover_skips_a_destination_without_the_endpoint(
    proxy_factory: Any, fake_cloud: FakeUpstream
) -> None:
    with FakeUpstream() as anthropic_fake:
        policy = policy_from_data(
            {
                "version": 1,
                "destinations": {
                    "local": {
                        "provider": "openai",
                        "base_url": "http://127.0.0.1:9/v1",
                        "model": "m",
                        "locality": "local",
                        "connect_timeout": 1,
                    },
                    "haiku": {
                        "provider": "anthropic",
                        "base_url": anthropic_fake.root_url,
                        "model": "claude",
                        "api_key_env": "LF_FAKE_CLOUD_KEY",
                    },
                    "gpt": {
                        "provider": "openai",
                        "base_url": fake_cloud.base_url,
                        "model": "gpt",
                        "api_key_env": "LF_FAKE_CLOUD_KEY",
                    },
                },
                "default": {"to": ["local"], "fallback": ["haiku", "gpt"]},
            }
        )
        proxy = proxy_factory(policy=policy)
        completion = sdk(proxy).completions.create(model="auto", prompt="say hi")
        assert completion.choices[0].text
        assert [c.path for c in fake_cloud.model_calls()] == ["/v1/completions"]
        assert anthropic_fake.model_calls() == []
        (row,) = proxy.rows()
    assert row.destination == "gpt" and row.outcome == "ok"
    assert [(a.destination, a.outcome) for a in row.attempts][-2:] == [
        ("haiku", "unsupported_endpoint"),
        ("gpt", "ok"),
    ]


def test_unsupported_endpoint_only_when_no_candidate_has_it(
    proxy_factory: Any, fake_cloud: FakeUpstream
) -> None:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "haiku": {
                    "provider": "anthropic",
                    "base_url": fake_cloud.root_url,
                    "model": "claude",
                    "api_key_env": "LF_FAKE_CLOUD_KEY",
                }
            },
            "default": {"to": ["haiku"]},
        }
    )
    proxy = proxy_factory(policy=policy)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(proxy).completions.create(model="auto", prompt="say hi")
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "unsupported_endpoint"
    assert fake_cloud.model_calls() == []


def test_a_timeout_is_a_504_by_its_type(proxy_factory: Any) -> None:
    with FakeUpstream(hang=True) as hung:
        proxy = proxy_factory(policy=one_local(hung.base_url, timeout=0.3))
        with proxy.client() as client:
            response = client.post(
                "/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            )
        (row,) = proxy.rows()
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert row.error_class == "UpstreamTimeout"


def test_reloads_that_change_the_destination_do_not_pile_up_upstream_connections(
    proxy_factory: Any, memory_audit: Any, tmp_path: Any
) -> None:
    from llm_localfirst import Router
    from tests.providers.scripted import CHAT, json_response
    from tests.server.conftest import ONE_LOCAL_POLICY

    async def script(seen: Seen) -> bytes:
        return json_response(CHAT)

    with ScriptedServer(script) as upstream:
        path = tmp_path / "policy.yaml"
        path.write_text(ONE_LOCAL_POLICY.format(name="gen0", url=upstream.url()))
        proxy = proxy_factory(router=Router.from_policy(path, audit=memory_audit))
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        with proxy.client() as client:
            for generation in range(1, 15):
                assert client.post("/v1/chat/completions", json=body).status_code == 200
                path.write_text(
                    ONE_LOCAL_POLICY.format(name=f"gen{generation}", url=upstream.url())
                )
                reload = client.post("/admin/reload", headers=proxy.admin_headers())
                assert reload.status_code == 200, reload.text
                assert upstream.wait_open(0), f"{upstream.open_now} upstream connections open"
            assert client.post("/v1/chat/completions", json=body).status_code == 200
        assert upstream.wait_open(1)
