"""The Claude Desktop config that ``llm-localfirst mcp --print-config`` (and the demo) prints.

Claude Desktop starts MCP servers itself, outside any shell: no activated
virtualenv, no ``PATH`` of yours. The printed entry must therefore name the
server by an absolute path, and launching exactly that entry (command, args, env)
with the MCP SDK's stdio client must give a working server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from mcp import Client, StdioServerParameters

from llm_localfirst.cli import desktop_config, main
from llm_localfirst.testing import FakeUpstream, offline_policy

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90  # a cold interpreter importing the MCP SDK on a loaded machine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def printed_entry(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["mcp", "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    entry: dict[str, Any] = config["mcpServers"]["llm-localfirst"]
    return entry


def test_the_printed_config_names_the_server_by_an_absolute_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    entry = printed_entry(capsys)
    command = Path(entry["command"])
    assert command.is_absolute() and command.is_file()
    assert entry["args"][-1] == "mcp"
    assert all(name.startswith("LF_") for name in entry["env"])


def test_the_printed_config_carries_lf_settings_but_never_a_key(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    entry = desktop_config(
        {
            "LF_POLICY": str(policy),
            "LF_LOCAL_MODEL_ID": "llama3.2:3b",
            "ANTHROPIC_API_KEY": "sk-ant-secret",
            "LF_PROXY_KEYS": "k",
        }
    )
    env = entry["mcpServers"]["llm-localfirst"]["env"]
    assert env["LF_POLICY"] == str(policy.resolve())
    assert env["LF_LOCAL_MODEL_ID"] == "llama3.2:3b"
    assert "sk-ant-secret" not in json.dumps(entry) and "LF_PROXY_KEYS" not in env


def test_the_demo_prints_that_config() -> None:
    demo = (ROOT / "scripts" / "demo.sh").read_text(encoding="utf-8")
    assert "mcp --print-config" in demo


async def test_the_printed_config_launches_a_working_server_over_stdio(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
) -> None:
    entry = printed_entry(capsys)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(offline_policy(fake_local, fake_cloud).redacted()), encoding="utf-8"
    )
    # What a user adds to "env": their policy (here: over the loopback fakes) and data dir.
    env = {
        **entry["env"],
        "LF_POLICY": str(policy),
        "LF_DATA_DIR": str(tmp_path / "data"),
        "LF_FAKE_CLOUD_KEY": "test-key-not-secret",
    }
    params = StdioServerParameters(
        command=entry["command"], args=entry["args"], env=env, cwd=str(tmp_path)
    )
    with anyio.fail_after(START_TIMEOUT):
        async with Client(params, mode="legacy") as client:
            assert client.server_info and client.server_info.name == "llm-localfirst"
            names = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("complete", {"prompt": "Tidy", "kind": "bulk"})
    assert {"route", "complete", "delegate_to_worker"} <= names
    assert not result.is_error
    assert [c.path for c in fake_local.model_calls()] == ["/v1/chat/completions"]
