"""A budget held across instances: two ``serve`` processes on one audit store, 64 clients.

Invariant (ARCHITECTURE.md): a budget shared by several instances is never overshot by
more than the reservations in flight. Every client sets ``max_tokens`` and the fake
cloud honours it, so each reservation is an upper bound of its call's cost and the
promised bound is the limit itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml

from llm_localfirst.audit import AuditFilter, open_store
from llm_localfirst.audit.budget_store import budget_store_for
from llm_localfirst.budget import period_start
from llm_localfirst.testing import FakeUpstream
from tests.audit.conftest import postgres_server_url, postgres_url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

LIMIT_MICROS = 18_000  # about 20 calls of 900 micro-USD
CLIENTS = 64
PER_CLIENT = 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def cloud() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="ok") as fake:  # 8 prompt + 1 completion tokens per call
        yield fake


@pytest.fixture
def local() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="local") as fake:
        yield fake


def _policy(local: FakeUpstream, cloud: FakeUpstream, on_exceeded: str) -> dict[str, Any]:
    return {
        "version": 1,
        "destinations": {
            "local": {
                "provider": "openai",
                "base_url": local.base_url,
                "model": "l",
                "locality": "local",
            },
            "haiku": {
                "provider": "openai",
                "base_url": cloud.base_url,
                "model": "c",
                "locality": "cloud",
                "api_key_env": "LF_FAKE_CLOUD_KEY",
                "price": {"input": 100, "output": 100},  # 100 micro-USD per token
            },
        },
        "budgets": [
            {
                "name": "team",
                "period": "month",
                "limit_usd": LIMIT_MICROS / 1e6,
                "on_exceeded": on_exceeded,
            }
        ],
        "default": {"to": ["haiku"]},
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def _serve(env: dict[str, str]) -> AsyncIterator[str]:
    """One ``llm-localfirst serve`` process; yields its URL once uvicorn says it listens."""
    port = _free_port()
    command = [sys.executable, "-m", "llm_localfirst", "serve", "--port", str(port)]
    async with await anyio.open_process(command, env=env, stdout=subprocess.DEVNULL) as proc:
        assert proc.stderr is not None
        seen = b""
        async for data in proc.stderr:
            seen += data
            if b"Uvicorn running on" in seen or b"Application startup complete" in seen:
                break
        else:
            raise AssertionError(f"serve did not start: {seen.decode(errors='replace')}")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()  # graceful: pending budget settles finish before exit
            await proc.wait()


async def _run(
    url_env: str, tmp_path: Path, local: FakeUpstream, cloud: FakeUpstream, on_exceeded: str
) -> list[tuple[int, str]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(_policy(local, cloud, on_exceeded)), encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LF_POLICY": str(policy),
        "LF_AUDIT_URL": url_env,
        "LF_DATA_DIR": str(tmp_path / "data"),
        "LF_FAKE_CLOUD_KEY": "k",
    }
    results: list[tuple[int, str]] = []
    with anyio.fail_after(120):
        async with AsyncExitStack() as stack:
            urls = [await stack.enter_async_context(_serve(env)) for _ in range(2)]
            limits = httpx2.Limits(max_connections=CLIENTS)
            client = await stack.enter_async_context(
                httpx2.AsyncClient(timeout=30, limits=limits, trust_env=False)
            )

            async def one_client(i: int) -> None:
                for j in range(PER_CLIENT):
                    url = urls[(i + j) % 2]
                    response = await client.post(
                        f"{url}/v1/chat/completions",
                        json={
                            "model": "auto",
                            "max_tokens": 1,
                            "messages": [{"role": "user", "content": "hello"}],
                        },
                    )
                    where = (
                        response.headers.get("x-lf-destination") or response.json()["error"]["code"]
                    )
                    results.append((response.status_code, where))

            async with anyio.create_task_group() as tg:
                for i in range(CLIENTS):
                    tg.start_soon(one_client, i)
    return results


def _check(
    url: str, results: list[tuple[int, str]], cloud: FakeUpstream, on_exceeded: str, data_dir: Path
) -> None:
    store = open_store(url, data_dir=data_dir)
    try:
        counters = budget_store_for(store).read("team", period_start("month"))
        rows = store.query(AuditFilter(limit=1000, destination="haiku", outcome="ok"))
    finally:
        store.close()
    spent, _, calls, reserved, _, in_flight = counters
    sent = sum(1 for status, where in results if status == 200 and where == "haiku")
    assert len(results) == CLIENTS * PER_CLIENT
    assert spent <= LIMIT_MICROS, f"overshoot: {spent} > {LIMIT_MICROS}"
    assert (reserved, in_flight) == (0, 0)
    assert calls == sent == len(rows) == len(cloud.model_calls())
    assert sum(int(r.metadata["lf.cost_usd_micros"]) for r in rows) == spent
    # About 20 fit. Reservations are upper bounds (2,200 micro-USD for a 900 call), so
    # while many are in flight a call can be turned away that would have fitted once
    # they settle: conservative, never over.
    assert 10 <= sent <= 20
    rest = [(status, where) for status, where in results if where != "haiku"]
    expected = (429, "budget_exceeded") if on_exceeded == "refuse" else (200, "local")
    assert rest and set(rest) == {expected}


@pytest.mark.parametrize("on_exceeded", ["refuse", "local"])
async def test_two_serve_processes_on_one_sqlite_file_never_overshoot_the_budget(
    tmp_path: Path, local: FakeUpstream, cloud: FakeUpstream, on_exceeded: str
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    results = await _run(url, tmp_path, local, cloud, on_exceeded)
    _check(url, results, cloud, on_exceeded, tmp_path)


@pytest.mark.postgres
@pytest.mark.parametrize("on_exceeded", ["refuse", "local"])
async def test_two_serve_processes_on_one_postgresql_never_overshoot_the_budget(
    tmp_path: Path,
    local: FakeUpstream,
    cloud: FakeUpstream,
    on_exceeded: str,
    postgres_url: str,  # noqa: F811
) -> None:
    results = await _run(postgres_url, tmp_path, local, cloud, on_exceeded)
    _check(postgres_url, results, cloud, on_exceeded, tmp_path)
