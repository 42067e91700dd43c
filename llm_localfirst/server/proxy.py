"""The OpenAI-compatible proxy: ``create_app(router, settings)`` and ``serve()``.

An application that uses an OpenAI client changes only its base URL; each of its
requests is then routed by the policy, sensitive ones stay local, and every one
of them (refused ones included) leaves exactly one audit row.

Layout: the ``/v1`` endpoints, ``/metrics`` and ``/openapi.json`` are raw ASGI
handlers (the hot path: the body is read and parsed once, nothing is wrapped in
framework objects); everything else (the admin API and UI, 404s, lifespan) is a
small Starlette app behind them. Wire parsing and the error map live in
:mod:`.openai_wire`, the admin API in :mod:`.admin`, metrics in :mod:`.metrics`.

What it must never do: log or store prompt text or keys, send a request to a
model outside the router (every send goes through ``Router.route_call`` or
``Router.open_stream``, hence the egress guard), fail over after the first byte
of a response has reached the client, or bind a non-loopback address without
client keys unless told ``--insecure``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..errors import LocalFirstError, UsageError
from ..providers.base import ChatResult, EgressTicket, Provider
from ..request import Decision, Request
from ..router import Router
from .admin import admin_routes, json_response
from .metrics import CONTENT_TYPE_LATEST, ProxyMetrics, RequestClock
from .openai_wire import (
    BodyTooLarge,
    ParsedCall,
    RoutingInput,
    Unauthorized,
    UnsupportedEndpoint,
    dumps,
    error_body,
    error_payload,
    load_json,
    parse_chat,
    parse_completions,
    parse_embeddings,
    parse_responses,
    routing_input,
)
from .openapi import openapi_document
from .reload import PolicyReloader, loader_for

__all__ = ["ProxyApp", "create_app", "serve"]

log = logging.getLogger("llm_localfirst.proxy")

Parser = Callable[[dict[str, Any]], ParsedCall]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
_DONE = b"data: [DONE]\n\n"
_UPSTREAM_PATHS = {"completions": "/completions", "embeddings": "/embeddings",
                   "responses": "/responses"}
_MODEL_ROUTES: dict[str, tuple[Parser, str]] = {
    "/v1/chat/completions": (parse_chat, "chat"),
    "/v1/completions": (parse_completions, "completions"),
    "/v1/embeddings": (parse_embeddings, "embeddings"),
    "/v1/responses": (parse_responses, "responses"),
}


class _ClientGone(Exception):  # noqa: N818 - control flow: the client left before its body arrived
    """The client disconnected while its request body was being read."""


def _decision_headers(decision: Decision, audit_id: str) -> list[tuple[bytes, bytes]]:
    # Destination names match registry.NAME_PATTERN (ASCII, no separators): header-safe.
    return [(b"x-lf-destination", decision.destination.encode("ascii")),
            (b"x-lf-decision-id", audit_id.encode("ascii")),
            (b"x-lf-fell-back", b"true" if decision.fell_back else b"false"),
            (b"x-lf-locality", decision.target.encode("ascii"))]


async def _send_bytes(send: Send, status: int, body: bytes,
                      headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, exc: BaseException) -> None:
    status, payload = error_payload(exc)
    headers = [_JSON]
    decision_id = getattr(exc, "decision_id", None)
    if decision_id:
        headers.append((b"x-lf-decision-id", decision_id.encode("ascii")))
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await _send_bytes(send, status, dumps(payload), headers)


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


def _log_internal(where: str, exc: BaseException) -> None:
    # The traceback's frames, never the exception's message: it could quote the request.
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("internal error in %s (%s)\n%s", where, type(exc).__name__, frames)


class ProxyApp:
    """The proxy's ASGI application. Build it with :func:`create_app`.

    Attributes:
        router: The router every model request goes through.
        metrics: This app's Prometheus metrics (own registry).
        reloader: Reloads the policy (``SIGHUP``, ``POST /admin/reload``).
    """

    def __init__(self, router: Router, settings: Settings, *, reloader: PolicyReloader,
                 metrics: ProxyMetrics, own_router: bool) -> None:
        self.router = router
        self.settings = settings
        self.metrics = metrics
        self.reloader = reloader
        self._max_body = settings.max_body_bytes
        self._keys = tuple(k.encode() for k in settings.proxy_key_list())
        admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
        self.admin_enabled = bool(admin_token)
        self._openapi = dumps(openapi_document(admin=self.admin_enabled))
        self._own_router = own_router
        self._models: tuple[int, bytes] | None = None
        self._routes: dict[str, tuple[str, Handler]] = {
            path: ("POST", self._model_handler(parser, endpoint))
            for path, (parser, endpoint) in _MODEL_ROUTES.items()}
        self._routes["/v1/models"] = ("GET", self._list_models)
        self._routes["/metrics"] = ("GET", self._metrics)
        self._routes["/openapi.json"] = ("GET", self._openapi_json)
        self._fallback = Starlette(
            routes=admin_routes(router, admin_token, reloader),
            exception_handlers={HTTPException: _http_error}, lifespan=self._lifespan,
            max_body_size=64 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._routes.get(scope["path"])
            if route is not None:
                method, handler = route
                if scope["method"] == method:
                    await handler(scope, receive, send)
                else:
                    await _send_bytes(send, 405, dumps(error_body(
                        f"{scope['method']} is not allowed here; use {method}", status=405,
                        code="method_not_allowed")), [_JSON, (b"allow", method.encode())])
                return
            if scope["path"].startswith("/v1/models/") and scope["method"] == "GET":
                await self._get_model(scope, receive, send)
                return
        await self._fallback(scope, receive, send)

    # ------------------------------------------------------------------ lifespan

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        hup = getattr(signal, "SIGHUP", None)
        installed = False
        if hup is not None and threading.current_thread() is threading.main_thread():
            loop.add_signal_handler(hup, self._on_sighup)
            installed = True
        try:
            yield
        finally:
            if installed and hup is not None:
                loop.remove_signal_handler(hup)
            if self._own_router:
                await self.router.aclose()

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload_quietly())
        self._pending = task  # keep a reference until it is done

    async def _reload_quietly(self) -> None:
        with contextlib.suppress(LocalFirstError):  # logged by the reloader; old policy stays
            await self.reloader.reload(trigger="SIGHUP")

    # ------------------------------------------------------------------ plain GET routes

    def _authorized(self, header: bytes | None) -> bool:
        if not self._keys:
            return True
        if header is None or header[:7].lower() != b"bearer ":
            return False
        given = header[7:].strip()
        ok = False
        for key in self._keys:  # compare with every key: timing does not tell which matched
            ok |= hmac.compare_digest(given, key)
        return ok

    def _check_key(self, scope: Scope) -> None:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if not self._authorized(header):
            raise Unauthorized("missing or invalid client key: send 'Authorization: Bearer <key>' "
                               "with one of LF_PROXY_KEYS")

    def _models_body(self) -> bytes:
        policy = self.router.policy
        cached = self._models
        if cached is None or cached[0] != id(policy):
            data = [{"id": "auto", "object": "model", "created": 0, "owned_by": "llm-localfirst"}]
            data += [{"id": name, "object": "model", "created": 0,
                      "owned_by": f"llm-localfirst:{dest.locality}"}
                     for name, dest in policy.destinations.items()]
            cached = self._models = (id(policy), dumps({"object": "list", "data": data}))
        return cached[1]

    async def _list_models(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._check_key(scope)
        except Unauthorized as exc:
            await _send_error(send, exc)
            return
        await _send_bytes(send, 200, self._models_body(), [_JSON])

    async def _get_model(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._check_key(scope)
        except Unauthorized as exc:
            await _send_error(send, exc)
            return
        name = scope["path"][len("/v1/models/"):]
        dest = self.router.policy.destinations.get(name)
        if name != "auto" and dest is None:
            await _send_bytes(send, 404, dumps(error_body(
                f"model {name[:80]!r} is not on the allowlist", status=404,
                code="model_not_found", param="model")), [_JSON])
            return
        owner = "llm-localfirst" if dest is None else f"llm-localfirst:{dest.locality}"
        await _send_bytes(send, 200, dumps({"id": name, "object": "model", "created": 0,
                                            "owned_by": owner}), [_JSON])

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._check_key(scope)
        except Unauthorized as exc:
            await _send_error(send, exc)
            return
        await _send_bytes(send, 200, self.metrics.render(),
                          [(b"content-type", CONTENT_TYPE_LATEST.encode())])

    async def _openapi_json(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send_bytes(send, 200, self._openapi, [_JSON])

    # ------------------------------------------------------------------ model endpoints

    def _model_handler(self, parser: Parser, endpoint: str) -> Handler:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            metrics = self.metrics
            clock = metrics.start()
            metrics.in_flight.inc()
            admitted: _Admitted | None = None
            try:
                admitted = await self._admit(scope, receive, send, parser, endpoint)
                if admitted is not None:
                    await self._serve(admitted, receive, send, clock)
            except Exception as exc:
                _log_internal(f"{scope['method']} {scope['path']}", exc)
                await _send_error(send, exc)
            finally:
                metrics.in_flight.dec()
                metrics.finish(admitted.call.endpoint if admitted else endpoint, clock)

        return handle

    async def _admit(self, scope: Scope, receive: Receive, send: Send, parser: Parser,
                     endpoint: str) -> _Admitted | None:
        """Authenticate, read, parse and build; a refusal is audited and answered here."""
        info: RoutingInput | None = None
        body: dict[str, Any] | None = None
        try:
            info = routing_input(scope["headers"])
            if not self._authorized(info.authorization):
                raise Unauthorized("missing or invalid client key: send 'Authorization: Bearer "
                                   "<key>' with one of LF_PROXY_KEYS")
            if info.problem is not None:
                raise info.problem
            body = load_json(await self._read_body(receive, info.content_length))
            call = parser(body)
            return _Admitted(call, self._build(call, info))
        except UsageError as exc:
            model = body.get("model") if body is not None else None
            self.router.record_rejected(
                face="proxy", endpoint=endpoint, error=exc,
                kind=info.kind if info is not None and info.problem is None else "auto",
                model=model if isinstance(model, str) else "auto")
            await _send_error(send, exc)
        except _ClientGone as exc:
            self.router.record_rejected(face="proxy", endpoint=endpoint, error=exc)
        return None

    def _build(self, call: ParsedCall, info: RoutingInput) -> Request:
        return self.router.build_request(
            None, messages=call.messages, kind=info.kind, model=call.model,
            sensitive=call.opaque, tags=info.tags, headers=info.headers,
            ab_key=info.ab_key or call.user, face="proxy", max_tokens=call.max_tokens,
            temperature=call.temperature, extra=call.extra, allow_empty=True)

    async def _read_body(self, receive: Receive, declared: int | None) -> bytes:
        limit = self._max_body
        if declared is not None and declared > limit:
            raise BodyTooLarge(limit)
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone("the client disconnected before sending its body")
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
                raise _ClientGone("the client disconnected before sending its body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # counted as it streams in: a chunked body has no length
                raise BodyTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _serve(self, admitted: _Admitted, receive: Receive, send: Send,
                     clock: RequestClock) -> None:
        call, request = admitted.call, admitted.request
        if call.endpoint == "stream":
            await self._stream(call, request, receive, send, clock)
            return
        try:
            result, decision, audit_id = await self.router.route_call(
                request, self._op(call, request), endpoint=call.endpoint)
        except LocalFirstError as exc:  # audited by route_call
            await _send_error(send, exc)
            return
        headers = _decision_headers(decision, audit_id)
        payload = dumps(result.body)
        if call.stream:  # /v1/completions with stream: one event with the whole answer
            headers = [*_SSE_HEADERS, *headers]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"data: " + payload + b"\n\n"
                        + _DONE})
            return
        await _send_bytes(send, 200, payload, [_JSON, *headers])

    def _op(self, call: ParsedCall,
            request: Request) -> Callable[[Provider, EgressTicket], Awaitable[ChatResult]]:
        if call.endpoint == "chat":
            chat_body = self.router.chat_body(request)

            async def chat(provider: Provider, ticket: EgressTicket) -> ChatResult:
                return await provider.chat(ticket, chat_body)

            return chat
        endpoint, path, body = call.endpoint, _UPSTREAM_PATHS[call.endpoint], call.body

        async def post(provider: Provider, ticket: EgressTicket) -> ChatResult:
            dest = provider.destination
            post_json = getattr(provider, "post_json", None)
            if post_json is None or (endpoint == "responses" and not dest.responses_api):
                what = ("the Responses API (set responses_api: true on destinations that "
                        "speak it)" if endpoint == "responses" else f"/v1/{endpoint}")
                raise UnsupportedEndpoint(
                    f"destination {dest.name!r} ({dest.provider}) does not speak {what}; "
                    "name a destination that does as the model", param="model")
            data = await post_json(ticket, path, body)
            return _result_of(endpoint, data)

        return post

    async def _stream(self, call: ParsedCall, request: Request, receive: Receive, send: Send,
                      clock: RequestClock) -> None:
        try:
            stream = await self.router.open_stream(request, endpoint="stream")
        except LocalFirstError as exc:  # before the first byte: failover already happened
            await _send_error(send, exc)
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
                await send({"type": "http.response.start", "status": 200,
                            "headers": [*_SSE_HEADERS,
                                        *_decision_headers(stream.decision, stream.audit_id)]})
                async for chunk in stream:
                    if not keep_usage and "usage" in chunk and not chunk.get("choices"):
                        continue  # the proxy asked for usage (audit); the client did not
                    await send({"type": "http.response.body", "more_body": True,
                                "body": b"data: " + dumps(chunk) + b"\n\n"})
                    if clock.first_byte is None:
                        clock.first_byte = time.perf_counter()
                state["finished"] = True
                await send({"type": "http.response.body", "body": _DONE})
        except LocalFirstError as exc:  # mid-stream: audited by the stream; no failover now
            state["finished"] = True
            _, payload = error_payload(exc)
            await send({"type": "http.response.body", "body": b"data: " + dumps(payload)
                        + b"\n\n"})
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


async def _http_error(request: StarletteRequest, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
        exc.status_code, "http_error")
    return json_response(error_body(str(exc.detail), status=exc.status_code, code=code),
                         exc.status_code, dict(exc.headers or {}))


def create_app(router: Router, settings: Settings | None = None, *,
               own_router: bool = True) -> ASGIApp:
    """Build the proxy's ASGI application.

    Args:
        router: The router every request goes through. Its audit listener feeds
            this app's metrics.
        settings: Limits, keys, admin token and CORS origins (default: the router's).
        own_router: Close the router's providers and flush its audit log when the
            server shuts down (lifespan).

    Returns:
        The ASGI app, wrapped in CORS middleware only when ``LF_CORS_ORIGINS`` is set.
    """
    settings = settings or router.settings
    metrics = ProxyMetrics()
    loader, source = loader_for(router)
    reloader = PolicyReloader(router, loader, source=source,
                              on_result=lambda result: metrics.reloads.labels(result).inc())
    router.add_listener(metrics.listener)
    app = ProxyApp(router, settings, reloader=reloader, metrics=metrics, own_router=own_router)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if not origins:
        return app
    return CORSMiddleware(
        app, allow_origins=origins, allow_methods=["GET", "POST"], allow_credentials=False,
        allow_headers=["authorization", "content-type", "x-lf-sensitive", "x-sensitive",
                       "x-lf-kind", "x-lf-tags", "x-lf-ab-key"],
        expose_headers=["x-lf-destination", "x-lf-decision-id", "x-lf-fell-back",
                        "x-lf-locality"])


# --------------------------------------------------------------------------- serve


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_problem(host: str, settings: Settings, *, insecure: bool) -> str | None:
    """Why the proxy must not bind ``host`` with these settings, or None."""
    if _is_loopback(host) or settings.proxy_key_list() or insecure:
        return None
    return (f"refusing to listen on {host}: it is not a loopback address and LF_PROXY_KEYS "
            "is not set, so anyone who can reach it could use your models and keys. Set "
            "LF_PROXY_KEYS (comma-separated client keys) or pass --insecure.")


def serve(*, policy: str | None, host: str, port: int, insecure: bool) -> int:
    """Run the proxy with uvicorn (uvloop and httptools when installed) until stopped.

    Args:
        policy: A policy file (else ``LF_POLICY``, else the ``LF_*`` default policy).
        host: Address to bind (default 127.0.0.1).
        port: Port to bind.
        insecure: Allow a non-loopback bind without ``LF_PROXY_KEYS``.

    Returns:
        The process exit code: 0 after a clean shutdown, 2 when the bind is refused,
        1 when the server could not start.

    Raises:
        ConfigError: invalid settings.
        PolicyError: invalid policy.
    """
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the server extra is missing
        sys.stderr.write("llm-localfirst serve needs the server extra: "
                         "pip install 'llm-localfirst[server]'\n")
        return 1
    overrides: dict[str, Any] = {"policy": policy} if policy else {}
    settings = Settings.load(**overrides)
    problem = bind_problem(host, settings, insecure=insecure)
    if problem:
        sys.stderr.write(f"llm-localfirst: {problem}\n")
        return 2
    router = Router.from_env(**overrides)
    app = create_app(router, settings)
    if not _is_loopback(host) and not settings.proxy_key_list():
        log.warning("listening on %s without client keys (--insecure)", host)
    config = uvicorn.Config(
        app, host=host, port=port, loop=_loop_name(), http=_http_name(), lifespan="on",
        access_log=False, server_header=False, log_level="info",
        timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    sys.stderr.write(
        f"llm-localfirst proxy on http://{host}:{port}/v1 (policy {router.policy_source}; "
        f"client keys {'required' if settings.proxy_key_list() else 'not required'}; "
        f"admin API {'on' if settings.admin_token else 'off'})\n")
    try:
        server.run()
    finally:
        router.close()
    return 0 if server.started else 1


def _loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _http_name() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"
