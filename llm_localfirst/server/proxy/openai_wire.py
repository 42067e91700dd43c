"""The OpenAI wire format of the proxy: parsing and validating bodies, and the one error map.

This module owns what the proxy accepts (JSON bodies of the chat, completions,
embeddings and responses endpoints, and the ``x-lf-*`` routing headers) and the
single place where an exception becomes an OpenAI-shaped error
(``{"error": {"message", "type", "param", "code"}}``) with an HTTP status.

It must never echo prompt text in an error, never put a header value it has not
validated into anything the proxy stores or sends back, and never do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...errors import (
    BudgetExceeded,
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    ModelNotAllowed,
    PolicyError,
    PrivacyViolation,
    UnsupportedEndpoint,
    UpstreamError,
    UpstreamTimeout,
    UsageError,
)
from ...request import MAX_TAGS, TAG_PATTERN, Kind, Message, check_content_parts
from ..auth import ForbiddenOrigin, HeadersTooLarge, MisdirectedRequest, UnsupportedMediaType

__all__ = [
    "NO_RETRY_HEADER",
    "BodyTooLarge",
    "ParsedCall",
    "RoutingInput",
    "Unauthorized",
    "UnsupportedEndpoint",
    "error_payload",
    "load_json",
    "parse_chat",
    "parse_completions",
    "parse_embeddings",
    "parse_responses",
    "routing_input",
    "should_retry",
]

#: Headers never copied into ``Request.headers`` (rules cannot match on secrets).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}
)
MAX_AB_KEY = 256
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

# Body fields the proxy itself interprets; everything else passes through untouched.
_CHAT_OWN = frozenset({"model", "messages", "stream", "max_tokens", "temperature"})


class BodyTooLarge(InvalidRequest):
    """The request body is over ``LF_MAX_BODY_BYTES``.

    Attributes:
        limit: The configured limit in bytes.
    """

    code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"request body is larger than the limit of {limit} bytes (LF_MAX_BODY_BYTES)"
        )
        self.limit = limit


class Unauthorized(UsageError):
    """A missing or wrong client key (``LF_PROXY_KEYS``) or admin token. Never holds the key."""

    code = "invalid_api_key"


# Not frozen: a frozen dataclass pays an object.__setattr__ per field, on every request.
@dataclass(slots=True)
class RoutingInput:
    """What the ``x-lf-*`` headers (and the body's ``user``) say about routing.

    Attributes:
        kind: ``x-lf-kind`` (``auto`` when absent or invalid).
        tags: ``x-lf-tags``, validated.
        ab_key: ``x-lf-ab-key`` (the body's ``user`` is the fallback).
        headers: Every other request header, lower-cased, secrets removed.
        authorization: The ``Authorization`` header, kept apart so it is never stored.
        content_length: The declared body length, if any.
        problem: The first malformed routing header, raised only after the client
            key has been checked (an unauthenticated caller learns nothing else).
        session: ``x-lf-session``: a conversation id that stays sensitive once marked.
    """

    kind: str = "auto"
    tags: tuple[str, ...] = ()
    ab_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    authorization: bytes | None = None
    content_length: int | None = None
    problem: InvalidRequest | None = None
    session: str | None = None


def routing_input(raw_headers: Iterable[tuple[bytes, bytes]]) -> RoutingInput:
    """Read the routing headers of an ASGI request (never raises; see ``problem``)."""
    headers: dict[str, str] = {}
    authorization: bytes | None = None
    for raw_name, raw_value in raw_headers:
        if raw_name == b"authorization":
            authorization = raw_value
            continue
        name = raw_name.decode("latin-1")
        if name not in SECRET_HEADERS:
            value = raw_value.decode("latin-1")
            # A repeated header is one comma-joined list (RFC 9110): `x-lf-sensitive: true`
            # then `x-lf-sensitive: false` reads "true, false", which is sensitive.
            previous = headers.get(name)
            headers[name] = value if previous is None else f"{previous}, {value}"
    try:
        length, kind, tags, ab_key = _routing_fields(headers)
        session = headers.get("x-lf-session")
        if session is not None:
            _check_ab_key(session, "x-lf-session")
            if "," in session:  # repeated: two sessions would match neither one's taint
                raise InvalidRequest(
                    "x-lf-session must be one value without commas", param="x-lf-session"
                )
    except InvalidRequest as exc:
        return RoutingInput(headers=headers, authorization=authorization, problem=exc)
    return RoutingInput(
        kind=kind,
        tags=tags,
        ab_key=ab_key,
        headers=headers,
        authorization=authorization,
        content_length=length,
        session=session,
    )


def _routing_fields(
    headers: Mapping[str, str],
) -> tuple[int | None, str, tuple[str, ...], str | None]:
    length: int | None = None
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise InvalidRequest(
                "content-length is not an integer", param="content-length"
            ) from None
    kind = headers.get("x-lf-kind", "auto")
    if kind != "auto":
        try:
            kind = Kind.parse(kind).value
        except InvalidRequest:
            raise InvalidRequest(
                "x-lf-kind must be one of: bulk, reason, auto", param="x-lf-kind"
            ) from None
    tags: tuple[str, ...] = ()
    raw_tags = headers.get("x-lf-tags")
    if raw_tags:
        tags = tuple(t.strip().lower() for t in raw_tags.split(",") if t.strip())
        if len(tags) > MAX_TAGS:
            raise InvalidRequest(f"x-lf-tags holds more than {MAX_TAGS} tags", param="x-lf-tags")
        for tag in tags:
            if not TAG_PATTERN.fullmatch(tag):
                raise InvalidRequest(
                    "x-lf-tags: each tag is 1-64 characters of a-z, 0-9, '.', '_', ':', '/', '-'",
                    param="x-lf-tags",
                )
    ab_key = headers.get("x-lf-ab-key")
    if ab_key is not None:
        _check_ab_key(ab_key, "x-lf-ab-key")
    return length, kind, tags, ab_key


def _check_ab_key(value: str, param: str) -> None:
    if not value or len(value) > MAX_AB_KEY or not value.isprintable():
        raise InvalidRequest(f"{param} must be 1-{MAX_AB_KEY} printable characters", param=param)


# --------------------------------------------------------------------------- bodies


@dataclass(slots=True)
class ParsedCall:
    """One parsed request body, ready to become a ``Request``.

    Attributes:
        endpoint: The audit endpoint (``chat``, ``stream``, ``completions``,
            ``embeddings``, ``responses``).
        model: ``auto`` or the requested allowlist name.
        messages: The messages (for non-chat endpoints: their texts, for the audit
            hash and taint digests; the scan reads the whole outbound body).
        body: The client's body (for non-chat endpoints: what is forwarded, with
            ``model`` replaced by the provider, and what the scan reads).
        extra: Chat pass-through fields (tools, tool_choice, stop, response_format...).
        stream: The client asked for server-sent events.
        include_usage: The client asked for the final usage chunk.
        max_tokens: ``max_tokens`` when given.
        temperature: ``temperature`` when given.
        user: The body's ``user`` (an A/B key when no header gives one).
        opaque: The input holds token ids the detectors cannot read (the scan counts
            them as ``unreadable:tokens``).
    """

    endpoint: str
    model: str
    messages: tuple[Message, ...]
    body: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    user: str | None = None
    opaque: bool = False


def load_json(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object.

    Raises:
        InvalidRequest: not UTF-8, not JSON, or not an object.
    """
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "utf-8" in str(exc).lower() or "surrogate" in str(exc).lower():
            raise InvalidRequest("the request body is not valid UTF-8 JSON") from None
        raise InvalidRequest(f"the request body is not valid JSON ({_position(exc)})") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def _position(exc: orjson.JSONDecodeError) -> str:
    return f"line {exc.lineno} column {exc.colno}"


def model_of(body: Mapping[str, Any]) -> str:
    """The ``model`` field (``auto`` when absent).

    Raises:
        InvalidRequest: not a string.
    """
    model = body.get("model", "auto")
    if not isinstance(model, str):
        raise InvalidRequest("model must be a string: 'auto' or an allowlisted name", param="model")
    return model.strip() or "auto"


def _bool(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a boolean", param=name)
    return value


def _opt_int(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"{name} must be a positive integer", param=name)
    return value


def _opt_number(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(f"{name} must be a number", param=name)
    return float(value)


def _user(body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    if user is None:
        return None
    if not isinstance(user, str):
        raise InvalidRequest("user must be a string", param="user")
    return user[:MAX_AB_KEY] if user else None


def _messages(value: Any) -> tuple[Message, ...]:
    if value is None:
        raise InvalidRequest("messages is required: an array of chat messages", param="messages")
    if not isinstance(value, list) or not value:
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidRequest(
                f"messages[{i}].role must be one of: {', '.join(sorted(_ROLES))}",
                param=f"messages[{i}].role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise InvalidRequest(
                f"messages[{i}].content must be a string, an array of content parts or null",
                param=f"messages[{i}].content",
            )
        check_content_parts(content, f"messages[{i}]")
    return tuple(value)


def parse_chat(body: dict[str, Any]) -> ParsedCall:
    """Validate a ``/v1/chat/completions`` body.

    Raises:
        InvalidRequest: a missing or malformed field.
    """
    model = model_of(body)
    messages = _messages(body.get("messages"))
    stream = _bool(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("stream_options must be an object", param="stream_options")
    include_usage = bool(options and options.get("include_usage") is True)
    extra = {k: v for k, v in body.items() if k not in _CHAT_OWN}
    return ParsedCall(
        endpoint="stream" if stream else "chat",
        model=model,
        messages=messages,
        body=body,
        extra=extra,
        stream=stream,
        include_usage=include_usage,
        max_tokens=_opt_int(body, "max_tokens"),
        temperature=_opt_number(body, "temperature"),
        user=_user(body),
    )


def _texts_or_tokens(value: Any, name: str) -> tuple[list[str], bool]:
    """Strings of a ``prompt``/``input`` field, and whether it held opaque token ids."""
    if isinstance(value, str):
        return [value], False
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return list(value), False
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [], True
        if all(
            isinstance(v, list)
            and v
            and all(isinstance(t, int) and not isinstance(t, bool) for t in v)
            for v in value
        ):
            return [], True
    raise InvalidRequest(
        f"{name} must be a string, an array of strings or an array of token arrays", param=name
    )


def parse_completions(body: dict[str, Any]) -> ParsedCall:
    """Validate a ``/v1/completions`` body.

    Raises:
        InvalidRequest: a missing or malformed field.
    """
    model = model_of(body)
    if "prompt" not in body:
        raise InvalidRequest("prompt is required", param="prompt")
    texts, opaque = _texts_or_tokens(body["prompt"], "prompt")
    stream = _bool(body, "stream")
    forward = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    _opt_int(body, "max_tokens")
    _opt_number(body, "temperature")
    return ParsedCall(
        endpoint="completions",
        model=model,
        messages=tuple({"role": "user", "content": t} for t in texts),
        body=forward,
        stream=stream,
        user=_user(body),
        opaque=opaque,
    )


def parse_embeddings(body: dict[str, Any]) -> ParsedCall:
    """Validate a ``/v1/embeddings`` body.

    Raises:
        InvalidRequest: a missing or malformed field.
    """
    model = model_of(body)
    if "input" not in body:
        raise InvalidRequest("input is required", param="input")
    texts, opaque = _texts_or_tokens(body["input"], "input")
    return ParsedCall(
        endpoint="embeddings",
        model=model,
        messages=tuple({"role": "user", "content": t} for t in texts),
        body=body,
        user=_user(body),
        opaque=opaque,
    )


def _response_item_messages(items: Sequence[Any]) -> list[Message]:
    """Every piece of text in a Responses ``input`` array, as messages for the detectors."""
    out: list[Message] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRequest(f"input[{i}] must be an object", param=f"input[{i}]")
        texts: list[str] = []
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
        for key in ("output", "arguments", "text"):
            if isinstance(item.get(key), str):
                texts.append(item[key])
        role = item.get("role")
        if role is not None and not isinstance(role, str):
            raise InvalidRequest(f"input[{i}].role must be a string", param=f"input[{i}].role")
        out.append({"role": role if role in _ROLES else "user", "content": "\n".join(texts)})
    return out


def parse_responses(body: dict[str, Any]) -> ParsedCall:
    """Validate a ``/v1/responses`` body.

    Raises:
        InvalidRequest: a missing or malformed field, or ``stream: true``.
    """
    model = model_of(body)
    if _bool(body, "stream"):
        raise InvalidRequest(
            "stream is not supported on /v1/responses by this proxy; "
            "use /v1/chat/completions to stream",
            param="stream",
        )
    raw = body.get("input")
    messages: list[Message] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("instructions must be a string", param="instructions")
        messages.append({"role": "system", "content": instructions})
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list) and raw:
        messages += _response_item_messages(raw)
    else:
        raise InvalidRequest(
            "input is required: a string or an array of input items", param="input"
        )
    return ParsedCall(
        endpoint="responses", model=model, messages=tuple(messages), body=body, user=_user(body)
    )


# --------------------------------------------------------------------------- errors

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    421: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
}


def error_body(
    message: str, *, status: int, code: str | None, param: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An OpenAI-shaped error object."""
    error: dict[str, Any] = {
        "message": message,
        "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "param": param,
        "code": code,
    }
    error.update(extra)
    return {"error": error}


def _upstream(exc: UpstreamError) -> tuple[int, dict[str, Any]]:
    status = exc.status
    body = exc.body
    if status is not None and 400 <= status < 500 and status != 429 and body is not None:
        inner = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(inner, Mapping):
            message = str(inner.get("message") or exc.message)
            return status, {
                "error": {
                    "message": message,
                    "type": inner.get("type") or _TYPES.get(status),
                    "param": inner.get("param"),
                    "code": inner.get("code"),
                }
            }
    if status == 429:
        return 429, error_body(exc.message, status=429, code="rate_limit_exceeded")
    if isinstance(exc, UpstreamTimeout):
        return 504, error_body(exc.message, status=504, code=exc.code)
    return 502, error_body(exc.message, status=502, code=exc.code)


def error_payload(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The one map from an exception to ``(HTTP status, OpenAI error body)``.

    Unknown exceptions become a 500 whose message names only the exception class,
    so nothing of the request leaks.
    """
    if isinstance(
        exc, (MisdirectedRequest, ForbiddenOrigin, HeadersTooLarge, UnsupportedMediaType)
    ):
        return exc.status, error_body(exc.message, status=exc.status, code=exc.code)
    if isinstance(exc, BodyTooLarge):
        return 413, error_body(exc.message, status=413, code=exc.code)
    if isinstance(exc, Unauthorized):
        return 401, error_body(exc.message, status=401, code=exc.code)
    if isinstance(exc, ModelNotAllowed):
        return 404, error_body(exc.message, status=404, code="model_not_found", param="model")
    if isinstance(exc, InvalidRequest):
        return 400, error_body(exc.message, status=400, code=exc.code, param=exc.param)
    if isinstance(exc, PolicyError):
        return 400, error_body(str(exc), status=400, code=exc.code, problems=list(exc.problems))
    if isinstance(exc, UsageError):
        return 400, error_body(exc.message, status=400, code=exc.code)
    if isinstance(exc, PrivacyViolation):
        return 403, error_body(exc.message, status=403, code=exc.code)
    if isinstance(exc, LocalUnavailable):
        return 503, error_body(exc.message, status=503, code=exc.code)
    if isinstance(exc, BudgetExceeded):
        return 429, error_body(exc.message, status=429, code=exc.code)
    if isinstance(exc, UpstreamError):
        return _upstream(exc)
    if isinstance(exc, LocalFirstError):
        return 500, error_body(exc.message, status=500, code=exc.code)
    return 500, error_body(
        f"internal error ({type(exc).__name__})", status=500, code="internal_error"
    )


#: The header the OpenAI SDKs obey before their own retry rule (which retries 408, 409,
#: 429 and every 5xx twice): sent on answers that a retry would only repeat.
NO_RETRY_HEADER = (b"x-should-retry", b"false")
_RETRYABLE_4XX = frozenset({408, 409, 429})


def should_retry(exc: BaseException) -> bool:
    """Whether sending the same request again could succeed.

    No for refusals (privacy, fail-closed, budget, allowlist, bad input, bad key) and
    for misconfiguration (every candidate lacks its API key); yes for upstream
    failures that may pass (connect errors, timeouts, 5xx, rate limits).
    """
    if isinstance(exc, UsageError | PrivacyViolation | LocalUnavailable):
        return False
    if isinstance(exc, LocalFirstError) and exc.code == "budget_exceeded":
        return False  # a spent budget stays spent until its window turns
    if isinstance(exc, UpstreamError):
        if not exc.retryable:
            return False
        return exc.status is None or not 400 <= exc.status < 500 or exc.status in _RETRYABLE_4XX
    return True


def dumps(data: Any) -> bytes:
    """Serialise a response body (orjson: the proxy's one JSON encoder)."""
    return orjson.dumps(data)
