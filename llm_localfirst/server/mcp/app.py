"""The MCP server: build it from a router, and serve it over stdio or streamable HTTP.

This module owns the server's assembly (:func:`build_server`), its entry point
(:func:`run`, which ``llm-localfirst mcp`` calls) and the HTTP transport's
protection: it binds 127.0.0.1 by default, validates ``Host`` and ``Origin``
against the bound address with the SDK's transport security settings
(DNS-rebinding protection), and, when ``LF_MCP_TOKEN`` is set, requires
``Authorization: Bearer <token>`` on every request (:class:`BearerTokenMiddleware`).
The tools live in :mod:`.tools`, the resources in :mod:`.resources`.

In stdio mode nothing but protocol messages may reach stdout: logging goes to
stderr, and while serving, the SDK points file descriptor 1 at stderr and writes
the protocol through a private duplicate, so a stray ``print`` cannot corrupt it.

It must never bind a non-loopback address without a token, and it imports the
``mcp`` SDK only when a server is built (``import llm_localfirst.server.mcp`` is cheap
and works without the extra).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import __version__
from ...agents.director import DIRECTOR_GUIDANCE
from ...errors import ConfigError, UsageError
from ...registry import is_loopback_host
from ..auth import BearerTokens, RequestGuard

if TYPE_CHECKING:
    import uvicorn
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ...router import Router

__all__ = ["BearerTokenMiddleware", "build_server", "http_app", "http_server", "run"]

log = logging.getLogger("llm_localfirst.mcp")

INSTALL_HINT = "the MCP server needs the mcp extra: pip install 'llm-localfirst[mcp]'"
MCP_PATH = "/mcp"

INSTRUCTIONS = (
    """\
llm-localfirst routes prompts between the user's own local models and cloud models by \
a policy: private data and bulk text work stay local, the cloud is used only for the \
hard part, and a sensitive request fails rather than leave the machine.

Tools: `route` previews a routing decision without calling a model; `complete` runs a \
prompt under the policy; `delegate_to_worker` hands bulk text work to the local model. \
Resources: audit://decisions (what was decided, by any app on this machine), \
audit://savings, policy://current, status://destinations.

"""
    + DIRECTOR_GUIDANCE
)


def _require_mcp() -> None:
    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"{INSTALL_HINT} ({exc})") from None


def build_server(
    router: Router,
    *,
    worker_destination: str | Sequence[str] = "local",
    documents: Mapping[str, Path | str] | None = None,
) -> MCPServer[Any]:
    """Build the MCP server for ``router``: three tools, five resources and templates.

    Args:
        router: The router every tool and resource uses (and whose audit store the
            resources read).
        worker_destination: The local destination(s) ``delegate_to_worker`` runs on
            (``"local"``: every local destination of the policy, in order).
        documents: Named documents ``delegate_to_worker`` may read by name (a
            ``Path`` or the text); its description lists names and sizes only.

    Raises:
        ConfigError: the ``mcp`` extra is not installed.
    """
    _require_mcp()
    from .resources import register_resources
    from .tools import LocalFirstMCP, register_tools

    server = LocalFirstMCP(
        router,
        name="llm-localfirst",
        title="llm-localfirst router",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
    )
    register_tools(server, router, worker_destination=worker_destination, documents=documents)
    register_resources(server, router)
    return server


# --------------------------------------------------------------------------- HTTP


class BearerTokenMiddleware:
    """ASGI middleware: the shared Host/Origin/header checks, then the bearer token.

    Both come from :mod:`llm_localfirst.server.auth`, the proxy's own checks: a
    foreign ``Host`` gets 421, a foreign ``Origin`` 403, oversized headers 431, and
    (when a token is set) a missing or wrong ``Authorization: Bearer <token>`` gets
    401 with ``WWW-Authenticate: Bearer``, all before the MCP transport sees the
    request. The token is compared in constant time; the scheme in any case.
    """

    def __init__(
        self, app: ASGIApp, token: str | None, *, guard: RequestGuard | None = None
    ) -> None:
        if token is not None and not token:
            raise ConfigError("LF_MCP_TOKEN is empty")
        self.app = app
        self._tokens = BearerTokens([token] if token else [])
        self._guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers") or []
            if self._guard is not None:
                try:
                    self._guard.check(headers)
                except UsageError as exc:
                    await _refuse(send, getattr(exc, "status", 400), exc.code, exc.message)
                    return
            if self._tokens.required and not self._tokens.matches(
                dict(headers).get(b"authorization")
            ):
                await _refuse(
                    send,
                    401,
                    "unauthorized",
                    "a valid bearer token is required",
                    [(b"www-authenticate", b'Bearer realm="llm-localfirst"')],
                )
                return
        await self.app(scope, receive, send)


async def _refuse(
    send: Send, status: int, code: str, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def http_app(
    server: MCPServer[Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8788,
    token: str | None = None,
    max_body_bytes: int = 8 * 1024 * 1024,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
) -> ASGIApp:
    """The streamable HTTP ASGI app, with Host/Origin validation and the optional token.

    Args:
        server: The MCP server.
        host: The bound host (accepted in ``Host`` besides loopback names).
        port: The bound port (a ``Host`` naming another port is refused).
        token: ``LF_MCP_TOKEN``: required as ``Authorization: Bearer <token>`` when set.
        max_body_bytes: Largest request body.
        allowed_hosts: Extra ``Host`` values (``LF_ALLOWED_HOSTS``).
        allowed_origins: Extra browser origins (``LF_ALLOWED_ORIGINS``).

    Raises:
        ConfigError: a non-loopback ``host`` without a ``token``.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    if not is_loopback_host(host) and not token:
        raise ConfigError(
            f"refusing to serve MCP on {host}, which is not a loopback address, "
            "without LF_MCP_TOKEN"
        )
    guard = RequestGuard(
        host=host, port=port, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
    )
    # Host and Origin are checked by the shared guard (the proxy's own), so the SDK's
    # copy of that check is off: two lists would disagree on LF_ALLOWED_HOSTS.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=security,
        host=host,
        max_request_body_size=max_body_bytes,
    )
    return BearerTokenMiddleware(app, token or None, guard=guard)


def http_server(
    server: MCPServer[Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8788,
    token: str | None = None,
    max_body_bytes: int = 8 * 1024 * 1024,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
) -> uvicorn.Server:
    """A uvicorn server for :func:`http_app` (call ``.serve(sockets=...)`` to run it).

    Raises:
        ConfigError: a non-loopback ``host`` without a ``token``.
    """
    import uvicorn

    app = http_app(
        server,
        host=host,
        port=port,
        token=token,
        max_body_bytes=max_body_bytes,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


# --------------------------------------------------------------------------- entry point


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:  # stderr only: stdout carries the protocol in stdio mode
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def run(
    policy: str | None = None, transport: str = "stdio", host: str = "127.0.0.1", port: int = 8788
) -> int:
    """Serve the MCP server until the client goes away (stdio) or a signal arrives (HTTP).

    Args:
        policy: Policy file (default ``LF_POLICY``, else the ``LF_*`` defaults).
        transport: ``stdio`` (default) or ``http`` (streamable HTTP on ``host:port``,
            path ``/mcp``).
        host: HTTP bind address; non-loopback needs ``LF_MCP_TOKEN``.
        port: HTTP port.

    Returns:
        The exit code (0).

    Raises:
        ConfigError: the ``mcp`` extra is missing, an unknown transport, a non-loopback
            host without a token, or a port that cannot be bound.
        PolicyError: the policy is invalid.
    """
    _configure_logging()
    if transport not in ("stdio", "http"):
        raise ConfigError(f"unknown MCP transport {transport!r}; use stdio or http")
    _require_mcp()
    import anyio

    from ...router import Router
    from .stdio import run_stdio

    # No router.warm() here: importing a cloud SDK would delay `initialize` by ~1 s;
    # an MCP tool call can afford that once, a client waiting to connect should not.
    router = Router.from_env(**({"policy": policy} if policy else {}))
    try:
        server = build_server(router)
        if transport == "stdio":
            # SIGTERM (a client that does not wait for us to see EOF) unwinds like Ctrl-C,
            # so in-flight requests are audited and the audit log is flushed.
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            try:
                anyio.run(_closing, router, run_stdio(server))
            except KeyboardInterrupt:
                router.close()
                sys.stderr.flush()
                # The SDK's stdin reader thread is still blocked on the open pipe and would
                # keep the interpreter alive; everything worth keeping is written.
                os._exit(130)
            return 0
        secret = router.settings.mcp_token
        token = secret.get_secret_value() if secret is not None else None
        sock = _listen(host, port)
        bound = sock.getsockname()[1]  # the real port, also when --port 0 asked for any
        try:
            settings = router.settings
            uv = http_server(
                server,
                host=host,
                port=bound,
                token=token or None,
                max_body_bytes=settings.max_body_bytes,
                allowed_hosts=_listed(settings.allowed_hosts),
                allowed_origins=_listed(settings.allowed_origins),
            )
        except ConfigError:
            sock.close()
            raise
        shown = f"[{host}]" if ":" in host else host
        sys.stderr.write(
            f"llm-localfirst MCP server on http://{shown}:{bound}{MCP_PATH} "
            f"(token {'required' if token else 'off'})\n"
        )
        sys.stderr.flush()
        # uvicorn re-raises the SIGTERM it caught after shutting down; with the default
        # handler the process would die with 143 after a clean shutdown (0 is documented).
        previous = signal.signal(signal.SIGTERM, _after_shutdown)
        try:
            anyio.run(_closing, router, uv.serve([sock]))
        finally:
            signal.signal(signal.SIGTERM, previous)
            sock.close()
        return 0
    finally:
        router.close()


def _after_shutdown(signum: int, frame: object) -> None:
    log.debug("signal %d after shutdown: exiting normally", signum)


def _listed(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


async def _closing(router: Router, serving: Coroutine[Any, Any, None]) -> None:
    """Serve, then close the pooled clients opened on this event loop and flush the audit."""
    try:
        await serving
    finally:
        await router.aclose()
