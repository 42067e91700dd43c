"""Pure translation between OpenAI chat shapes and the Anthropic Messages API.

This module owns three conversions, all on plain JSON-shaped values:

* an OpenAI ``chat.completions`` request body -> keyword arguments for
  ``messages.create`` (:func:`to_messages_params`);
* an Anthropic ``Message`` -> an OpenAI ``chat.completion`` body (:func:`from_message`);
* Anthropic stream events -> OpenAI ``chat.completion.chunk`` dicts
  (:class:`StreamTranslator`).

It also shapes Anthropic error bodies as OpenAI error bodies. It never imports the
SDK, never performs I/O and never reads the clock (callers pass ``created``). A body
it cannot translate faithfully raises :class:`~llm_localfirst.errors.InvalidRequest`
naming the offending parameter; it never sends a silently altered conversation.

Request fields that are dropped, and why, are listed in :data:`IGNORED_FIELDS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequest

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "IGNORED_FIELDS",
    "StreamTranslator",
    "finish_reason_of",
    "from_message",
    "openai_error_body",
    "openai_usage",
    "status_for_error_type",
    "to_messages_params",
]

#: Anthropic requires ``max_tokens``; OpenAI bodies often omit it.
DEFAULT_MAX_TOKENS = 1024

#: OpenAI request fields that are accepted and not sent. ``temperature``, ``top_p``
#: (and ``top_k``) are here because API version 2026-10-21, which the anthropic 2.x
#: SDK sends, answers 400 to any sampling parameter, even at its default value.
IGNORED_FIELDS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "metadata",
        "modalities",
        "n",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "reasoning_effort",
        "seed",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "top_k",
        "top_logprobs",
        "top_p",
        "verbosity",
        "web_search_options",
    }
)

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


# --- request -------------------------------------------------------------------------


def to_messages_params(body: Mapping[str, Any], *, model: str) -> dict[str, Any]:
    """Translate an OpenAI chat body into ``messages.create`` keyword arguments.

    System and developer messages are joined into ``system``; tool results become
    user ``tool_result`` blocks; consecutive messages of one role are merged.

    Args:
        body: The OpenAI ``chat.completions`` request body.
        model: The Anthropic model id (the destination's, never the caller's).

    Returns:
        Keyword arguments for ``AsyncAnthropic.messages.create`` (without ``stream``).

    Raises:
        InvalidRequest: a message, part, tool or option that cannot be translated.
    """
    system, messages = _conversation(body.get("messages"))
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": _max_tokens(body),
        "messages": messages,
    }
    if system:
        params["system"] = system
    stop = body.get("stop")
    if isinstance(stop, str):
        params["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if stop:
            params["stop_sequences"] = list(stop)
    elif stop is not None:
        raise InvalidRequest("stop must be a string or a list of strings", param="stop")
    if body.get("tools"):
        params["tools"] = _tools(body["tools"])
    tool_choice = _tool_choice(
        body.get("tool_choice"), body.get("parallel_tool_calls"), has_tools="tools" in params
    )
    if tool_choice is not None and "tools" in params:  # no tools, nothing to choose from
        params["tool_choice"] = tool_choice
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        params["metadata"] = {"user_id": user}
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        params["output_config"] = {"format": output_format}
    return params


def _max_tokens(body: Mapping[str, Any]) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequest(f"{key} must be a non-negative integer", param=key)
        return value
    return DEFAULT_MAX_TOKENS


def _conversation(messages: Any) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise InvalidRequest("each message must be an object", param=where)
        role = message.get("role")
        if role in ("system", "developer"):
            text = _plain_text(message.get("content"), f"{where}.content")
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content")
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "tool":
            role, blocks = "user", [_tool_result(message, where)]
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", param=f"{where}.role")
        if not blocks:
            continue  # Anthropic rejects empty turns; an empty OpenAI turn carries nothing
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequest(
            "messages need at least one user or assistant message", param="messages"
        )
    for turn in turns:  # the shorthand for one text block, as people write it by hand
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    return "\n\n".join(system), turns


def _plain_text(content: Any, where: str) -> str:
    """Text of system, developer and tool content: a string or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise InvalidRequest("only text parts are supported here", param=f"{where}[{j}]")
            texts.append(str(part.get("text") or ""))
        return "".join(texts)
    raise InvalidRequest("content must be a string or a list of parts", param=where)


def _text_block(text: Any) -> list[dict[str, Any]]:
    # Anthropic rejects empty text blocks.
    return [{"type": "text", "text": text}] if isinstance(text, str) and text else []


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return _text_block(content)
    if not isinstance(content, list):
        raise InvalidRequest("content must be a string or a list of parts", param=where)
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            blocks.extend(_text_block(part.get("text")))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            blocks.append({"type": "image", "source": _image_source(url, here)})
        elif kind == "file":
            blocks.append(_document(part.get("file"), here))
        else:
            raise InvalidRequest(f"unsupported content part type {kind!r}", param=here)
    return blocks


def _image_source(url: Any, where: str) -> dict[str, Any]:
    if not isinstance(url, str):
        raise InvalidRequest("image_url.url must be a string", param=where)
    match = _DATA_URL.fullmatch(url)
    if match:
        media = match["media"].lower()
        if media not in _IMAGE_TYPES:
            raise InvalidRequest(
                f"unsupported image type {media!r}; use one of {', '.join(sorted(_IMAGE_TYPES))}",
                param=where,
            )
        return {"type": "base64", "media_type": media, "data": match["data"]}
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    raise InvalidRequest("image_url.url must be an http(s) URL or a base64 data: URL", param=where)


def _document(file: Any, where: str) -> dict[str, Any]:
    data = file.get("file_data") if isinstance(file, Mapping) else None
    match = _DATA_URL.fullmatch(data) if isinstance(data, str) else None
    if match is None or match["media"].lower() != "application/pdf":
        raise InvalidRequest(
            "only inline PDF files (file_data as a base64 data: URL) are "
            "supported; file ids are not",
            param=where,
        )
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": match["data"]},
    }
    if isinstance(file, Mapping) and isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _assistant_blocks(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if content is None or isinstance(content, str):
        blocks.extend(_text_block(content))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind not in ("text", "refusal"):
                raise InvalidRequest(
                    f"unsupported assistant content part {kind!r}", param=f"{where}.content[{j}]"
                )
            blocks.extend(_text_block(part.get(kind)))
    else:
        raise InvalidRequest(
            "content must be a string or a list of parts", param=f"{where}.content"
        )
    for k, call in enumerate(message.get("tool_calls") or ()):
        blocks.append(_tool_use(call, f"{where}.tool_calls[{k}]"))
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InvalidRequest("a tool call needs function.name", param=where)
    if not isinstance(call.get("id"), str) or not call["id"]:
        raise InvalidRequest("a tool call needs an id", param=f"{where}.id")
    arguments = function.get("arguments") or "{}"
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            raise InvalidRequest(
                "tool call arguments are not valid JSON", param=f"{where}.function.arguments"
            ) from None
    if not isinstance(arguments, dict):
        raise InvalidRequest(
            "tool call arguments must be a JSON object", param=f"{where}.function.arguments"
        )
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}


def _tool_result(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest("a tool message needs tool_call_id", param=f"{where}.tool_call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    text = _plain_text(message.get("content"), f"{where}.content")
    if text:
        block["content"] = text
    return block


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be a list", param="tools")
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            kind != "function"
            or not isinstance(function, Mapping)
            or not isinstance(function.get("name"), str)
        ):
            raise InvalidRequest(
                "only function tools with a name are supported", param=f"tools[{i}]"
            )
        spec: dict[str, Any] = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if isinstance(function.get("description"), str):
            spec["description"] = function["description"]
        if isinstance(function.get("strict"), bool):
            spec["strict"] = function["strict"]
        out.append(spec)
    return out


def _tool_choice(choice: Any, parallel: Any, *, has_tools: bool) -> dict[str, Any] | None:
    result: dict[str, Any]
    if choice is None:
        if not (has_tools and parallel is False):
            return None
        result = {"type": "auto"}
    elif choice in ("auto", "none"):
        result = {"type": choice}
    elif choice == "required":
        result = {"type": "any"}
    elif (
        isinstance(choice, Mapping)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), Mapping)
        and isinstance(choice["function"].get("name"), str)
    ):
        result = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequest(
            "tool_choice must be 'auto', 'none', 'required' or a named function",
            param="tool_choice",
        )
    if parallel is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result


def _output_format(response_format: Any) -> dict[str, Any] | None:
    """``json_schema`` maps onto structured outputs; ``text`` and ``json_object`` are dropped."""
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        raise InvalidRequest(
            "response_format.json_schema.schema must be an object", param="response_format"
        )
    return {"type": "json_schema", "schema": dict(schema)}


# --- response ------------------------------------------------------------------------


def finish_reason_of(stop_reason: Any) -> str | None:
    """The OpenAI ``finish_reason`` for an Anthropic ``stop_reason`` (None stays None)."""
    if stop_reason is None:
        return None
    return _FINISH_REASONS.get(str(stop_reason), "stop")


def openai_usage(usage: Any) -> dict[str, Any]:
    """OpenAI ``usage`` from Anthropic usage.

    Anthropic's ``input_tokens`` exclude prompt-cache reads and writes; OpenAI's
    ``prompt_tokens`` include cached tokens, so both cache counts are added in and
    reads are reported again as ``prompt_tokens_details.cached_tokens``.
    """
    usage = usage if isinstance(usage, Mapping) else {}
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    prompt = (
        int(usage.get("input_tokens") or 0)
        + cache_read
        + int(usage.get("cache_creation_input_tokens") or 0)
    )
    completion = int(usage.get("output_tokens") or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cache_read:
        out["prompt_tokens_details"] = {"cached_tokens": cache_read}
    return out


def _arguments(value: Any) -> str:
    return json.dumps(value if value is not None else {}, ensure_ascii=False, separators=(",", ":"))


def from_message(message: Mapping[str, Any], *, created: int) -> dict[str, Any]:
    """Translate an Anthropic ``Message`` (JSON shape) into an OpenAI ``chat.completion``.

    Text blocks are joined into ``content``; ``tool_use`` blocks become ``tool_calls``.
    Thinking, redacted-thinking and server-tool blocks are dropped.

    Args:
        message: The Messages API response body.
        created: Unix seconds for the ``created`` field.
    """
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            function = {"name": block.get("name"), "arguments": _arguments(block.get("input"))}
            tool_calls.append({"id": block.get("id"), "type": "function", "function": function})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": finish_reason_of(message.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(message.get("usage")),
    }


class StreamTranslator:
    """Turns Anthropic stream events into OpenAI ``chat.completion.chunk`` dicts.

    Feed each event (JSON shape) to :meth:`feed` and emit what it returns. The
    first chunk carries ``role: assistant``; it is held back until the first
    chunk with content, tool call or finish reason, so that an error event right
    after ``message_start`` still arrives before anything was emitted and the
    caller can fail over. ``message_delta`` yields the finish chunk and
    ``message_stop`` a usage chunk with empty ``choices``.

    Args:
        created: Unix seconds for every chunk's ``created`` field.

    Attributes:
        done: True once ``message_stop`` was seen.
        finish_reason: The OpenAI finish reason, once known.
    """

    def __init__(self, *, created: int) -> None:
        self.created = created
        self.done = False
        self.finish_reason: str | None = None
        self._id = ""
        self._model = ""
        self._role_sent = False
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index
        self._usage: dict[str, Any] = {}

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Translate one event; returns zero or more chunks, in order."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._id = str(message.get("id") or "")
            self._model = str(message.get("model") or "")
            self._usage.update(message.get("usage") or {})
            return []
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            usage = event.get("usage") or {}
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            if stop_reason is None:
                return []
            self.finish_reason = finish_reason_of(stop_reason)
            return self._emit({}, finish_reason=self.finish_reason)
        if kind == "message_stop":
            self.done = True
            return self._emit(None)
        return []  # content_block_stop, ping and unknown events carry nothing for OpenAI

    def _block_start(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            position = len(self._tool_index)
            self._tool_index[int(event.get("index") or 0)] = position
            return self._emit(
                {
                    "tool_calls": [
                        {
                            "index": position,
                            "id": block.get("id"),
                            "type": "function",
                            "function": {"name": block.get("name"), "arguments": ""},
                        }
                    ]
                }
            )
        if block.get("type") == "text" and block.get("text"):
            return self._emit({"content": block["text"]})
        return []

    def _block_delta(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return self._emit({"content": delta["text"]})
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            position = self._tool_index.get(int(event.get("index") or 0))
            if position is not None:
                return self._emit(
                    {
                        "tool_calls": [
                            {"index": position, "function": {"arguments": delta["partial_json"]}}
                        ]
                    }
                )
        return []  # thinking, signature and citation deltas have no OpenAI form

    def _chunk(
        self, delta: dict[str, Any] | None, finish_reason: str | None = None
    ) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self._model,
        }
        if delta is None:
            chunk["choices"] = []
            chunk["usage"] = openai_usage(self._usage)
        else:
            chunk["choices"] = [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ]
        return chunk

    def _emit(
        self, delta: dict[str, Any] | None, finish_reason: str | None = None
    ) -> list[dict[str, Any]]:
        chunks = []
        if not self._role_sent:
            self._role_sent = True
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        chunks.append(self._chunk(delta, finish_reason))
        return chunks


# --- errors --------------------------------------------------------------------------


def status_for_error_type(error_type: Any) -> int:
    """The HTTP status Anthropic uses for an error ``type`` (500 when unknown).

    Needed for errors that arrive as stream events, after a 200 response.
    """
    return _ERROR_STATUS.get(str(error_type), 500)


def openai_error_body(body: Any, *, message: str) -> dict[str, Any]:
    """Shape an Anthropic error body (``{"type": "error", "error": {...}}``) as OpenAI's.

    Args:
        body: The decoded Anthropic error body, or anything else the upstream sent.
        message: The message to use when the body has none.
    """
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, Mapping) else error.get("code")
    text = error.get("message")
    return {
        "error": {
            "message": text[:500] if isinstance(text, str) else message,
            "type": str(error.get("type") or "api_error"),
            "param": None,
            "code": code if isinstance(code, str) else None,
        }
    }
