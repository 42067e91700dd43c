"""MCP input the SDK cannot parse still gets an answer; tags are capped; sessions stick."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import anyio
import httpx2
import pytest
from mcp import Client

from llm_localfirst import Router
from llm_localfirst.server.mcp import build_server
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore
from tests.server.test_mcp_http import INITIALIZE, MCP_HEADERS, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


BAD_REQUESTS = [
    ("params is a list", {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": [1, 2]}),
    (
        "params is a string",
        {"jsonrpc": "2.0", "id": "s", "method": "tools/call", "params": "route"},
    ),
    (
        "arguments 250 deep",
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "route", "arguments": {"prompt": "hi", "x": _deep(250)}},
        },
    ),
]


@pytest.fixture
def stdio_server(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LF_")}
    env["LF_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from llm_localfirst.cli import main; sys.exit(main())",
            "mcp",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    try:
        yield proc
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


def _exchange(
    proc: subprocess.Popen[bytes], message: dict[str, Any], timeout: float = 20
) -> dict[str, Any]:
    stdin: IO[bytes] | None = proc.stdin
    stdout: IO[bytes] | None = proc.stdout
    assert stdin is not None and stdout is not None
    stdin.write(json.dumps(message).encode() + b"\n")
    stdin.flush()
    ready, _, _ = select.select([stdout], [], [], timeout)
    assert ready, f"no answer within {timeout} s"
    answer: dict[str, Any] = json.loads(stdout.readline())
    return answer


def test_requests_the_sdk_cannot_read_get_an_error_answer_over_stdio(
    stdio_server: subprocess.Popen[bytes],
) -> None:
    assert "result" in _exchange(stdio_server, INITIALIZE)
    assert stdio_server.stdin is not None
    stdio_server.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
    for _, request in BAD_REQUESTS:
        answer = _exchange(stdio_server, request)
        assert answer["id"] == request["id"]
        assert answer["error"]["code"] == -32600
    after = _exchange(
        stdio_server,
        {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {"name": "route", "arguments": {"prompt": "x"}},
        },
    )
    assert after["id"] == 9 and "result" in after


@pytest.mark.parametrize(("name", "request_body"), BAD_REQUESTS)
async def test_requests_the_sdk_cannot_read_get_an_error_answer_over_http(
    router: Router, name: str, request_body: dict[str, Any]
) -> None:
    async with serving(router) as url, httpx2.AsyncClient(timeout=20) as http:
        started = await http.post(url, json=INITIALIZE, headers=MCP_HEADERS)
        session = {
            "mcp-session-id": started.headers.get("mcp-session-id", ""),
            "mcp-protocol-version": INITIALIZE["params"]["protocolVersion"],
        }
        with anyio.fail_after(20):
            answer = await http.post(
                url, content=json.dumps(request_body), headers={**MCP_HEADERS, **session}
            )
    assert answer.status_code in (200, 400)
    text = answer.text
    assert '"error"' in text and '"code":-32' in text.replace(" ", "")


# --------------------------------------------------------------------------- tags, session


async def test_tags_are_capped_like_the_proxy(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    async with Client(build_server(router)) as client:
        many = await client.call_tool(
            "route", {"prompt": "x", "tags": [f"t{i}" for i in range(33)]}
        )
        long = await client.call_tool("complete", {"prompt": "x", "tags": ["a" * 65]})
        fine = await client.call_tool("route", {"prompt": "x", "tags": ["pii"]})
    router.flush(10)
    assert many.is_error and long.is_error and not fine.is_error
    assert "32 tags" in many.content[0].text or "tags" in str(many.meta)
    rows = memory_audit.query(
        __import__("llm_localfirst.audit", fromlist=["AuditFilter"]).AuditFilter(limit=10)
    )
    assert sum(r.outcome == "error" for r in rows) == 2
    assert all(len(r.tags) <= 32 for r in rows)


async def test_an_mcp_session_marked_sensitive_stays_sensitive(
    router: Router, fake_cloud: FakeUpstream
) -> None:
    # A session exists on the handshake protocol versions (stateless ones have none).
    async with Client(build_server(router), mode="legacy") as client:
        await client.call_tool("route", {"prompt": "first", "sensitive": True})
        marked = await client.call_tool("complete", {"prompt": "first", "sensitive": True})
        later = await client.call_tool("complete", {"prompt": "second", "kind": "reason"})
    async with Client(build_server(router), mode="legacy") as other:
        fresh = await other.call_tool("complete", {"prompt": "third", "kind": "reason"})
    assert not marked.is_error and marked.structured_content is not None
    assert later.structured_content is not None and fresh.structured_content is not None
    assert later.structured_content["target"] == "local"
    assert later.structured_content["sensitive"] is True
    assert fresh.structured_content["target"] == "cloud"
    assert len(fake_cloud.model_calls()) == 1


async def test_a_resent_prompt_stays_sensitive_on_the_stateless_protocol(
    router: Router, fake_cloud: FakeUpstream
) -> None:
    async with Client(build_server(router)) as client:
        await client.call_tool("complete", {"prompt": "my private note", "sensitive": True})
        again = await client.call_tool("complete", {"prompt": "my private note", "kind": "reason"})
    assert again.structured_content is not None
    assert again.structured_content["target"] == "local"
    assert fake_cloud.model_calls() == []
