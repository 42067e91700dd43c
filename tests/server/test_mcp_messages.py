"""What the calling model reads when ``route`` or ``complete`` is refused or fails.

Each text must say what actually happened for the tool that was called (a dry run
never "did" a task; a refused model name is the caller's to fix, not the
application's) and what to do next. Driven with the SDK's in-memory client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from llm_localfirst import Router
from llm_localfirst.server.mcp import build_server
from llm_localfirst.server.mcp.tools import ERROR_META
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def connect(router: Router) -> AsyncIterator[Client]:
    try:
        with anyio.fail_after(30):
            async with Client(build_server(router)) as client:
                yield client
    finally:
        await router.aclose()


def text_of(result: CallToolResult) -> str:
    assert result.is_error, result
    (content,) = result.content
    return content.text  # type: ignore[union-attr]


async def call(router: Router, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    async with connect(router) as client:
        return await client.call_tool(tool, arguments)


@pytest.mark.parametrize("tool", ["route", "complete"])
async def test_a_model_off_the_allowlist_is_the_callers_to_fix(router: Router, tool: str) -> None:
    text = text_of(await call(router, tool, {"prompt": "hi", "model": "gpt-9"}))
    assert "not on the allowlist" in text and "Nothing was sent" in text
    assert 'model "auto"' in text
    assert "fixed by the application" not in text and "worker" not in text


async def test_a_sensitive_dry_run_with_local_down_says_it_would_be_refused(
    router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.stop()
    result = await call(router, "route", {"prompt": "redact this", "sensitive": True})
    text = text_of(result)
    assert text.startswith("This prompt would be refused")
    assert "task was not done" not in text
    assert "ollama serve" in text and "do not send the text to a cloud model" in text
    assert result.meta is not None and result.meta[ERROR_META]["code"] == "local_unavailable"


async def test_a_sensitive_completion_with_local_down_says_nothing_left_and_what_to_do(
    router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.stop()
    text = text_of(await call(router, "complete", {"prompt": "redact", "sensitive": True}))
    assert text.startswith("Not run") and "nothing left this machine" in text
    assert "ollama serve" in text


async def test_a_cloud_call_without_a_key_says_which_variable_to_set_and_not_to_retry(
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LF_FAKE_CLOUD_KEY")
    fake_local.stop()
    router = Router(offline_policy(fake_local, fake_cloud), audit=memory_audit, probe_ttl=30)
    try:
        text = text_of(await call(router, "complete", {"prompt": "summarise", "kind": "bulk"}))
    finally:
        router.close()
    assert "not configured: set LF_FAKE_CLOUD_KEY" in text
    assert "Calling again fails the same way" in text
    assert "the local model 'local' (unreachable" in text and "was skipped as down" in text
    assert fake_cloud.requests == []
