"""Policy reload under load (no request fails, the new policy takes effect) and on SIGHUP.

The destinations are ``FakeUpstream`` fakes; ``delay`` keeps requests in flight
while the policy changes under them.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from llm_localfirst import Router
from llm_localfirst.audit import AuditFilter, open_store
from llm_localfirst.providers import make_provider as provider_factory
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore
from tests.server.conftest import ONE_LOCAL_POLICY, LiveProxy


@pytest.fixture
def other_local() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="from the new policy") as fake:
        yield fake


def test_reload_under_concurrent_load_drops_nothing_and_takes_effect(
    proxy_factory: Any,
    fake_local: FakeUpstream,
    other_local: FakeUpstream,
    memory_audit: MemoryAuditStore,
    tmp_path: Path,
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ONE_LOCAL_POLICY.format(name="old", url=fake_local.base_url))
    router = Router.from_policy(path, audit=memory_audit, provider_factory=provider_factory)
    proxy: LiveProxy = proxy_factory(router=router)
    fake_local.delay = 0.05  # requests are in flight on the old policy when it goes away
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    results: list[tuple[int, str, bool]] = []  # (status, destination, started after reload)
    reloaded = asyncio.Event()
    milestone = {"count": 100, "event": asyncio.Event()}

    async def client_loop(client: httpx2.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            after = reloaded.is_set()
            response = await client.post("/v1/chat/completions", json=body)
            results.append(
                (response.status_code, response.headers.get("x-lf-destination", ""), after)
            )
            if len(results) >= int(milestone["count"]):  # type: ignore[call-overload]
                milestone["event"].set()  # type: ignore[union-attr]

    async def reached(count: int) -> None:
        milestone["count"], milestone["event"] = count, asyncio.Event()
        if len(results) < count:
            await milestone["event"].wait()  # type: ignore[union-attr]

    async def main() -> None:
        stop = asyncio.Event()
        async with httpx2.AsyncClient(base_url=proxy.url, timeout=10, trust_env=False) as client:
            with anyio.fail_after(60):
                workers = [asyncio.create_task(client_loop(client, stop)) for _ in range(16)]
                await reached(100)
                path.write_text(ONE_LOCAL_POLICY.format(name="new", url=other_local.base_url))
                response = await client.post("/admin/reload", headers=proxy.admin_headers())
                assert response.status_code == 200, response.text
                reloaded.set()
                await reached(len(results) + 200)
                stop.set()
                await asyncio.gather(*workers)

    asyncio.run(main())
    assert len(results) >= 300
    assert [r for r in results if r[0] != 200] == []
    assert {r[1] for r in results if not r[2]} <= {"old", "new"}
    assert {r[1] for r in results if r[2]} == {"new"}
    assert {"old", "new"} <= {r[1] for r in results}
    rows = proxy.rows()
    assert len(rows) == len(results) and all(r.outcome == "ok" for r in rows)
    assert {r.locality for r in rows} == {"local"}


def test_an_invalid_reload_under_load_changes_nothing(
    proxy_factory: Any, fake_local: FakeUpstream, memory_audit: MemoryAuditStore, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ONE_LOCAL_POLICY.format(name="old", url=fake_local.base_url))
    router = Router.from_policy(path, audit=memory_audit, provider_factory=provider_factory)
    proxy: LiveProxy = proxy_factory(router=router)
    path.write_text("version: 1\ndestinations: {}\nrules: nonsense\n")
    statuses: list[int] = []

    def worker() -> None:
        with proxy.client() as client:
            for _ in range(20):
                statuses.append(
                    client.post(
                        "/v1/chat/completions",
                        json={"messages": [{"role": "user", "content": "x"}]},
                    ).status_code
                )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    with proxy.client() as client:
        refused = client.post("/admin/reload", headers=proxy.admin_headers())
    for t in threads:
        t.join(30)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "policy_error"
    assert statuses == [200] * 80


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``llm-localfirst serve`` in a subprocess; its log lines arrive on a queue."""

    def __init__(self, policy: Path, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llm_localfirst.cli",
                "--policy",
                str(policy),
                "serve",
                "--port",
                str(port),
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put("")

    def wait_for(self, needle: str, timeout: float = 8) -> str:
        """The first new log line containing ``needle`` (bounded wait)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {needle!r} in the log: {''.join(self.log)}") from None
            self.log.append(line)
            if needle in line:
                return line
            assert line, f"serve exited before logging {needle!r}: {''.join(self.log)}"

    def chat(self) -> httpx2.Response:
        with httpx2.Client(timeout=10, trust_env=False) as client:
            return client.post(
                f"http://127.0.0.1:{self.port}/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "zq-private-words"}]},
            )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX")
def test_sighup_reloads_the_policy_of_a_running_server(
    fake_local: FakeUpstream, other_local: FakeUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ONE_LOCAL_POLICY.format(name="old", url=fake_local.base_url))
    server = ServeProcess(path, _free_port(), dict(os.environ))
    try:
        server.wait_for("Application startup complete")
        assert server.chat().headers["x-lf-destination"] == "old"

        path.write_text("version: 1\nrules: [oops\n")
        server.proc.send_signal(signal.SIGHUP)
        assert "previous policy stays active" in server.wait_for("rejected")
        assert server.chat().headers["x-lf-destination"] == "old"

        path.write_text(ONE_LOCAL_POLICY.format(name="new", url=other_local.base_url))
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("policy reloaded")
        assert server.chat().headers["x-lf-destination"] == "new"
    finally:
        code = server.stop()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says so.
    assert code in (0, -signal.SIGTERM)
    assert "zq-private-words" not in "".join(server.log)  # prompts are never logged
    store = open_store(None, data_dir=Path(os.environ["LF_DATA_DIR"]))
    try:  # the lifespan shutdown flushed every row before the process ended
        rows = store.query(AuditFilter(face="proxy"))
    finally:
        store.close()
    assert [r.destination for r in rows] == ["new", "old", "old"]
