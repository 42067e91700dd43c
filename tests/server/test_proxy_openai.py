"""The proxy through the official ``openai`` SDK (sync, async, streaming) and LangChain.

The local destination and the cloud are ``FakeUpstream`` fakes on loopback (the
cloud speaks Anthropic's wire format, so the translation path is exercised too).
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import openai
import pytest

from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream
from tests.server.conftest import LiveProxy


def sdk(proxy: LiveProxy, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=proxy.base_url, api_key="sk-anything", max_retries=0, timeout=10, **kwargs
    )


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_sync_client_chat_is_routed_and_the_decision_is_in_the_headers(proxy: LiveProxy) -> None:
    raw = sdk(proxy).chat.completions.with_raw_response.create(
        model="auto", messages=user("summarise the minutes")
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: summarise the minutes"
    assert raw.headers["x-lf-destination"] == "local"
    assert raw.headers["x-lf-locality"] == "local"
    assert raw.headers["x-lf-fell-back"] == "false"
    (row,) = proxy.rows()
    assert raw.headers["x-lf-decision-id"] == row.id
    assert (row.face, row.endpoint, row.outcome, row.destination) == (
        "proxy",
        "chat",
        "ok",
        "local",
    )
    assert row.tokens_in and row.tokens_out
    assert proxy.local.model_calls()[0].body["model"] == "fake-local"


def test_async_client_chat_works_unchanged(proxy: LiveProxy) -> None:
    async def main() -> str | None:
        client = openai.AsyncOpenAI(
            base_url=proxy.base_url, api_key="sk-anything", max_retries=0, timeout=10
        )
        async with client:
            with anyio.fail_after(10):
                answers = await asyncio.gather(
                    *(
                        client.chat.completions.create(model="auto", messages=user(f"n{i}"))
                        for i in range(5)
                    )
                )
        assert sorted(a.choices[0].message.content or "" for a in answers) == [
            f"echo: n{i}" for i in range(5)
        ]
        return answers[0].choices[0].message.content

    assert asyncio.run(main())
    assert len(proxy.rows(outcome="ok")) == 5


def test_streaming_yields_every_chunk_then_ends_and_audits_once(proxy: LiveProxy) -> None:
    with sdk(proxy).chat.completions.with_streaming_response.create(
        model="auto", messages=user("stream this please"), stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-lf-destination"] == "local"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream this please"
    # The proxy asked upstream for usage (for the audit) but the client did not: no usage chunk.
    assert all(c.choices for c in chunks)
    (row,) = proxy.rows()
    assert (row.endpoint, row.outcome, row.completion_chars) == ("stream", "ok", len(text))
    assert row.tokens_out


def test_streaming_usage_chunk_reaches_a_client_that_asks_for_it(proxy: LiveProxy) -> None:
    chunks = list(
        sdk(proxy).chat.completions.create(
            model="auto",
            messages=user("count me"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and not chunks[-1].choices


def test_async_streaming(proxy: LiveProxy) -> None:
    async def main() -> str:
        client = openai.AsyncOpenAI(
            base_url=proxy.base_url, api_key="sk-anything", max_retries=0, timeout=10
        )
        async with client:
            with anyio.fail_after(10):
                stream = await client.chat.completions.create(
                    model="auto", messages=user("async stream"), stream=True
                )
                return "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )

    assert asyncio.run(main()) == "echo: async stream"


def test_tools_and_other_fields_pass_through_to_an_openai_compatible_destination(
    proxy: LiveProxy,
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look a thing up",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]
    messages = [
        {"role": "user", "content": "look it up"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "weather"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    sdk(proxy).chat.completions.create(
        model="local",
        messages=messages,
        tools=tools,
        tool_choice="auto",  # type: ignore[arg-type]
        stop=["\n\n"],
        response_format={"type": "text"},
        seed=7,
        max_tokens=32,
        temperature=0.2,
    )
    sent = proxy.local.model_calls()[0].body
    assert sent["tools"] == tools and sent["tool_choice"] == "auto"
    assert sent["messages"] == messages
    assert (sent["stop"], sent["seed"], sent["max_tokens"], sent["temperature"]) == (
        ["\n\n"],
        7,
        32,
        0.2,
    )
    assert sent["response_format"] == {"type": "text"}


def test_reasoning_goes_to_the_anthropic_cloud_with_translation(proxy: LiveProxy) -> None:
    client = sdk(proxy, default_headers={"x-lf-kind": "reason"})
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("prove it"))
    assert raw.headers["x-lf-destination"] == "cloud"
    assert raw.headers["x-lf-locality"] == "cloud"
    assert raw.parse().choices[0].message.content == "echo: prove it"
    assert proxy.cloud.model_calls()[0].path.endswith("/messages")
    assert not proxy.local.model_calls()
    chunks = list(
        client.chat.completions.create(model="auto", messages=user("stream it"), stream=True)
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: stream it"
    )


def test_legacy_completions(proxy: LiveProxy) -> None:
    raw = sdk(proxy).completions.with_raw_response.create(model="auto", prompt="once upon")
    assert raw.parse().choices[0].text == "echo: once upon"
    assert raw.headers["x-lf-destination"] == "local"
    sent = proxy.local.model_calls()[0]
    assert sent.path == "/v1/completions" and sent.body["prompt"] == "once upon"
    streamed = list(sdk(proxy).completions.create(model="auto", prompt="twice", stream=True))
    assert "".join(c.choices[0].text for c in streamed) == "echo: twice"
    rows = proxy.rows()
    assert [r.endpoint for r in rows] == ["completions", "completions"]
    assert rows[0].completion_chars == len("echo: twice")


def test_embeddings(proxy: LiveProxy) -> None:
    result = sdk(proxy).embeddings.create(model="auto", input=["one", "two"])
    assert [d.index for d in result.data] == [0, 1]
    assert proxy.local.model_calls()[0].path == "/v1/embeddings"
    (row,) = proxy.rows()
    assert (row.endpoint, row.outcome, row.tokens_in) == ("embeddings", "ok", 3)


def test_models_lists_the_allowlist_and_auto(proxy: LiveProxy) -> None:
    client = sdk(proxy)
    ids = [m.id for m in client.models.list()]
    assert ids == ["auto", "local", "cloud"]
    assert client.models.retrieve("local").owned_by == "llm-localfirst:local"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-unknown")
    assert not proxy.rows()  # listing models is not a routed request


def test_responses_api_on_a_destination_that_speaks_it(
    proxy_factory: Any, fake_local: FakeUpstream
) -> None:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": fake_local.base_url,
                    "model": "fake-local",
                    "locality": "local",
                    "responses_api": True,
                }
            },
            "default": {"to": ["local"]},
        }
    )
    proxy = proxy_factory(policy=policy)
    response = sdk(proxy).responses.create(
        model="auto", input="hello there", instructions="be brief"
    )
    assert response.output_text == "echo: hello there"
    sent = proxy.local.model_calls()[0]
    assert sent.path == "/v1/responses" and sent.body["model"] == "fake-local"
    (row,) = proxy.rows()
    assert (row.endpoint, row.outcome) == ("responses", "ok")


def test_responses_api_elsewhere_is_a_clear_error_and_sends_nothing(proxy: LiveProxy) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(proxy).responses.create(model="auto", input="hello")
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "unsupported_endpoint"
    assert "responses_api: true" in error["message"]
    assert not proxy.local.model_calls()
    (row,) = proxy.rows()
    assert (row.endpoint, row.outcome, row.error_class) == (
        "responses",
        "refused",
        "UnsupportedEndpoint",
    )


def test_langchain_chat_openai_invoke_and_stream(proxy: LiveProxy) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=proxy.base_url,
        api_key="sk-anything",  # type: ignore[arg-type]
        model="auto",
        max_retries=0,
        timeout=10,
    )
    assert llm.invoke("hello from langchain").content == "echo: hello from langchain"
    streamed = "".join(str(chunk.content) for chunk in llm.stream("and streaming"))
    assert streamed == "echo: and streaming"
    assert [r.outcome for r in proxy.rows()] == ["ok", "ok"]
