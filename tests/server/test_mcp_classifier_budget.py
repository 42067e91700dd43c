"""The classifier and budgets on the MCP face: ``route`` says what the classifier did,
a spent ``refuse`` budget is a tool error the model can read."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from llm_localfirst import Router
from llm_localfirst.policy import policy_from_data
from llm_localfirst.server.mcp import build_server
from llm_localfirst.server.mcp.tools import ERROR_META
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _router(local: FakeUpstream, cloud: FakeUpstream) -> Router:
    local.reply = lambda body: (
        "legal" if "contract" in str(body["messages"][-1]["content"]) else "general"
    )
    policy = policy_from_data(
        {
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
                },
            },
            "sensitivity": {
                "classifier": {
                    "destination": "local",
                    "labels": ["legal", "general"],
                    "sensitive": ["legal"],
                }
            },
            "budgets": [{"name": "one call", "period": "day", "limit_calls": 1}],
            "default": {"to": ["haiku"]},
        }
    )
    return Router(policy, audit=MemoryAuditStore(), probe_ttl=30)


async def test_route_says_plainly_that_the_classifier_called_the_local_model(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    router = _router(fake_local, fake_cloud)
    try:
        with anyio.fail_after(30):
            async with Client(build_server(router)) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                result: Any = await client.call_tool("route", {"prompt": "about the contract"})
    finally:
        await router.aclose()
    assert "classifier" in (tools["route"].description or "")
    out = result.structured_content
    assert out["classifier_label"] == "legal" and out["target"] == "local"
    assert "classifier:legal" in out["sensitive_reasons"]
    assert "called the local model 'local'" in out["classifier"]
    assert "called the local model 'local'" in result.content[0].text


async def test_a_spent_refuse_budget_is_a_tool_error(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    router = _router(fake_local, fake_cloud)
    try:
        with anyio.fail_after(30):
            async with Client(build_server(router)) as client:
                first: Any = await client.call_tool("complete", {"prompt": "hello"})
                second: Any = await client.call_tool("complete", {"prompt": "hello again"})
    finally:
        await router.aclose()
    assert not first.is_error and first.structured_content["destination"] == "haiku"
    assert second.is_error
    detail = second.meta[ERROR_META]
    assert detail["code"] == "budget_exceeded" and detail["budget"] == "one call"
    assert "budget 'one call' is spent" in second.content[0].text
