"""Private delegation end to end: the MCP SDK's client over stdio, with a roots callback.

The server is ``llm-localfirst mcp`` as a subprocess (as Claude Desktop launches it)
over loopback fakes; the client shares one folder as its root. Files under it reach
the local model, the "cloud" gets nothing, and the answer comes back redacted.
Outside the root, a symlink escape, ``..``, a FIFO and too many bytes are each a
tool error naming the path, with nothing sent anywhere.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import ListRootsResult, Root

from llm_localfirst.testing import FakeUpstream, offline_policy

pytestmark = pytest.mark.anyio

CONSOLE_SCRIPT = Path(sys.executable).parent / "llm-localfirst"
START_TIMEOUT = 90


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    root.mkdir()
    (root / "acme.md").write_text(
        "# Acme\nRenews 2027-03-01. Contact jane.doe@acme.com.\n", encoding="utf-8"
    )
    (root / "globex.txt").write_text("Globex renews 2026-12-31.", encoding="utf-8")
    (root / "bulk").mkdir()
    for name in ("one.txt", "two.txt"):
        (root / "bulk" / name).write_text("x" * 2500, encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("the outside secret", encoding="utf-8")
    (root / "escape.txt").symlink_to(outside / "secret.txt")
    os.mkfifo(root / "pipe.txt")
    return root


def launch(tmp_path: Path, local: FakeUpstream, cloud: FakeUpstream) -> StdioServerParameters:
    data = offline_policy(local, cloud).redacted()
    data["worker"] = {"max_bytes": 4000}
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(data), encoding="utf-8")
    env = {
        "LF_POLICY": str(policy),
        "LF_DATA_DIR": str(tmp_path / "data"),
        "LF_FAKE_CLOUD_KEY": "test-key-not-secret",
        "PATH": os.environ.get("PATH", ""),
    }
    return StdioServerParameters(command=str(CONSOLE_SCRIPT), args=["mcp"], env=env)


async def test_a_client_root_lets_the_worker_read_files_and_only_a_redacted_answer_returns(
    tmp_path: Path, contracts: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.reply = "acme.md renews 2027-03-01 (contact jane.doe@acme.com)."
    asked: list[bool] = []

    async def roots(context: Any) -> ListRootsResult:
        asked.append(True)
        return ListRootsResult(roots=[Root(uri=contracts.as_uri(), name="contracts")])

    refusals: dict[str, Any] = {}
    with anyio.fail_after(START_TIMEOUT), warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)  # roots: deprecated, still used
        async with Client(
            launch(tmp_path, fake_local, fake_cloud), mode="legacy", list_roots_callback=roots
        ) as client:
            tool = next(
                t for t in (await client.list_tools()).tools if t.name == "delegate_to_worker"
            )
            ok = await client.call_tool(
                "delegate_to_worker",
                {
                    "task": "List every contract's renewal date",
                    "task_kind": "summarize",
                    "paths": [str(contracts / "acme.md"), "globex.txt"],
                },
            )
            for name, path in {
                "outside": str(tmp_path / "outside" / "secret.txt"),
                "dotdot": "../outside/secret.txt",
                "symlink": "escape.txt",
                "fifo": "pipe.txt",
                "bytes": "bulk",
            }.items():
                refusals[name] = await client.call_tool(
                    "delegate_to_worker", {"task": "Summarize", "paths": [path]}
                )
            savings = json.loads((await client.read_resource("audit://savings")).contents[0].text)  # type: ignore[union-attr]
    assert {"paths", "documents", "task", "source"} <= set(tool.input_schema["properties"])
    assert asked
    assert not ok.is_error and ok.structured_content is not None
    out = ok.structured_content
    assert out["text"] == "acme.md renews 2027-03-01 (contact [EMAIL])."
    assert out["redacted"] == {"email": 1} and out["files"] == ["acme.md", "globex.txt"]
    (call,) = fake_local.model_calls()
    sent = str(call.body["messages"][-1]["content"])
    assert "Renews 2027-03-01" in sent and "Globex renews 2026-12-31" in sent
    assert "=== File: acme.md ===" in sent and str(contracts) not in sent
    assert fake_cloud.model_calls() == []
    for name, result in refusals.items():
        assert result.is_error, name
        detail = result.meta["llm-localfirst/error"]  # type: ignore[index]
        assert (detail["code"], detail["param"]) == ("source_refused", "paths"), name
    text = {n: r.content[0].text for n, r in refusals.items()}  # type: ignore[union-attr]
    assert "outside the allowed roots" in text["outside"]
    assert "'..' leads outside" in text["dotdot"]
    assert "symlink" in text["symlink"] and "escape.txt" in text["symlink"]
    assert "FIFO" in text["fifo"] and "more than 4000 bytes" in text["bytes"]
    assert "the outside secret" not in json.dumps(text)
    assert len(fake_local.model_calls()) == 1 and fake_cloud.model_calls() == []
    delegation = savings["delegation"]
    assert delegation["by_reference"]["delegations"] == 1
    assert delegation["by_reference"]["files"] == 2
    assert delegation["cloud_tokens_saved"] > 0


async def test_a_client_without_roots_gets_a_refusal_that_says_how_to_configure_one(
    tmp_path: Path, contracts: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    with anyio.fail_after(START_TIMEOUT):
        async with Client(launch(tmp_path, fake_local, fake_cloud), mode="legacy") as client:
            result = await client.call_tool(
                "delegate_to_worker", {"task": "Summarize", "paths": [str(contracts / "acme.md")]}
            )
    assert result.is_error
    message = result.content[0].text  # type: ignore[union-attr]
    assert "LF_WORKER_ROOTS" in message and "Nothing was read or sent" in message
    assert fake_local.model_calls() == [] and fake_cloud.model_calls() == []


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_client_roots_work_on_handshake_and_stateless_protocol_versions(
    mode: str, contracts: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    from llm_localfirst import Router
    from llm_localfirst.server.mcp import build_server
    from llm_localfirst.testing import MemoryAuditStore

    async def roots(context: Any) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=contracts.as_uri())])

    router = Router(offline_policy(fake_local, fake_cloud), audit=MemoryAuditStore())
    try:
        with anyio.fail_after(30), warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            async with Client(build_server(router), mode=mode, list_roots_callback=roots) as client:
                result = await client.call_tool(
                    "delegate_to_worker", {"task": "Summarize", "paths": ["globex.txt"]}
                )
    finally:
        await router.aclose()
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["files"] == ["globex.txt"]
    assert "Globex renews" in str(fake_local.model_calls()[0].body)
    assert fake_cloud.model_calls() == []
