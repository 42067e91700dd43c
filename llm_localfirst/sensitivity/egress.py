"""What leaves: every string of the body a request will send upstream, and what cannot be read.

This module owns the walk over an outbound JSON body (any endpoint, any face):
it yields every string in it, object keys included, so the detectors read the
``user`` field, ``metadata``, ``stop``, ``prediction``, tool descriptions and
parameter schemas, ``response_format``, message ``name`` and ``refusal`` parts,
tool-call ``arguments`` given as objects, and anything a future API adds. It
also names the values the detectors cannot read: token-id arrays, bare numbers
in content, and image, audio and file parts, which make a request sensitive
unless the policy allows them.

It reads structure only. It must never keep, log or return more than the
strings it was given (callers scan them and drop them), and never raise on odd
shapes: any JSON value is walked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["UNREADABLE_KINDS", "Outbound", "walk"]

#: The reasons a value is unreadable (``unreadable:<kind>``).
UNREADABLE_KINDS = ("audio", "file", "image", "number", "tokens")

# Content-part types (OpenAI chat and Responses, Anthropic) whose payload is not text.
_MEDIA_TYPES = {
    "image_url": "image",
    "input_image": "image",
    "image": "image",
    "input_audio": "audio",
    "audio": "audio",
    "file": "file",
    "input_file": "file",
    "document": "file",
}
# Keys whose object value is a media payload even without a "type" next to it.
_MEDIA_KEYS = {"image_url": "image", "input_audio": "audio", "file_data": "file"}
# Where a bare number stands for text (a content part, a part's text).
_TEXT_KEYS = frozenset({"content", "text"})
# Top-level fields of completions and embeddings that may hold token ids.
_TOKEN_FIELDS = frozenset({"prompt", "input"})
# Strings that are the wire format's own vocabulary: equal to one of these, a key or
# value cannot carry personal data, so scanning it is skipped (a pure speed-up).
_VOCABULARY = frozenset(
    {
        "role",
        "content",
        "type",
        "text",
        "messages",
        "model",
        "name",
        "system",
        "user",
        "assistant",
        "tool",
        "tools",
        "developer",
        "function",
        "tool_calls",
        "id",
        "arguments",
        "parameters",
        "description",
        "properties",
        "required",
        "object",
        "string",
        "integer",
        "number",
        "boolean",
        "array",
        "items",
        "auto",
        "none",
        "input",
        "output",
        "message",
        "input_text",
        "output_text",
        "json_schema",
        "schema",
        "strict",
        "stream",
        "temperature",
        "max_tokens",
        "tool_choice",
        "response_format",
        "metadata",
        "stop",
        "prompt",
        "suffix",
        "instructions",
        "refusal",
        "tool_call_id",
        "function_call",
        "enum",
        "additionalProperties",
        "top_p",
        "n",
        "seed",
    }
)


class Outbound:
    """The strings of an outbound body and the kinds of value in it no detector can read.

    Attributes:
        strings: Every string in the body, keys included, in document order (the
            wire vocabulary left out).
        unreadable: The kinds of unreadable value found (see `UNREADABLE_KINDS`).
    """

    __slots__ = ("strings", "unreadable")

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.unreadable: set[str] = set()


def walk(body: Any) -> Outbound:
    """Collect the strings of ``body`` and note what cannot be read.

    Numbers standing for text (a bare number in a content array, a part whose
    ``text`` is a number) are unreadable and are also given to the detectors as
    their decimal text, so a card number sent as a JSON number is still found.

    Args:
        body: A JSON value (normally the object sent upstream).

    Returns:
        The body's strings and unreadable kinds.
    """
    out = Outbound()
    strings = out.strings
    unreadable = out.unreadable
    if isinstance(body, Mapping):
        for name in _TOKEN_FIELDS:
            if _holds_tokens(body.get(name)):
                unreadable.add("tokens")
    # Iterative, so a deeply nested body cannot exhaust the interpreter's stack.
    stack: list[tuple[Any, str | None]] = [(body, None)]
    pop, push = stack.pop, stack.append
    while stack:
        value, parent = pop()
        if isinstance(value, str):
            if value not in _VOCABULARY:
                strings.append(value)
        elif isinstance(value, Mapping):
            kind = value.get("type")
            if isinstance(kind, str) and kind in _MEDIA_TYPES:
                unreadable.add(_MEDIA_TYPES[kind])
            for key, item in value.items():
                if isinstance(key, str):
                    if key not in _VOCABULARY:
                        strings.append(key)
                    if key in _MEDIA_KEYS and isinstance(item, (Mapping, str)):
                        unreadable.add(_MEDIA_KEYS[key])
                else:
                    strings.append(str(key))
                if isinstance(item, (str, Mapping, list, tuple)):
                    push((item, key if isinstance(key, str) else None))
                elif key in _TEXT_KEYS and _is_number(item):
                    unreadable.add("number")
                    strings.append(str(item))
        elif isinstance(value, (list, tuple)):
            text_list = parent in _TEXT_KEYS
            for item in value:
                if isinstance(item, (str, Mapping, list, tuple)):
                    push((item, parent))
                elif text_list and _is_number(item):
                    unreadable.add("number")
                    strings.append(str(item))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _holds_tokens(value: Any) -> bool:
    """Token ids: an array of integers, or an array holding such arrays."""
    if not isinstance(value, list) or not value:
        return False
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            return True
        if isinstance(item, list) and any(
            isinstance(t, int) and not isinstance(t, bool) for t in item
        ):
            return True
    return False
