"""The Anthropic provider: pure OpenAI <-> Messages translation, and the real SDK end to end.

End-to-end tests drive the real ``anthropic`` SDK through an ``httpx2.MockTransport``:
a fake Anthropic upstream for fault injection that answers with realistic Messages
API JSON and SSE streams, HTTP errors, error events and broken connections. Every
wait is bounded by :func:`run`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest

from llm_localfirst.errors import InvalidRequest, PrivacyViolation
from llm_localfirst.providers.anthropic import AnthropicProvider
from llm_localfirst.providers.anthropic_translate import (
    DEFAULT_MAX_TOKENS,
    IGNORED_FIELDS,
    StreamTranslator,
    finish_reason_of,
    from_message,
    openai_error_body,
    openai_usage,
    status_for_error_type,
    to_messages_params,
)
from llm_localfirst.providers.base import AttemptFailed, EgressTicket, egress_guard
from llm_localfirst.registry import Destination
from llm_localfirst.testing import FakeUpstream

T = TypeVar("T")
MODEL = "claude-test-1"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9a"
    "wAAAABJRU5ErkJggg=="
)


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout=10)

    return asyncio.run(bounded())


def params(body: Mapping[str, Any]) -> dict[str, Any]:
    return to_messages_params(body, model=MODEL)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# --- request translation -------------------------------------------------------------


def test_a_plain_user_message_becomes_a_string_turn_with_the_destination_model() -> None:
    out = params({"model": "gpt-4o", "messages": [user("hi")]})
    assert out == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_system_and_developer_messages_are_joined_into_the_system_parameter() -> None:
    out = params(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                user("a"),
                {
                    "role": "developer",
                    "content": [
                        {"type": "text", "text": "Use "},
                        {"type": "text", "text": "French."},
                    ],
                },
            ]
        }
    )
    assert out["system"] == "Be brief.\n\nUse French."
    assert out["messages"] == [{"role": "user", "content": "a"}]


def test_consecutive_messages_of_one_role_are_merged_into_one_turn() -> None:
    out = params(
        {
            "messages": [
                user("one"),
                user("two"),
                {"role": "assistant", "content": "three"},
                {"role": "assistant", "content": "four"},
            ]
        }
    )
    assert out["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}],
        },
    ]


def test_empty_messages_are_skipped_because_anthropic_rejects_empty_turns() -> None:
    out = params({"messages": [user("q"), {"role": "assistant", "content": ""}, user("r")]})
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "q"}, {"type": "text", "text": "r"}]}
    ]


def test_image_parts_become_base64_or_url_image_blocks() -> None:
    out = params(
        {
            "messages": [
                user(
                    [
                        {"type": "text", "text": "compare"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                        },
                    ]
                )
            ]
        }
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    "url",
    [
        "data:image/bmp;base64,Qk0=",
        "data:image/png,not-base64",
        "file:///etc/passwd",
        "ftp://example.com/a.png",
    ],
)
def test_an_image_that_anthropic_cannot_take_is_refused_with_its_location(url: str) -> None:
    body = {"messages": [user([{"type": "image_url", "image_url": {"url": url}}])]}
    with pytest.raises(InvalidRequest) as info:
        params(body)
    assert info.value.param == "messages[0].content[0]"


def test_an_inline_pdf_file_part_becomes_a_document_block() -> None:
    part = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
    }
    out = params({"messages": [user([part])]})
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "title": "a.pdf",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        }
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "video"},
        "bare string",
    ],
)
def test_content_parts_without_an_anthropic_form_are_refused(part: Any) -> None:
    with pytest.raises(InvalidRequest):
        params({"messages": [user([part])]})


def test_assistant_tool_calls_become_tool_use_blocks_with_parsed_input() -> None:
    out = params(
        {
            "messages": [
                user("weather?"),
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Zürich"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "now", "arguments": ""},
                        },
                    ],
                },
            ]
        }
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Zürich"}},
            {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
        ],
    }


@pytest.mark.parametrize("arguments", ['{"city": ', "[1, 2]", '"text"'])
def test_tool_call_arguments_that_are_not_a_json_object_are_refused(arguments: str) -> None:
    body = {
        "messages": [
            user("q"),
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "f", "arguments": arguments},
                    }
                ],
            },
        ]
    }
    with pytest.raises(InvalidRequest) as info:
        params(body)
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


def test_tool_results_become_one_user_turn_that_precedes_the_next_user_text() -> None:
    out = params(
        {
            "messages": [
                user("q"),
                {
                    "role": "assistant",
                    "content": "Looking.",
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {
                            "id": "b",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "2"}]},
                user("and so?"),
            ]
        }
    )
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"][0] == {"type": "text", "text": "Looking."}
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "a", "content": "1"},
        {"type": "tool_result", "tool_use_id": "b", "content": "2"},
        {"type": "text", "text": "and so?"},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [user("x")], "max_tokens": "many"}, "max_tokens"),
        ({"messages": [user("x")], "max_tokens": True}, "max_tokens"),
        ({"messages": [user("x")], "stop": 3}, "stop"),
        ({"messages": [user("x")], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"messages": [user("x")], "tools": [{"type": "custom", "custom": {"name": "x"}}]},
            "tools[0]",
        ),
    ],
)
def test_untranslatable_bodies_raise_invalid_request_naming_the_parameter(
    body: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        params(body)
    assert info.value.param == param


def test_max_completion_tokens_wins_over_max_tokens_and_a_default_applies() -> None:
    assert params({"messages": [user("x")], "max_tokens": 7})["max_tokens"] == 7
    both = {"messages": [user("x")], "max_tokens": 7, "max_completion_tokens": 9}
    assert params(both)["max_tokens"] == 9
    assert params({"messages": [user("x")], "max_tokens": None})["max_tokens"] == 1024


@pytest.mark.parametrize(
    ("stop", "expected"), [("END", ["END"]), (["a", "b"], ["a", "b"]), (None, None), ([], None)]
)
def test_stop_becomes_stop_sequences(stop: Any, expected: list[str] | None) -> None:
    assert params({"messages": [user("x")], "stop": stop}).get("stop_sequences") == expected


def test_function_tools_become_anthropic_tools_with_an_input_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    out = params(
        {
            "messages": [user("x")],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "weather",
                        "description": "Forecast.",
                        "parameters": schema,
                        "strict": True,
                    },
                },
                {"type": "function", "function": {"name": "now"}},
            ],
        }
    )
    assert out["tools"] == [
        {"name": "weather", "description": "Forecast.", "input_schema": schema, "strict": True},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        (
            {"type": "function", "function": {"name": "weather"}},
            {"type": "tool", "name": "weather"},
        ),
    ],
)
def test_tool_choice_maps_onto_anthropic_tool_choice(choice: Any, expected: Any) -> None:
    tools = [{"type": "function", "function": {"name": "weather"}}]
    assert (
        params({"messages": [user("x")], "tools": tools, "tool_choice": choice})["tool_choice"]
        == expected
    )


def test_parallel_tool_calls_false_disables_parallel_tool_use() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    base = {"messages": [user("x")], "tools": tools, "parallel_tool_calls": False}
    assert params(base)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert params({**base, "tool_choice": "required"})["tool_choice"] == {
        "type": "any",
        "disable_parallel_tool_use": True,
    }
    assert params({**base, "tool_choice": "none"})["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in params({**base, "parallel_tool_calls": True})
    assert "tool_choice" not in params({"messages": [user("x")], "tool_choice": "required"})


def test_user_becomes_metadata_user_id() -> None:
    assert params({"messages": [user("x")], "user": "u-42"})["metadata"] == {"user_id": "u-42"}


def test_a_json_schema_response_format_becomes_a_structured_output_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = params(
        {
            "messages": [user("x")],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "thing", "schema": schema, "strict": True},
            },
        }
    )
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    plain = params({"messages": [user("x")], "response_format": {"type": "json_object"}})
    assert "output_config" not in plain


def test_ignored_fields_including_sampling_parameters_are_never_sent() -> None:
    body: dict[str, Any] = {"messages": [user("x")], "model": "whatever"}
    body.update(dict.fromkeys(IGNORED_FIELDS, 1))
    assert {"temperature", "top_p", "n", "seed"} <= IGNORED_FIELDS
    assert set(params(body)) == {"model", "max_tokens", "messages"}


# --- response translation ------------------------------------------------------------


def message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 5, **usage},
    }


def test_a_text_message_becomes_an_openai_chat_completion() -> None:
    body = from_message(
        message(
            [
                {"type": "text", "text": "Hello"},
                {"type": "text", "text": " world", "citations": None},
            ]
        ),
        created=1700000000,
    )
    assert body == {
        "id": "msg_01",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello world"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


def test_tool_use_blocks_become_tool_calls_with_json_string_arguments() -> None:
    body = from_message(
        message(
            [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {"city": "Zürich"},
                },
            ],
            stop_reason="tool_use",
        ),
        created=0,
    )
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Zürich"}'},
        }
    ]
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "city": "Zürich"
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("pause_turn", "stop"),
        (None, None),
    ],
)
def test_stop_reasons_map_to_openai_finish_reasons(
    stop_reason: str | None, finish: str | None
) -> None:
    assert finish_reason_of(stop_reason) == finish


def test_prompt_tokens_include_cache_reads_and_writes() -> None:
    usage = openai_usage(
        {
            "input_tokens": 10,
            "output_tokens": 4,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
        }
    )
    assert usage == {
        "prompt_tokens": 130,
        "completion_tokens": 4,
        "total_tokens": 134,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


# --- stream translation --------------------------------------------------------------


def start_event(input_tokens: int = 12) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_s",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }


def text_events(*pieces: str, stop_reason: str = "end_turn") -> list[dict[str, Any]]:
    return [
        start_event(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
            for p in pieces
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 7},
        },
        {"type": "message_stop"},
    ]


def tool_events() -> list[dict[str, Any]]:
    return [
        start_event(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Ok."}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '"Bern"}'},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },
        {"type": "message_stop"},
    ]


def translate(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    translator = StreamTranslator(created=5)
    return [chunk for event in events for chunk in translator.feed(event)]


def deltas(chunks: list[dict[str, Any]]) -> list[Any]:
    return [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"])
        if c["choices"]
        else ("usage", c["usage"])
        for c in chunks
    ]


def test_a_text_stream_becomes_role_content_finish_and_usage_chunks_in_order() -> None:
    chunks = translate(text_events("Hel", "lo"))
    assert deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo"}, None),
        ({}, "stop"),
        ("usage", {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}),
    ]
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks} == {
        ("msg_s", "chat.completion.chunk", 5, MODEL)
    }


def test_a_tool_use_stream_becomes_indexed_tool_call_deltas() -> None:
    chunks = translate(tool_events())
    assert deltas(chunks)[1:] == [
        ({"content": "Ok."}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_a",
                        "type": "function",
                        "function": {"name": "weather", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Bern"}'}}]}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_b",
                        "type": "function",
                        "function": {"name": "now", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({}, "tool_calls"),
        ("usage", {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}),
    ]


def test_the_role_chunk_waits_for_the_first_real_chunk_so_early_errors_can_fail_over() -> None:
    translator = StreamTranslator(created=0)
    assert translator.feed(start_event()) == []
    assert translator.feed({"type": "ping"}) == []
    assert (
        translator.feed(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            }
        )
        == []
    )
    assert (
        translator.feed(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hm"},
            }
        )
        == []
    )
    first = translator.feed(
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "A"}}
    )
    assert deltas(first) == [({"role": "assistant", "content": ""}, None), ({"content": "A"}, None)]
    assert not translator.done


def test_a_stream_with_an_empty_answer_still_sends_role_finish_and_usage() -> None:
    chunks = translate(text_events(stop_reason="max_tokens"))
    assert [d for d, _ in deltas(chunks)][:1] == [{"role": "assistant", "content": ""}]
    assert deltas(chunks)[1] == ({}, "length")


# --- error shapes --------------------------------------------------------------------


def test_an_anthropic_error_body_is_reshaped_as_an_openai_error() -> None:
    body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: too large"},
        "request_id": "r",
    }
    assert openai_error_body(body, message="fallback") == {
        "error": {
            "message": "max_tokens: too large",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert (
        openai_error_body("<html>bad gateway</html>", message="fallback")["error"]["message"]
        == "fallback"
    )


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("overloaded_error", 529),
        ("rate_limit_error", 429),
        ("api_error", 500),
        ("invalid_request_error", 400),
        ("something_new", 500),
        (None, 500),
    ],
)
def test_error_event_types_map_to_their_http_status(error_type: Any, status: int) -> None:
    assert status_for_error_type(error_type) == status


# --- the real SDK against a fake upstream --------------------------------------------


def sse(events: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def error_json(kind: str, text: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_1"}


class FakeAnthropic:
    """A fake Anthropic upstream for fault injection, served through ``httpx2.MockTransport``.

    ``answer`` builds the response for each request; it may raise an ``httpx2``
    transport error to simulate a network failure.
    """

    def __init__(self, answer: Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx2.Request] = []
        self.client = httpx2.AsyncClient(transport=httpx2.MockTransport(self._handle))

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.answer(request)

    def body(self, i: int = 0) -> Any:
        return json.loads(self.requests[i].content)


def ok_message(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(
        200, json=message([{"type": "text", "text": "Bonjour"}]), headers={"request-id": "req_1"}
    )


def streaming(
    events: list[dict[str, Any]], *, then: Exception | None = None
) -> Callable[[httpx2.Request], httpx2.Response]:
    def answer(request: httpx2.Request) -> httpx2.Response:
        async def body() -> AsyncIterator[bytes]:
            for event in events:
                yield sse([event])
            if then is not None:
                raise then

        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    return answer


def status(code: int, kind: str = "api_error") -> Callable[[httpx2.Request], httpx2.Response]:
    return lambda request: httpx2.Response(code, json=error_json(kind, f"fake {code}"))


def raising(exc: Exception) -> Callable[[httpx2.Request], httpx2.Response]:
    def answer(request: httpx2.Request) -> httpx2.Response:
        raise exc

    return answer


def cloud(**fields: Any) -> Destination:
    return Destination(**{"name": "claude", "provider": "anthropic", "model": MODEL, **fields})


def provider(
    fake: FakeAnthropic, destination: Destination | None = None, **kwargs: Any
) -> tuple[AnthropicProvider, EgressTicket]:
    dest = destination or cloud()
    kwargs.setdefault("api_key", "sk-test")
    return (
        AnthropicProvider(dest, http_client=fake.client, **kwargs),
        egress_guard(dest, sensitive=False),
    )


async def collect(
    p: AnthropicProvider, ticket: EgressTicket, body: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    return [chunk async for chunk in p.stream_chat(ticket, body)]


CHAT = {
    "model": "auto",
    "messages": [{"role": "system", "content": "Be polite."}, user("Hi")],
    "max_tokens": 50,
    "temperature": 0.2,
}


def test_chat_over_the_real_sdk_sends_a_messages_request_and_returns_an_openai_body() -> None:
    fake = FakeAnthropic(ok_message)
    p, ticket = provider(fake)
    result = run(p.chat(ticket, CHAT))
    assert (result.text, result.finish_reason, result.input_tokens, result.output_tokens) == (
        "Bonjour",
        "stop",
        12,
        5,
    )
    assert result.body["object"] == "chat.completion"
    (request,) = fake.requests
    assert (request.method, request.url.path) == ("POST", "/v1/messages")
    assert str(request.url).startswith("https://api.anthropic.com/")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert "anthropic-version" in request.headers
    assert fake.body() == {
        "model": MODEL,
        "max_tokens": 50,
        "system": "Be polite.",
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_streaming_over_the_real_sdk_yields_openai_chunks_with_tool_calls() -> None:
    fake = FakeAnthropic(streaming(tool_events()))
    p, ticket = provider(fake)
    chunks = run(collect(p, ticket, CHAT))
    assert fake.body()["stream"] is True
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert "".join(c["function"]["arguments"] for c in calls if c["index"] == 0) == (
        '{"city": "Bern"}'
    )
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 30


@pytest.mark.parametrize(
    ("code", "kind", "outcome", "retryable"),
    [
        (500, "api_error", "http_5xx", True),
        (529, "overloaded_error", "http_5xx", True),
        (429, "rate_limit_error", "http_429", True),
        (400, "invalid_request_error", "http_4xx", False),
        (401, "authentication_error", "http_4xx", False),
    ],
)
def test_http_errors_become_classified_attempt_failures_after_one_request(
    code: int, kind: str, outcome: str, retryable: bool
) -> None:
    fake = FakeAnthropic(status(code, kind))
    p, ticket = provider(fake)
    with pytest.raises(AttemptFailed) as info:
        run(p.chat(ticket, CHAT))
    failed = info.value
    assert (failed.outcome, failed.status, failed.retryable) == (outcome, code, retryable)
    assert failed.body == {
        "error": {"message": f"fake {code}", "type": kind, "param": None, "code": None}
    }
    assert len(fake.requests) == 1  # max_retries=0: the router does the failing over


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (httpx2.ConnectError("connection refused"), "connect_error"),
        (httpx2.ReadTimeout("read timed out"), "timeout"),
        (httpx2.ConnectTimeout("connect timed out"), "timeout"),
    ],
)
def test_network_failures_become_connect_error_or_timeout(exc: Exception, outcome: str) -> None:
    fake = FakeAnthropic(raising(exc))
    p, ticket = provider(fake)
    with pytest.raises(AttemptFailed) as info:
        run(p.chat(ticket, CHAT))
    assert (info.value.outcome, info.value.retryable) == (outcome, True)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (status(500), "http_5xx"),
        (status(429, "rate_limit_error"), "http_429"),
        (raising(httpx2.ConnectError("refused")), "connect_error"),
        # An overloaded error event right after message_start, inside a 200 stream.
        (
            lambda request: httpx2.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=sse([start_event()])
                + b"event: error\ndata: "
                + json.dumps(error_json("overloaded_error", "Overloaded")).encode()
                + b"\n\n",
            ),
            "http_5xx",
        ),
    ],
)
def test_stream_failures_before_the_first_chunk_raise_from_the_first_anext(
    answer: Callable[[httpx2.Request], httpx2.Response], outcome: str
) -> None:
    fake = FakeAnthropic(answer)
    p, ticket = provider(fake)
    iterator = p.stream_chat(ticket, CHAT)
    assert fake.requests == []  # creating the iterator sends nothing
    with pytest.raises(AttemptFailed) as info:
        run(iterator.__anext__())
    assert info.value.outcome == outcome


def test_an_error_event_carries_the_status_of_its_type() -> None:
    events = text_events("a")[:3]
    fake = FakeAnthropic(
        lambda request: httpx2.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=sse(events)
            + b"event: error\ndata: "
            + json.dumps(error_json("rate_limit_error", "slow down")).encode()
            + b"\n\n",
        )
    )
    p, ticket = provider(fake)
    chunks: list[Mapping[str, Any]] = []

    async def consume() -> None:
        async for chunk in p.stream_chat(ticket, CHAT):
            chunks.append(chunk)

    with pytest.raises(AttemptFailed) as info:
        run(consume())
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "a"]
    assert (info.value.outcome, info.value.status) == ("http_429", 429)
    assert info.value.body is not None
    assert info.value.body["error"]["message"] == "slow down"


def test_a_connection_lost_mid_stream_raises_connect_error_after_the_chunks_so_far() -> None:
    fake = FakeAnthropic(streaming(text_events("a", "b")[:4], then=httpx2.ReadError("reset")))
    p, ticket = provider(fake)
    chunks: list[Mapping[str, Any]] = []

    async def consume() -> None:
        async for chunk in p.stream_chat(ticket, CHAT):
            chunks.append(chunk)

    with pytest.raises(AttemptFailed) as info:
        run(consume())
    assert info.value.outcome == "connect_error"
    assert len(chunks) == 3


def test_a_stream_that_ends_before_message_stop_is_a_failure_not_a_short_answer() -> None:
    fake = FakeAnthropic(streaming(text_events("a")[:4]))
    p, ticket = provider(fake)
    with pytest.raises(AttemptFailed) as info:
        run(collect(p, ticket, CHAT))
    assert info.value.outcome == "incomplete_stream"


def test_an_untranslatable_body_is_a_non_retryable_400_and_nothing_is_sent() -> None:
    fake = FakeAnthropic(ok_message)
    p, ticket = provider(fake)
    bad = {
        "messages": [
            user("q"),
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                ],
            },
        ]
    }
    with pytest.raises(AttemptFailed) as info:
        run(p.chat(ticket, bad))
    assert (info.value.outcome, info.value.status, info.value.retryable) == ("http_4xx", 400, False)
    assert info.value.body is not None
    assert info.value.body["error"]["param"] == "messages[1].tool_calls[0].function.arguments"
    with pytest.raises(AttemptFailed):
        run(collect(p, ticket, bad))
    assert fake.requests == []


# --- egress ----------------------------------------------------------------------------


def sensitive_ticket_for(name: str) -> EgressTicket:
    """A genuine sensitive ticket, made for a local destination that shares the name."""
    local = Destination(
        name=name,
        provider="anthropic",
        model=MODEL,
        base_url="http://127.0.0.1:9",
        locality="local",
    )
    return egress_guard(local, sensitive=True)


def test_a_sensitive_ticket_for_a_cloud_destination_is_refused_before_any_request() -> None:
    fake = FakeAnthropic(ok_message)
    p, _ = provider(fake)
    with pytest.raises(PrivacyViolation):
        egress_guard(p.destination, sensitive=True)
    ticket = sensitive_ticket_for("claude")
    with pytest.raises(PrivacyViolation):
        run(p.chat(ticket, CHAT))
    with pytest.raises(PrivacyViolation):
        run(collect(p, ticket, CHAT))
    with pytest.raises(PrivacyViolation):
        run(p.embeddings(ticket, {"input": "x"}))
    assert fake.requests == []


@pytest.mark.parametrize(
    "ticket",
    [
        egress_guard(cloud(name="other"), sensitive=False),
        EgressTicket("claude", False, object()),
    ],
)
def test_a_ticket_for_another_destination_or_a_forged_ticket_is_refused(
    ticket: EgressTicket,
) -> None:
    fake = FakeAnthropic(ok_message)
    p, _ = provider(fake)
    with pytest.raises(PrivacyViolation):
        run(p.chat(ticket, CHAT))
    with pytest.raises(PrivacyViolation):
        run(collect(p, ticket, CHAT))
    assert fake.requests == []


def test_a_sensitive_request_may_go_to_a_local_anthropic_compatible_server() -> None:
    fake = FakeAnthropic(ok_message)
    local = Destination(
        name="claude",
        provider="anthropic",
        model=MODEL,
        base_url="http://127.0.0.1:8080",
        locality="local",
    )
    p, _ = provider(fake, local)
    assert run(p.chat(sensitive_ticket_for("claude"), CHAT)).text == "Bonjour"
    assert str(fake.requests[0].url) == "http://127.0.0.1:8080/v1/messages"


# --- configuration -------------------------------------------------------------------


def test_embeddings_are_an_unsupported_endpoint_without_a_request() -> None:
    from llm_localfirst.errors import UnsupportedEndpoint

    fake = FakeAnthropic(ok_message)
    p, ticket = provider(fake)
    with pytest.raises(UnsupportedEndpoint, match="no embeddings endpoint"):
        run(p.embeddings(ticket, {"input": "x"}))
    assert fake.requests == []


def test_probe_makes_no_network_call() -> None:
    fake = FakeAnthropic(ok_message)
    p, _ = provider(fake)
    assert run(p.probe()) == (True, "not probed (cloud)")
    assert fake.requests == []


def authorization_sent(destination: Destination, **kwargs: Any) -> str | None:
    fake = FakeAnthropic(ok_message)
    p = AnthropicProvider(destination, http_client=fake.client, **kwargs)
    run(p.chat(egress_guard(destination, sensitive=False), CHAT))
    return fake.requests[0].headers.get("authorization")


def test_the_key_comes_from_the_argument_then_api_key_env_then_the_sdk_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sdk-key")
    monkeypatch.setenv("MY_CLAUDE_KEY", "env-key")
    dest = cloud(api_key_env="MY_CLAUDE_KEY")
    assert authorization_sent(dest, api_key="arg-key") == "Bearer arg-key"
    assert authorization_sent(dest) == "Bearer env-key"
    monkeypatch.delenv("MY_CLAUDE_KEY")
    assert authorization_sent(dest) == "Bearer sdk-key"


def test_a_local_destination_without_a_key_never_receives_the_cloud_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "cloud-secret")
    local = Destination(
        name="box",
        provider="anthropic",
        model=MODEL,
        base_url="http://127.0.0.1:8080",
        locality="local",
    )
    assert authorization_sent(local) is None


def test_a_cloud_destination_without_any_key_fails_over_without_a_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no SDK credential profile on disk
    fake = FakeAnthropic(ok_message)
    p = AnthropicProvider(cloud(api_key_env="UNSET_KEY_VAR"), http_client=fake.client)
    with pytest.raises(AttemptFailed) as info:
        run(p.chat(egress_guard(p.destination, sensitive=False), CHAT))
    assert (info.value.outcome, info.value.retryable) == ("error", True)
    assert "UNSET_KEY_VAR" in str(info.value)
    assert fake.requests == []


def test_a_broken_sdk_credentials_profile_is_an_attempt_failure_without_a_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "no-profiles"))
    fake = FakeAnthropic(ok_message)
    p = AnthropicProvider(cloud(), http_client=fake.client)
    with pytest.raises(AttemptFailed) as info:
        run(p.chat(egress_guard(p.destination, sensitive=False), CHAT))
    assert info.value.outcome == "error"
    assert "CredentialsError" in str(info.value)
    assert fake.requests == []


def test_the_base_url_comes_from_the_destination_else_the_sdk_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://gateway.example.com/anthropic")
    for dest, url in [
        (cloud(), "https://gateway.example.com/anthropic/v1/messages"),
        (cloud(base_url="https://eu.example.com"), "https://eu.example.com/v1/messages"),
    ]:
        fake = FakeAnthropic(ok_message)
        p, ticket = provider(fake, dest)
        run(p.chat(ticket, CHAT))
        assert str(fake.requests[0].url) == url


def test_timeouts_come_from_the_destination() -> None:
    fake = FakeAnthropic(ok_message)
    p, ticket = provider(fake, cloud(timeout=42.0, connect_timeout=1.5))
    run(p.chat(ticket, CHAT))
    timeout = fake.requests[0].extensions["timeout"]
    assert (timeout["connect"], timeout["read"]) == (1.5, 42.0)


def test_aclose_leaves_an_injected_http_client_open() -> None:
    fake = FakeAnthropic(ok_message)
    p, ticket = provider(fake)

    async def use_then_close() -> None:
        await p.chat(ticket, CHAT)
        await p.aclose()

    run(use_then_close())
    assert not fake.client.is_closed


def test_the_sdk_owned_client_talks_to_a_loopback_server_and_aclose_closes_it() -> None:
    with FakeUpstream(reply="Hello there") as upstream:
        dest = cloud(base_url=upstream.root_url)
        p = AnthropicProvider(dest, api_key="sk-test")
        ticket = egress_guard(dest, sensitive=False)

        async def chat_stream_close() -> tuple[str, str]:
            result = await p.chat(ticket, CHAT)
            chunks = [c async for c in p.stream_chat(ticket, CHAT)]
            (client,) = p._clients.values()
            await p.aclose()
            assert client.is_closed()
            text = "".join(
                c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
            )
            return result.text, text

        assert run(chat_stream_close()) == ("Hello there", "Hello there")
        assert [r.path for r in upstream.model_calls()] == ["/v1/messages"] * 2


def test_a_missing_sdk_raises_import_error_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(ImportError, match=r"pip install 'llm-localfirst\[anthropic\]'"):
        AnthropicProvider(cloud())


def test_importing_the_provider_modules_does_not_import_the_sdk() -> None:
    code = (
        "import sys, llm_localfirst.providers.anthropic, "
        "llm_localfirst.providers.anthropic_translate; "
        "assert 'anthropic' not in sys.modules, 'SDK imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
