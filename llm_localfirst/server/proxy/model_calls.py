"""The ``/v1`` model endpoints as raw ASGI handlers: admit, route, answer in JSON or SSE.

This module owns one request's way through the proxy: check the client key,
read the body (counting bytes against ``LF_MAX_BODY_BYTES``), parse and validate
it once, build the ``Request``, then hand it to ``router.lifecycle.call`` (JSON
answers) or ``router.lifecycle.stream`` (server-sent events). Failover happens inside
the lifecycle before the first byte; after it, a failure ends the stream with an
error event. A client that disconnects mid-stream cancels the upstream request.

It must never answer a model request without an audit row: refusals before the
``Request`` exists are recorded with ``router.lifecycle.reject``, everything after
by the lifecycle itself. It never logs request content.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from starlette.types import Message, Receive, Scope, Send

from ...errors import LocalFirstError, UsageError
from ...providers.base import ChatResult, EgressTicket, Provider
from ...request import Decision, Request
from ...router import Router
from ..auth import BearerTokens, RequestGuard, bearer_token, require_json
from .metrics import ProxyMetrics, RequestClock
from .openai_wire import (
    NO_RETRY_HEADER,
    BodyTooLarge,
    ParsedCall,
    RoutingInput,
    Unauthorized,
    UnsupportedEndpoint,
    dumps,
    error_payload,
    load_json,
    routing_input,
    should_retry,
)

__all__ = [
    "JSON_HEADER",
    "ClientDisconnected",
    "ClientKeys",
    "Handler",
    "ModelCalls",
    "Parser",
    "decision_headers",
    "send_bytes",
    "send_error",
]

log = logging.getLogger("llm_localfirst.proxy")

Parser = Callable[[dict[str, Any]], ParsedCall]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_HEADER = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_DONE = b"data: [DONE]\n\n"
_UPSTREAM_PATHS = {
    "completions": "/completions",
    "embeddings": "/embeddings",
    "responses": "/responses",
}
_NO_KEY = (
    "missing or invalid client key: send 'Authorization: Bearer <key>' with one of LF_PROXY_KEYS"
)


class ClientDisconnected(Exception):
    """The client disconnected while its request body was being read."""


def decision_headers(decision: Decision, audit_id: str) -> list[tuple[bytes, bytes]]:
    """The ``x-lf-*`` response headers naming where a request went."""
    # Destination names match registry.NAME_PATTERN (ASCII, no separators): header-safe.
    headers = [
        (b"x-lf-destination", decision.destination.encode("ascii")),
        (b"x-lf-decision-id", audit_id.encode("ascii")),
        (b"x-lf-fell-back", b"true" if decision.fell_back else b"false"),
        (b"x-lf-locality", decision.target.encode("ascii")),
    ]
    if decision.classifier_ms is not None:  # the opt-in classifier ran (or failed closed)
        headers += [
            (b"x-lf-classifier", (decision.classifier_label or "none").encode("ascii", "replace")),
            (b"x-lf-classifier-ms", f"{decision.classifier_ms:g}".encode("ascii")),
            (b"x-lf-classifier-cached", b"true" if decision.classifier_cached else b"false"),
        ]
    if decision.budget is not None:
        headers.append((b"x-lf-budget", decision.budget.encode("ascii", "replace")))
    return headers


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """Send a complete response with a content-length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, exc: BaseException) -> None:
    """Answer with the OpenAI-shaped error of ``exc`` (and its decision id, if audited)."""
    status, payload = error_payload(exc)
    headers = [JSON_HEADER]
    decision_id = getattr(exc, "decision_id", None)
    if decision_id:
        headers.append((b"x-lf-decision-id", decision_id.encode("ascii")))
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if not should_retry(exc):
        headers.append(NO_RETRY_HEADER)
    await send_bytes(send, status, dumps(payload), headers)


def _result_of(endpoint: str, data: Mapping[str, Any]) -> ChatResult:
    """Wrap a non-chat answer so the router records its token counts."""
    usage = data.get("usage")
    tokens_in = tokens_out = 0
    if isinstance(usage, Mapping):
        tokens_in = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
        tokens_out = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    text = ""
    if endpoint == "completions":
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            text = str(choices[0].get("text") or "")
    return ChatResult(data, text, None, tokens_in, tokens_out)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def log_internal(where: str, exc: BaseException) -> None:
    """Log an unexpected error without its message (it could quote the request)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("internal error in %s (%s)\n%s", where, type(exc).__name__, frames)


class ClientKeys:
    """The client keys of ``LF_PROXY_KEYS``; with none configured every caller is let in.

    Args:
        keys: The accepted keys.
        names: Their names (``LF_PROXY_KEYS`` ``name:key``), in the same order.
    """

    def __init__(self, keys: tuple[str, ...], names: tuple[str, ...] = ()) -> None:
        self._tokens = BearerTokens(keys)
        self._named = tuple(zip((k.encode() for k in keys), names, strict=False))

    def name_of(self, header: bytes | None) -> str | None:
        """The name of the key an ``Authorization`` header carries (compared in constant time)."""
        if not self._named:
            return None
        given = bearer_token(header) or b""
        found: str | None = None
        for key, name in self._named:  # compare with every key: timing does not tell which
            if hmac.compare_digest(given, key) and given:
                found = name
        return found

    def authorized(self, header: bytes | None) -> bool:
        """Whether an ``Authorization`` header carries one of the keys (constant time)."""
        return self._tokens.allows(header)

    def check(self, scope: Scope) -> None:
        """Raise unless the request carries a client key.

        Raises:
            Unauthorized: no key, or not one of ``LF_PROXY_KEYS``.
        """
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if not self.authorized(header):
            raise Unauthorized(_NO_KEY)


class ModelCalls:
    """The handlers of the model endpoints, over one router.

    Args:
        router: Decides, dispatches and audits every request.
        metrics: Timed per request; fed by the router's listener.
        keys: Client keys.
        max_body: Largest request body in bytes.
        guard: Host, Origin and header-size checks (none: every request passes them).
    """

    def __init__(
        self,
        router: Router,
        metrics: ProxyMetrics,
        *,
        keys: ClientKeys,
        max_body: int,
        guard: RequestGuard | None = None,
    ) -> None:
        self.router = router
        self.metrics = metrics
        self._keys = keys
        self._max_body = max_body
        self._guard = guard

    def handler(self, parser: Parser, endpoint: str) -> Handler:
        """The ASGI handler of one model endpoint (``parser`` validates its body)."""

        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            metrics = self.metrics
            clock = metrics.start()
            admitted: _Admitted | None = None
            try:
                admitted = await self._admit(scope, receive, send, parser, endpoint)
                if admitted is not None:
                    await self._serve(admitted, receive, send, clock)
            except Exception as exc:
                log_internal(f"{scope['method']} {scope['path']}", exc)
                await send_error(send, exc)
            finally:
                metrics.finish(admitted.call.endpoint if admitted else endpoint, clock)

        return handle

    async def _admit(
        self, scope: Scope, receive: Receive, send: Send, parser: Parser, endpoint: str
    ) -> _Admitted | None:
        """Authenticate, read, parse and build; a refusal is audited and answered here."""
        info: RoutingInput | None = None
        body: dict[str, Any] | None = None
        try:
            if self._guard is not None:  # browsers first: a foreign page learns nothing
                self._guard.check(scope["headers"])
            info = routing_input(scope["headers"])
            if not self._keys.authorized(info.authorization):
                raise Unauthorized(_NO_KEY)
            if info.problem is not None:
                raise info.problem
            require_json(info.headers.get("content-type", "").encode("latin-1"))
            body = load_json(await self._read_body(receive, info.content_length))
            call = parser(body)
            return _Admitted(call, self._build(call, info))
        except UsageError as exc:
            model = body.get("model") if body is not None else None
            self.router.lifecycle.reject(
                face="proxy",
                endpoint=endpoint,
                error=exc,
                kind=info.kind if info is not None and info.problem is None else "auto",
                model=model if isinstance(model, str) else "auto",
            )
            await send_error(send, exc)
        except ClientDisconnected as exc:
            self.router.lifecycle.reject(face="proxy", endpoint=endpoint, error=exc)
        return None

    def _build(self, call: ParsedCall, info: RoutingInput) -> Request:
        # Non-chat bodies are forwarded as sent: the Request carries them, so the scan
        # reads exactly what leaves (token ids there count as unreadable).
        chat = call.endpoint in ("chat", "stream")
        return Request.build(
            None,
            messages=call.messages,
            kind=info.kind,
            model=call.model,
            tags=info.tags,
            headers=info.headers,
            ab_key=info.ab_key or call.user,
            face="proxy",
            max_tokens=call.max_tokens,
            temperature=call.temperature,
            extra=call.extra,
            allow_empty=True,
            body=None if chat else call.body,
            session=info.session,
            client_key=self._keys.name_of(info.authorization),
            max_input_chars=self.router.settings.max_input_chars,
        )

    async def _read_body(self, receive: Receive, declared: int | None) -> bytes:
        limit = self._max_body
        if declared is not None and declared > limit:
            raise BodyTooLarge(limit)
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnected("the client disconnected before sending its body")
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise BodyTooLarge(limit)
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnected("the client disconnected before sending its body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # counted as it streams in: a chunked body has no length
                raise BodyTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _serve(
        self, admitted: _Admitted, receive: Receive, send: Send, clock: RequestClock
    ) -> None:
        call, request = admitted.call, admitted.request
        if call.endpoint == "stream":
            await self._stream(call, request, receive, send, clock)
            return
        try:
            result, decision, audit_id = await self.router.lifecycle.call(
                request, self._op(call, request), endpoint=call.endpoint
            )
        except LocalFirstError as exc:  # audited by the lifecycle
            await send_error(send, exc)
            return
        headers = decision_headers(decision, audit_id)
        payload = dumps(result.body)
        if call.stream:  # /v1/completions with stream: one event with the whole answer
            headers = [*_SSE_HEADERS, *headers]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send(
                {"type": "http.response.body", "body": b"data: " + payload + b"\n\n" + _DONE}
            )
            return
        await send_bytes(send, 200, payload, [JSON_HEADER, *headers])

    def _op(
        self, call: ParsedCall, request: Request
    ) -> Callable[[Provider, EgressTicket], Awaitable[ChatResult]]:
        if call.endpoint == "chat":
            chat_body = request.chat_body()

            async def chat(provider: Provider, ticket: EgressTicket) -> ChatResult:
                return await provider.chat(ticket, chat_body)

            return chat
        endpoint, path, body = call.endpoint, _UPSTREAM_PATHS[call.endpoint], request.outbound()

        async def post(provider: Provider, ticket: EgressTicket) -> ChatResult:
            dest = provider.destination
            post_json = getattr(provider, "post_json", None)
            if post_json is None or (endpoint == "responses" and not dest.responses_api):
                what = (
                    "the Responses API (set responses_api: true on destinations that speak it)"
                    if endpoint == "responses"
                    else f"/v1/{endpoint}"
                )
                raise UnsupportedEndpoint(
                    f"destination {dest.name!r} ({dest.provider}) does not speak {what}; "
                    "name a destination that does as the model",
                    param="model",
                )
            data = await post_json(ticket, path, body)
            return _result_of(endpoint, data)

        return post

    async def _stream(
        self, call: ParsedCall, request: Request, receive: Receive, send: Send, clock: RequestClock
    ) -> None:
        try:
            stream = await self.router.lifecycle.stream(request, endpoint="stream")
        except LocalFirstError as exc:  # before the first byte: failover already happened
            await send_error(send, exc)
            return
        task = asyncio.current_task()
        state = {"disconnected": False, "finished": False}

        async def watch() -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    if not state["finished"] and task is not None:
                        state["disconnected"] = True
                        task.cancel()  # stops the upstream read at once
                    return

        watcher = asyncio.get_running_loop().create_task(watch())
        keep_usage = call.include_usage
        try:
            async with stream:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            *_SSE_HEADERS,
                            *decision_headers(stream.decision, stream.audit_id),
                        ],
                    }
                )
                async for chunk in stream:
                    if not keep_usage and "usage" in chunk and not chunk.get("choices"):
                        continue  # the proxy asked for usage (audit); the client did not
                    await send(
                        {
                            "type": "http.response.body",
                            "more_body": True,
                            "body": b"data: " + dumps(chunk) + b"\n\n",
                        }
                    )
                    if clock.first_byte is None:
                        clock.first_byte = time.perf_counter()
                state["finished"] = True
                await send({"type": "http.response.body", "body": _DONE})
        except Exception as exc:  # mid-stream: audited by the stream; no failover now
            if not isinstance(exc, LocalFirstError):
                log_internal("a stream", exc)
            state["finished"] = True
            _, payload = error_payload(exc)
            await send({"type": "http.response.body", "body": b"data: " + dumps(payload) + b"\n\n"})
        except asyncio.CancelledError:
            if not state["disconnected"] or task is None:
                raise
            task.uncancel()  # our own cancel: the client left; the stream audited it
        finally:
            watcher.cancel()


class _Admitted(NamedTuple):
    """A request that passed authentication and validation."""

    call: ParsedCall
    request: Request
