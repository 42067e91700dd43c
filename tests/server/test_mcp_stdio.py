"""``llm-localfirst mcp`` as a real stdio subprocess, launched the way Claude Desktop does.

The launch comes from ``claude_desktop_config.example.json`` (command, args, env);
only the command is swapped for this virtualenv's console script and ``LF_POLICY``
points at a policy over loopback ``FakeUpstream`` fakes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from mcp import Client, StdioServerParameters
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from llm_localfirst.audit import open_store
from llm_localfirst.testing import FakeUpstream, offline_policy

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "claude_desktop_config.example.json"
CONSOLE_SCRIPT = Path(sys.executable).parent / "llm-localfirst"
START_TIMEOUT = 90  # a cold interpreter importing the MCP SDK on a loaded CI machine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def example_entry() -> dict[str, Any]:
    config = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    entry: dict[str, Any] = config["mcpServers"]["llm-localfirst"]
    return entry


@pytest.fixture
def launch(
    tmp_path: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> tuple[str, list[str], dict[str, str]]:
    """(command, args, env) as in the example config, over the fakes."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(offline_policy(fake_local, fake_cloud).redacted()), encoding="utf-8"
    )
    entry = example_entry()
    env = {
        **entry["env"],
        "LF_POLICY": str(policy),
        "LF_DATA_DIR": str(tmp_path / "data"),
        "LF_FAKE_CLOUD_KEY": "test-key-not-secret",
    }
    return str(CONSOLE_SCRIPT), list(entry["args"]), env


def test_the_example_config_launches_the_console_script_with_lf_settings_only() -> None:
    entry = example_entry()
    # An absolute path: Claude Desktop does not start servers from your shell's PATH.
    command = Path(entry["command"])
    assert command.is_absolute() and command.name == "llm-localfirst"
    assert entry["args"] == ["mcp"]
    assert entry["env"] and all(k.startswith("LF_") for k in entry["env"])
    assert CONSOLE_SCRIPT.exists()


async def test_a_stdio_session_serves_tools_and_resources_and_fails_closed(
    launch: tuple[str, list[str], dict[str, str]],
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
) -> None:
    command, args, env = launch
    params = StdioServerParameters(command=command, args=args, env=env)
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    with anyio.fail_after(START_TIMEOUT):
        async with Client(params, mode="legacy") as client:
            assert client.server_info and client.server_info.name == "llm-localfirst"
            names = {t.name for t in (await client.list_tools()).tools}
            routed = await client.call_tool("route", {"prompt": "tidy", "kind": "bulk"})
            completed = await client.call_tool("complete", {"prompt": "Tidy", "kind": "bulk"})
            delegated = await client.call_tool(
                "delegate_to_worker",
                {"task": "Summarize", "source": "Words. " * 2500},
                progress_callback=on_progress,
            )
            fake_local.stop()
            refused = await client.call_tool(
                "complete", {"prompt": "Redact", "source": "SSN 078-05-1120", "sensitive": True}
            )
            decisions = json.loads(
                (await client.read_resource("audit://decisions?outcome=refused")).contents[0].text
            )  # type: ignore[union-attr]
    assert names == {"route", "complete", "delegate_to_worker"}
    assert routed.structured_content and routed.structured_content["target"] == "local"
    assert completed.structured_content and completed.structured_content["text"] == "echo: Tidy"
    assert delegated.structured_content and delegated.structured_content["chunks"] > 1
    assert len(progress) > 2
    assert refused.is_error and fake_cloud.model_calls() == []
    assert refused.meta and refused.meta["llm-localfirst/error"]["code"] == "local_unavailable"
    assert refused.meta["llm-localfirst/error"]["decision_id"] in {
        d["id"] for d in decisions["decisions"]
    }


def _message(method: str, params: dict[str, Any], id: int | None = None) -> bytes:
    data: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if id is not None:
        data["id"] = id
    return (json.dumps(data) + "\n").encode()


async def read_replies(stdout: Any, count: int) -> tuple[bytes, dict[int, Any]]:
    """Read a server's stdout until ``count`` replies (messages with an id) arrived."""
    raw = b""
    by_id: dict[int, Any] = {}
    async for data in stdout:
        raw += data
        for line in raw.rpartition(b"\n")[0].decode().splitlines():
            message = json.loads(line)
            if "id" in message:
                by_id[message["id"]] = message
        if len(by_id) >= count:
            break
    return raw, by_id


async def test_stdout_carries_nothing_but_protocol_messages(
    launch: tuple[str, list[str], dict[str, str]],
) -> None:
    command, args, env = launch
    script = b"".join(
        [
            _message(
                "initialize",
                {
                    "protocolVersion": LATEST_HANDSHAKE_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
                1,
            ),
            _message("notifications/initialized", {}),
            _message("tools/call", {"name": "route", "arguments": {"prompt": "hi"}}, 2),
            _message("tools/call", {"name": "complete", "arguments": {"prompt": "hi"}}, 3),
            _message("tools/call", {"name": "route", "arguments": {"kind": 5}}, 4),
            _message("resources/read", {"uri": "status://destinations"}, 5),
        ]
    )
    with anyio.fail_after(START_TIMEOUT):
        async with await anyio.open_process(
            [command, *args], env=env, stderr=subprocess.DEVNULL
        ) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            await proc.stdin.send(script)
            stdout, by_id = await read_replies(proc.stdout, 5)
            await proc.stdin.aclose()  # EOF: a stdio server exits when its client goes away
            assert await proc.wait() == 0
    lines = stdout.decode().splitlines()
    messages = [json.loads(line) for line in lines]  # every line is one JSON-RPC message
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    assert by_id[1]["result"]["serverInfo"]["name"] == "llm-localfirst"
    assert by_id[3]["result"]["structuredContent"]["text"] == "echo: hi"
    assert by_id[4]["result"]["isError"] is True


async def test_a_terminated_server_still_flushes_its_audit_log(
    launch: tuple[str, list[str], dict[str, str]], tmp_path: Path
) -> None:
    command, args, env = launch
    script = b"".join(
        [
            _message(
                "initialize",
                {
                    "protocolVersion": LATEST_HANDSHAKE_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
                1,
            ),
            _message("notifications/initialized", {}),
            _message("tools/call", {"name": "complete", "arguments": {"prompt": "hi"}}, 2),
        ]
    )
    with anyio.fail_after(START_TIMEOUT):
        async with await anyio.open_process(
            [command, *args], env=env, stderr=subprocess.DEVNULL
        ) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            await proc.stdin.send(script)
            _, by_id = await read_replies(proc.stdout, 2)
            proc.terminate()  # SIGTERM while the session is still open
            assert await proc.wait() == 130  # unwound like Ctrl-C, not killed
    audit_id = by_id[2]["result"]["structuredContent"]["audit_id"]
    store = open_store(None, data_dir=tmp_path / "data")
    try:
        record = store.get(audit_id)
    finally:
        store.close()
    assert record is not None and (record.face, record.outcome) == ("mcp", "ok")
