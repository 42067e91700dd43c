"""The OpenAI-compatible proxy: ``create_app(router, settings)`` and ``serve()``.

An application that uses an OpenAI client changes only its base URL; each of its
requests is then routed by the policy, sensitive ones stay local, and every one
of them (refused ones included) leaves exactly one audit row.

Layout: the ``/v1`` endpoints, ``/metrics`` and ``/openapi.json`` are raw ASGI
handlers (the hot path: the body is read and parsed once, nothing is wrapped in
framework objects); everything else (the admin API and UI, 404s, lifespan) is a
small Starlette app behind them. The model endpoints live in :mod:`.model_calls`,
wire parsing and the error map in :mod:`.openai_wire`, the admin API in
:mod:`.admin`, metrics in :mod:`.metrics`, policy reload in :mod:`.reload`.

What it must never do: log or store prompt text or keys, send a request to a
model outside the router (every send goes through ``router.lifecycle.call`` or
``router.lifecycle.stream``, hence the egress guard), fail over after the first byte
of a response has reached the client, or bind a non-loopback address without
client keys unless told ``--insecure``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ...config import Settings, policy_from_settings
from ...errors import LocalFirstError, UsageError
from ...policy import Policy, load_policy
from ...providers import make_provider
from ...registry import is_loopback_host
from ...router import Router
from ..auth import RequestGuard
from .admin import admin_routes, json_response
from .metrics import CONTENT_TYPE_LATEST, ProxyMetrics
from .model_calls import (
    JSON_HEADER,
    ClientKeys,
    Handler,
    ModelCalls,
    Parser,
    send_bytes,
    send_error,
)
from .openai_wire import (
    Unauthorized,
    dumps,
    error_body,
    parse_chat,
    parse_completions,
    parse_embeddings,
    parse_responses,
)
from .openapi import openapi_document
from .probes import liveness, readiness
from .reload import SETTINGS_SOURCE, PolicyReloader, loader_for, warm_imports

__all__ = ["ProxyApp", "build_router", "create_app", "serve"]

log = logging.getLogger("llm_localfirst.proxy")

_NO_STORE = (b"cache-control", b"no-store")

# Probes for load balancers and containers answer whatever Host they are asked by.
_UNGUARDED = frozenset({"/healthz", "/readyz"})

_MODEL_ROUTES: dict[str, tuple[Parser, str]] = {
    "/v1/chat/completions": (parse_chat, "chat"),
    "/v1/completions": (parse_completions, "completions"),
    "/v1/embeddings": (parse_embeddings, "embeddings"),
    "/v1/responses": (parse_responses, "responses"),
}


class ProxyApp:
    """The proxy's ASGI application. Build it with :func:`create_app`.

    Attributes:
        router: The router every model request goes through.
        metrics: This app's Prometheus metrics (own registry).
        reloader: Reloads the policy (``SIGHUP``, ``POST /admin/reload``).
    """

    def __init__(
        self,
        router: Router,
        settings: Settings,
        *,
        reloader: PolicyReloader,
        metrics: ProxyMetrics,
        own_router: bool,
        guard: RequestGuard | None = None,
    ) -> None:
        self.router = router
        self.settings = settings
        self.metrics = metrics
        self.reloader = reloader
        named = settings.proxy_named_keys()
        self._keys = ClientKeys(tuple(k for _, k in named), tuple(n for n, _ in named))
        self._guard = guard or RequestGuard.from_settings(settings)
        calls = ModelCalls(
            router, metrics, keys=self._keys, max_body=settings.max_body_bytes, guard=self._guard
        )
        admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
        self.admin_enabled = bool(admin_token)
        self._openapi = dumps(openapi_document(admin=self.admin_enabled))
        self._own_router = own_router
        self._tasks: set[asyncio.Task[None]] = set()
        # Keyed by the policy object itself (not its id(), which a new policy may reuse).
        self._models: tuple[Policy, bytes] | None = None
        self._routes: dict[str, tuple[str, Handler]] = {
            path: ("POST", calls.handler(parser, endpoint))
            for path, (parser, endpoint) in _MODEL_ROUTES.items()
        }
        self._routes["/v1/models"] = ("GET", self._list_models)
        self._routes["/metrics"] = ("GET", self._metrics)
        self._routes["/openapi.json"] = ("GET", self._openapi_json)
        self._routes["/healthz"] = ("GET", self._healthz)
        self._routes["/readyz"] = ("GET", self._readyz)
        self._fallback = Starlette(
            routes=admin_routes(router, admin_token, reloader),
            exception_handlers={HTTPException: _http_error},
            lifespan=self._lifespan,
            max_body_size=64 * 1024,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["path"] not in _UNGUARDED and scope["path"] not in _MODEL_ROUTES:
                try:  # model routes check in ModelCalls, so their refusals are audited
                    self._guard.check(scope["headers"])
                except UsageError as exc:
                    await send_error(send, exc)
                    return
            route = self._routes.get(scope["path"])
            if route is not None:
                method, handler = route
                if scope["method"] == method:
                    await handler(scope, receive, send)
                else:
                    await send_bytes(
                        send,
                        405,
                        dumps(
                            error_body(
                                f"{scope['method']} is not allowed here; use {method}",
                                status=405,
                                code="method_not_allowed",
                            )
                        ),
                        [JSON_HEADER, (b"allow", method.encode())],
                    )
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
        await anyio.to_thread.run_sync(warm_imports, self.router.policy)
        try:
            yield
        finally:
            if installed and hup is not None:
                loop.remove_signal_handler(hup)
            if self._own_router:
                await self.router.aclose()

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload_quietly())
        self._tasks.add(task)  # a reference until it is done, so it is not collected
        task.add_done_callback(self._tasks.discard)

    async def _reload_quietly(self) -> None:
        with contextlib.suppress(LocalFirstError):  # logged by the reloader; old policy stays
            await self.reloader.reload(trigger="SIGHUP")

    # ------------------------------------------------------------------ plain GET routes

    def _models_body(self) -> bytes:
        policy = self.router.policy
        cached = self._models
        if cached is None or cached[0] is not policy:
            data = [{"id": "auto", "object": "model", "created": 0, "owned_by": "llm-localfirst"}]
            data += [
                {
                    "id": name,
                    "object": "model",
                    "created": 0,
                    "owned_by": f"llm-localfirst:{dest.locality}",
                }
                for name, dest in policy.destinations.items()
            ]
            cached = self._models = (policy, dumps({"object": "list", "data": data}))
        return cached[1]

    async def _list_models(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._keys.check(scope)
        except Unauthorized as exc:
            await send_error(send, exc)
            return
        await send_bytes(send, 200, self._models_body(), [JSON_HEADER])

    async def _get_model(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._keys.check(scope)
        except Unauthorized as exc:
            await send_error(send, exc)
            return
        name = scope["path"][len("/v1/models/") :]
        dest = self.router.policy.destinations.get(name)
        if name != "auto" and dest is None:
            await send_bytes(
                send,
                404,
                dumps(
                    error_body(
                        f"model {name[:80]!r} is not on the allowlist",
                        status=404,
                        code="model_not_found",
                        param="model",
                    )
                ),
                [JSON_HEADER],
            )
            return
        owner = "llm-localfirst" if dest is None else f"llm-localfirst:{dest.locality}"
        await send_bytes(
            send,
            200,
            dumps({"id": name, "object": "model", "created": 0, "owned_by": owner}),
            [JSON_HEADER],
        )

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._keys.check(scope)
        except Unauthorized as exc:
            await send_error(send, exc)
            return
        await send_bytes(
            send, 200, self.metrics.render(), [(b"content-type", CONTENT_TYPE_LATEST.encode())]
        )

    async def _openapi_json(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self._openapi, [JSON_HEADER])

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Unauthenticated on purpose (load balancers, containers): see .probes.
        await send_bytes(send, 200, dumps(liveness()), [JSON_HEADER, _NO_STORE])

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, body = await readiness(self.router)
        await send_bytes(send, status, dumps(body), [JSON_HEADER, _NO_STORE])

    # ------------------------------------------------------------------ model endpoints


async def _http_error(request: StarletteRequest, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
        exc.status_code, "http_error"
    )
    return json_response(
        error_body(str(exc.detail), status=exc.status_code, code=code),
        exc.status_code,
        dict(exc.headers or {}),
    )


def create_app(
    router: Router,
    settings: Settings | None = None,
    *,
    own_router: bool = True,
    host: str | None = None,
    port: int | None = None,
    metrics: ProxyMetrics | None = None,
) -> ASGIApp:
    """Build the proxy's ASGI application.

    Args:
        router: The router every request goes through. Its audit listener feeds
            this app's metrics.
        settings: Limits, keys, admin token, CORS origins and the allowed hosts and
            origins (default: the router's).
        own_router: Close the router's providers and flush its audit log when the
            server shuts down (lifespan).
        host: The bound host: accepted in ``Host`` besides loopback names and
            ``LF_ALLOWED_HOSTS``.
        port: The bound port, when known: a ``Host`` naming another port is refused.
        metrics: The metrics to feed (default: new ones; ``serve --workers`` passes
            metrics that also add up the other workers').

    Returns:
        The ASGI app, wrapped in CORS middleware only when ``LF_CORS_ORIGINS`` is set.
    """
    settings = settings or router.settings
    metrics = metrics or ProxyMetrics()
    loader, source = loader_for(router)
    reloader = PolicyReloader(router, loader, source=source, on_result=metrics.reloaded)
    router.add_listener(metrics.listener)
    metrics.budgets = lambda: router.spend.status()
    guard = RequestGuard.from_settings(settings, host=host, port=port)
    app = ProxyApp(
        router, settings, reloader=reloader, metrics=metrics, own_router=own_router, guard=guard
    )
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if not origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_credentials=False,
        allow_headers=[
            "authorization",
            "content-type",
            "x-lf-sensitive",
            "x-sensitive",
            "x-lf-kind",
            "x-lf-tags",
            "x-lf-ab-key",
            "x-lf-session",
        ],
        expose_headers=["x-lf-destination", "x-lf-decision-id", "x-lf-fell-back", "x-lf-locality"],
    )


# --------------------------------------------------------------------------- serve


def bind_problem(host: str, settings: Settings, *, insecure: bool) -> str | None:
    """Why the proxy must not bind ``host`` with these settings, or None."""
    if is_loopback_host(host) or settings.proxy_key_list() or insecure:
        return None
    return (
        f"refusing to listen on {host}: it is not a loopback address and LF_PROXY_KEYS "
        "is not set, so anyone who can reach it could use your models and keys. Set "
        "LF_PROXY_KEYS (comma-separated client keys) or pass --insecure."
    )


def build_router(settings: Settings) -> Router:
    """The router ``serve`` runs: like ``Router.from_env``, with the proxy's fast provider.

    Raises:
        ConfigError: invalid settings.
        PolicyError: invalid policy.
    """
    if settings.policy is not None:
        return Router(
            load_policy(settings.policy),
            settings=settings,
            provider_factory=make_provider,
            policy_source=str(settings.policy),
        )
    return Router(
        policy_from_settings(settings),
        settings=settings,
        provider_factory=make_provider,
        policy_source=SETTINGS_SOURCE,
    )


def serve(*, policy: str | None, host: str, port: int, insecure: bool, workers: int = 1) -> int:
    """Run the proxy with uvicorn (uvloop and httptools when installed) until stopped.

    Args:
        policy: A policy file (else ``LF_POLICY``, else the ``LF_*`` default policy).
        host: Address to bind (default 127.0.0.1).
        port: Port to bind.
        insecure: Allow a non-loopback bind without ``LF_PROXY_KEYS``.
        workers: Worker processes on the one port (see :mod:`.workers`); the policy
            and settings are checked here first, so a bad file fails before any starts.

    Returns:
        The process exit code: 0 after a clean shutdown, 2 when the bind is refused,
        1 when the server could not start.

    Raises:
        ConfigError: invalid settings.
        PolicyError: invalid policy.
    """
    try:
        import uvicorn
        import uvicorn.config
    except ImportError:  # pragma: no cover - the server extra is missing
        sys.stderr.write(
            "llm-localfirst serve needs the server extra: pip install 'llm-localfirst[server]'\n"
        )
        return 1
    overrides: dict[str, Any] = {"policy": policy} if policy else {}
    settings = Settings.load(**overrides)
    problem = bind_problem(host, settings, insecure=insecure)
    if problem:
        sys.stderr.write(f"llm-localfirst: {problem}\n")
        return 2
    router = build_router(settings)
    router.warm()
    app = create_app(router, settings, host=host, port=port or None)
    if not is_loopback_host(host) and not settings.proxy_key_list():
        log.warning("listening on %s without client keys (--insecure)", host)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    # Our own records (reloads, refusals to start, internal errors) go where uvicorn's go.
    log_config["loggers"]["llm_localfirst"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    options: dict[str, Any] = dict(
        loop=_loop_name(),
        http=_http_name(),
        lifespan="on",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_level="info",
        log_config=log_config,
        timeout_graceful_shutdown=30,
    )
    if workers > 1:
        from .workers import serve_workers

        router.close()  # built to vet the policy; each worker builds its own
        return serve_workers(
            policy=policy, host=host, port=port, workers=workers, config_options=options
        )
    config = uvicorn.Config(app, host=host, port=port, **options)
    server = uvicorn.Server(config)
    sys.stderr.write(
        f"llm-localfirst proxy on http://{host}:{port}/v1 (policy {router.policy_source}; "
        f"client keys {'required' if settings.proxy_key_list() else 'not required'}; "
        f"admin API {'on' if settings.admin_token else 'off'})\n"
    )
    # uvicorn re-raises the SIGTERM/SIGINT it caught once it has shut down, so that the
    # previous handler runs; with the default one the process would die with 143 after
    # a clean shutdown. This handler makes the documented exit code 0 the real one.
    restore = _quiet_termination()
    tune_for_serving()
    try:
        server.run()
    finally:
        restore()
        router.close()
    return 0 if server.started else 1


#: Allocations between young-generation collections while serving (CPython's default
#: is 700: a collection every two or three requests).
GC_GEN0_THRESHOLD = 20_000
#: Seconds a thread may hold the GIL while another waits for it (CPython: 0.005). The
#: audit threads' Python work would otherwise stall the event loop up to 5 ms at a time.
SWITCH_INTERVAL_S = 0.0005


def tune_for_serving() -> None:
    """Process-wide settings of a long-running server; call once, after start-up work.

    Everything allocated so far (modules, policy, compiled detectors, the router) is
    moved out of the collector's reach with `gc.freeze`, so a full collection no longer
    walks it; young collections run less often; and the GIL is handed over sooner, so
    the audit writer's threads cannot hold up the event loop for a whole 5 ms interval.
    Measured in bench/README.md (the tail at c=16).
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def _quiet_termination() -> Callable[[], None]:
    """Handle SIGTERM and SIGINT as "already shutting down"; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {
        sig: signal.signal(sig, _shut_down_already) for sig in (signal.SIGTERM, signal.SIGINT)
    }

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _shut_down_already(signum: int, frame: object) -> None:
    log.debug("signal %d after shutdown: exiting normally", signum)


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
