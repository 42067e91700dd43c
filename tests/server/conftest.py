"""Fixtures for the proxy tests: a live proxy on loopback over fake upstreams.

The proxy runs in uvicorn (uvloop + httptools, as ``serve`` runs it) on a thread,
on a socket bound before the server starts, so clients can connect at once with
no readiness polling. The cloud and every fault are ``FakeUpstream`` instances
(loopback fakes of the OpenAI and Anthropic wire formats).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import uvicorn
import uvloop

from llm_localfirst import Router
from llm_localfirst.audit import AuditFilter
from llm_localfirst.audit.record import AuditRecord
from llm_localfirst.config import Settings
from llm_localfirst.providers import make_provider as provider_factory
from llm_localfirst.providers.base import Provider
from llm_localfirst.registry import Destination
from llm_localfirst.server.proxy import create_app
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy

ADMIN_TOKEN = "admin-token-for-tests"


@dataclass
class LiveProxy:
    """A running proxy: its URL, router, audit store and the fakes behind it."""

    url: str
    router: Router
    store: MemoryAuditStore
    app: Any
    local: FakeUpstream
    cloud: FakeUpstream

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"{self.url}/v1"

    def client(self, **kwargs: Any) -> httpx2.Client:
        """A plain HTTP client on the proxy (bounded timeouts)."""
        return httpx2.Client(
            base_url=self.url, timeout=httpx2.Timeout(10.0, connect=2.0), trust_env=False, **kwargs
        )

    def rows(self, **filters: Any) -> list[AuditRecord]:
        """Audit rows so far (after a flush), newest first."""
        self.router.flush(10)
        return self.store.query(AuditFilter(limit=1000, **filters))

    def admin_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {ADMIN_TOKEN}"}


class ServerThread:
    """uvicorn serving ``app`` on a pre-bound loopback socket, in a thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="proxy-under-test", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "the proxy did not shut down"
        self.loop.close()
        self.sock.close()


@pytest.fixture
def proxy_factory(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> Iterator[Callable[..., LiveProxy]]:
    """Start proxies: ``make(policy=None, router=None, factory=..., **settings)``.

    The router uses the provider factory ``serve`` uses unless ``factory`` says
    otherwise. Every proxy is stopped, and its router closed, at teardown.
    """
    running: list[tuple[ServerThread, Router]] = []

    def make(
        *,
        policy: Any = None,
        router: Router | None = None,
        factory: Callable[[Destination], Provider] = provider_factory,
        **settings: Any,
    ) -> LiveProxy:
        settings.setdefault("admin_token", ADMIN_TOKEN)
        config = Settings.load(**settings)
        if router is None:
            router = Router(
                policy or offline_policy(fake_local, fake_cloud),
                settings=config,
                audit=memory_audit,
                probe_ttl=30,
                provider_factory=factory,
            )
        app = create_app(router, config)
        server = ServerThread(app).start()
        running.append((server, router))
        return LiveProxy(
            f"http://127.0.0.1:{server.port}", router, memory_audit, app, fake_local, fake_cloud
        )

    yield make
    for server, router in running:
        server.stop()
        router.close()


@pytest.fixture
def proxy(proxy_factory: Callable[..., LiveProxy]) -> LiveProxy:
    """A proxy over the offline policy: bulk -> fake local, reason -> fake cloud (Anthropic)."""
    return proxy_factory()


#: A policy with one local destination; format with ``name`` and ``url``.
ONE_LOCAL_POLICY = """
version: 1
destinations:
  {name}:
    provider: openai
    base_url: {url}
    model: fake-{name}
    locality: local
default:
  to: [{name}]
"""
