"""The MCP server over streamable HTTP: a real uvicorn on 127.0.0.1, Host/Origin checks, token.

In-process servers listen on a socket bound before they start, so a client can
connect at once (the kernel queues the connection) and no test waits by polling.
One test runs ``llm-localfirst mcp --transport http`` as a subprocess.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from llm_localfirst import ConfigError, Router
from llm_localfirst.server.mcp import build_server, http_app, http_server
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy

pytestmark = pytest.mark.anyio

TOKEN = "test-token-0123456789"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": LATEST_HANDSHAKE_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def serving(router: Router, *, token: str | None = None) -> AsyncIterator[str]:
    """Serve ``router`` over streamable HTTP on a free loopback port; yield the endpoint URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = http_server(build_server(router), host="127.0.0.1", port=port, token=token)
    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, [sock])
                try:
                    yield f"http://127.0.0.1:{port}/mcp"
                finally:
                    server.should_exit = True
    finally:
        sock.close()
        await router.aclose()


@asynccontextmanager
async def client_for(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Client]:
    """An MCP client session over streamable HTTP (the caller's HTTP client is closed here)."""
    async with (
        create_mcp_http_client(headers) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        yield client


async def post(url: str, headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, **headers})


async def test_tools_and_resources_work_over_streamable_http(
    router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with serving(router) as url, client_for(url) as client:
        routed = await client.call_tool("route", {"prompt": "x", "kind": "reason"})
        delegated = await client.call_tool(
            "delegate_to_worker",
            {"task": "Summarize", "source": "Words. " * 2500},
            progress_callback=on_progress,
        )
        fake_local.stop()
        refused = await client.call_tool(
            "delegate_to_worker", {"task": "Summarize", "source": "payroll"}
        )
        savings = json.loads((await client.read_resource("audit://savings")).contents[0].text)  # type: ignore[union-attr]
    assert routed.structured_content and routed.structured_content["target"] == "cloud"
    assert delegated.structured_content and delegated.structured_content["chunks"] > 1
    assert progress and progress == sorted(progress)
    assert refused.is_error and fake_cloud.model_calls() == []
    assert savings["by_face"]["worker"]["requests"] == len(
        delegated.structured_content["audit_ids"]
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "evil.example"}, 421),
        ({"host": "evil.example:8788"}, 421),
        ({"host": "127.0.0.1:1"}, 421),  # right address, wrong port: not this server
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "https://attacker.test:8788"}, 403),
        ({"origin": "null"}, 403),
    ],
)
async def test_a_host_or_origin_from_elsewhere_is_refused(
    router: Router, fake_local: FakeUpstream, headers: dict[str, str], status: int
) -> None:
    async with serving(router) as url:
        response = await post(url, headers)
        allowed = await post(url, {"origin": url.rsplit("/", 1)[0]})
    assert response.status_code == status
    assert allowed.status_code == 200  # a same-origin browser client is fine
    assert fake_local.model_calls() == []


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", TOKEN]
)
async def test_the_bearer_token_is_required_when_set(
    router: Router, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    async with serving(router, token=TOKEN) as url:
        refused = await post(url, headers)
        accepted = await post(url, {"authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert accepted.status_code == 200


async def test_the_auth_scheme_is_case_insensitive(router: Router) -> None:
    async with serving(router, token=TOKEN) as url:
        response = await post(url, {"authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200


async def test_a_client_with_the_token_gets_a_session(router: Router) -> None:
    async with (
        serving(router, token=TOKEN) as url,
        client_for(url, {"Authorization": f"Bearer {TOKEN}"}) as client,
    ):
        tools = await client.list_tools()
    assert {t.name for t in tools.tools} == {"route", "complete", "delegate_to_worker"}


async def test_host_checks_still_apply_with_a_valid_token(router: Router) -> None:
    async with serving(router, token=TOKEN) as url:
        response = await post(url, {"authorization": f"Bearer {TOKEN}", "host": "evil.example"})
    assert response.status_code == 421


def test_a_non_loopback_bind_needs_a_token(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(offline_policy(fake_local), audit=memory_audit)
    try:
        server = build_server(router)
        with pytest.raises(ConfigError, match="LF_MCP_TOKEN"):
            http_app(server, host="0.0.0.0", port=8788)
        http_app(server, host="0.0.0.0", port=8788, token=TOKEN)  # allowed with a token
    finally:
        router.close()


async def test_the_cli_serves_http_on_loopback_with_the_token_from_the_environment(
    tmp_path: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(offline_policy(fake_local, fake_cloud).redacted()), encoding="utf-8"
    )
    env = {
        "PATH": "",
        "LF_POLICY": str(policy),
        "LF_DATA_DIR": str(tmp_path / "data"),
        "LF_MCP_TOKEN": TOKEN,
        "LF_FAKE_CLOUD_KEY": "k",
    }
    command = [
        str(Path(sys.executable).parent / "llm-localfirst"),
        "mcp",
        "--transport",
        "http",
        "--port",
        "0",
    ]
    with anyio.fail_after(90):
        async with await anyio.open_process(command, env=env, stdout=subprocess.DEVNULL) as proc:
            assert proc.stderr is not None
            banner = b""
            async for data in proc.stderr:  # the server says where it listens once bound
                banner += data
                if b"\n" in banner:
                    break
            line = banner.decode().splitlines()[0]
            assert line.startswith("llm-localfirst MCP server on http://127.0.0.1:"), line
            url = line.split(" on ", 1)[1].split(" ", 1)[0]
            assert "(token required)" in line
            try:
                refused = await post(url, {})
                async with client_for(url, {"Authorization": f"Bearer {TOKEN}"}) as client:
                    result: Any = await client.call_tool("complete", {"prompt": "hi"})
            finally:
                proc.terminate()
                await proc.wait()
    assert refused.status_code == 401
    assert result.structured_content["text"] == "echo: hi"
    assert len(fake_local.model_calls()) == 1
