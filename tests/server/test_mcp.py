"""The MCP server driven by the SDK's in-memory client: tools, resources, errors, progress.

The model upstreams are ``llm_localfirst.testing.FakeUpstream`` fakes. The stdio
subprocess is tested in test_mcp_stdio.py, streamable HTTP in test_mcp_http.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from pydantic import TypeAdapter

from llm_localfirst import Router, Settings
from llm_localfirst.agents import DELEGATE_DESCRIPTION
from llm_localfirst.audit import AuditFilter, AuditRecord, SQLiteAuditStore
from llm_localfirst.server.mcp import build_server
from llm_localfirst.server.mcp.tools import ERROR_META
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def connect(router: Router, **kwargs: Any) -> AsyncIterator[Client]:
    """An in-memory client session on a server built for ``router``."""
    try:
        with anyio.fail_after(30):
            async with Client(build_server(router), **kwargs) as client:
                yield client
    finally:
        await router.aclose()  # close the pooled clients opened on this event loop


def rows(router: Router, store: MemoryAuditStore) -> list[AuditRecord]:
    router.flush()
    return list(reversed(store.query(AuditFilter(limit=1000))))


def error_of(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    assert result.meta is not None
    detail: dict[str, Any] = result.meta[ERROR_META]
    return detail


async def read_json(client: Client, uri: str) -> Any:
    result = await client.read_resource(uri)
    (content,) = result.contents
    assert content.mime_type == "application/json"
    return json.loads(content.text)  # type: ignore[union-attr]


def small_window(policy: Any, window: int = 1024) -> Any:
    data = policy.model_dump()
    data["destinations"]["local"]["context_window"] = window
    return type(policy).model_validate(data)


# ------------------------------------------------------------------ listing


async def test_tools_carry_descriptions_for_the_calling_model_and_output_schemas(
    router: Router,
) -> None:
    async with connect(router) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"route", "complete", "delegate_to_worker"}
    assert tools["delegate_to_worker"].description == DELEGATE_DESCRIPTION
    assert "without calling any model" in (tools["route"].description or "")
    assert "sensitive=true" in (tools["complete"].description or "")
    for tool in tools.values():
        assert "Do not use" in (tool.description or "") or "prefer" in (tool.description or "")
        assert tool.output_schema and "audit_id" in tool.output_schema["properties"]
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    assert tools["delegate_to_worker"].input_schema["properties"]["task_kind"]["enum"] == [
        "summarize",
        "draft",
        "translate",
        "reformat",
        "extract",
        "classify",
        "freeform",
    ]
    assert tools["route"].annotations and tools["route"].annotations.read_only_hint


async def test_resources_and_templates_are_listed(router: Router) -> None:
    async with connect(router) as client:
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = {
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        }
    assert resources == {
        "audit://decisions",
        "audit://savings",
        "policy://current",
        "status://destinations",
    }
    assert templates == {
        "audit://decisions/{id}",
        "audit://decisions{?face,destination,outcome,locality,since,until,limit}",
    }


# ------------------------------------------------------------------ tools


async def test_route_is_a_dry_run_audited_with_face_mcp(
    router: Router,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    async with connect(router) as client:
        bulk = await client.call_tool("route", {"prompt": "tidy this", "kind": "bulk"})
        reason = await client.call_tool("route", {"prompt": "prove it", "kind": "reason"})
    assert not bulk.is_error and bulk.structured_content is not None
    assert bulk.structured_content["target"] == "local"
    assert bulk.structured_content["destination"] == "local"
    assert reason.structured_content and reason.structured_content["target"] == "cloud"
    assert fake_local.model_calls() == [] and fake_cloud.model_calls() == []
    first, second = rows(router, memory_audit)
    assert (first.id, first.face, first.endpoint, first.outcome) == (
        bulk.structured_content["audit_id"],
        "mcp",
        "route",
        "dry_run",
    )
    assert second.destination == "cloud"


async def test_route_refuses_an_explicit_cloud_model_for_a_sensitive_prompt(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    async with connect(router) as client:
        result = await client.call_tool(
            "route", {"prompt": "x", "sensitive": True, "model": "cloud"}
        )
    detail = error_of(result)
    assert detail["code"] == "privacy_violation" and detail["destination"] == "cloud"
    assert "Do not retry with a cloud model" in result.content[0].text  # type: ignore[union-attr]
    (row,) = rows(router, memory_audit)
    assert (row.id, row.outcome, row.face) == (detail["decision_id"], "refused", "mcp")


async def test_complete_runs_where_the_policy_says(
    router: Router,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    async with connect(router) as client:
        local = await client.call_tool(
            "complete", {"prompt": "Tidy", "source": "text", "kind": "bulk", "max_tokens": 50}
        )
        cloud = await client.call_tool("complete", {"prompt": "Prove it", "kind": "reason"})
    assert local.structured_content is not None and cloud.structured_content is not None
    assert local.content[0].text == local.structured_content["text"]  # type: ignore[union-attr]
    assert local.structured_content["target"] == "local"
    assert local.structured_content["tokens_in"] > 0
    assert cloud.structured_content["destination"] == "cloud"
    assert len(fake_local.model_calls()) == 1 and len(fake_cloud.model_calls()) == 1
    assert fake_local.model_calls()[0].body["max_tokens"] == 50
    assert [(r.face, r.endpoint, r.outcome) for r in rows(router, memory_audit)] == [
        ("mcp", "complete", "ok"),
        ("mcp", "complete", "ok"),
    ]


async def test_delegate_to_worker_runs_locally_with_progress_notifications(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(
        small_window(offline_policy(fake_local, fake_cloud)), audit=memory_audit, probe_ttl=0.001
    )
    source = "\n\n".join(
        f"Paragraph {i}. " + "Some words to summarise here. " * 12 for i in range(30)
    )
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    try:
        async with connect(router) as client:
            result = await client.call_tool(
                "delegate_to_worker",
                {"task": "Summarize", "source": source, "task_kind": "summarize"},
                progress_callback=on_progress,
            )
    finally:
        router.close()
    out = result.structured_content
    assert not result.is_error and out is not None
    assert out["chunks"] > 1 and out["destination"] == "local" and out["task_kind"] == "summarize"
    assert len(fake_local.model_calls()) == out["chunks"] + 1 and fake_cloud.model_calls() == []
    assert progress[0][2] == f"split the source into {out['chunks']} chunks"
    assert progress[-1][:2] == (out["chunks"] + 1, out["chunks"] + 1)
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)
    worker_rows = [
        r for r in rows(router, memory_audit) if r.face == "worker" and "delegation" not in r.tags
    ]
    assert sorted(r.id for r in worker_rows) == sorted(out["audit_ids"])  # map runs in parallel
    assert all(r.metadata["via"] == "mcp" for r in worker_rows)


async def test_progress_also_flows_over_json_rpc(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(small_window(offline_policy(fake_local)), audit=memory_audit)
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    try:
        async with connect(router, mode="legacy") as client:  # initialize handshake, JSON-RPC
            result = await client.call_tool(
                "delegate_to_worker",
                {"task": "Summarize", "source": "Words here. " * 1000},
                progress_callback=on_progress,
            )
    finally:
        router.close()
    assert not result.is_error and len(progress) >= 3 and progress == sorted(progress)


async def test_delegate_extract_and_classify_return_structured_data(
    router: Router, fake_local: FakeUpstream
) -> None:
    async with connect(router) as client:
        fake_local.reply = '{"total": 42}'
        extracted = await client.call_tool(
            "delegate_to_worker",
            {
                "task": "Extract the total",
                "source": "Total: 42 EUR",
                "task_kind": "extract",
                "schema": {"type": "object", "properties": {"total": {"type": "number"}}},
            },
        )
        fake_local.reply = "Billing."
        classified = await client.call_tool(
            "delegate_to_worker",
            {
                "task": "Classify",
                "source": "I was charged twice",
                "task_kind": "classify",
                "labels": ["bug", "billing"],
            },
        )
    assert extracted.structured_content and extracted.structured_content["data"] == {"total": 42}
    assert classified.structured_content and classified.structured_content["data"] == "billing"


# ------------------------------------------------------------------ fail closed


async def test_a_sensitive_call_with_local_down_is_a_tool_error_that_never_reaches_the_cloud(
    router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.stop()
    async with connect(router) as client:
        complete = await client.call_tool(
            "complete",
            {"prompt": "Redact this record", "source": "Jane, 078-05-1120", "sensitive": True},
        )
        delegated = await client.call_tool(
            "delegate_to_worker",
            {"task": "Summarize", "source": "payroll", "task_kind": "summarize"},
        )
        decisions = await read_json(client, "audit://decisions?outcome=refused")
        one = await read_json(client, f"audit://decisions/{error_of(complete)['decision_id']}")
        still_up = await client.call_tool("route", {"prompt": "hello", "kind": "reason"})
    assert fake_cloud.model_calls() == []
    for result in (complete, delegated):
        detail = error_of(result)
        assert detail["code"] == "local_unavailable"
        assert "nothing left this machine" in result.content[0].text  # type: ignore[union-attr]
    ids = {d["id"] for d in decisions["decisions"]}
    assert {error_of(complete)["decision_id"], error_of(delegated)["decision_id"]} <= ids
    assert one["outcome"] == "refused" and one["sensitive"] and one["face"] == "mcp"
    assert one["error_class"] == "LocalUnavailable"
    assert not still_up.is_error  # the server stays up after a refusal


async def test_a_worker_bound_to_a_cloud_destination_is_refused(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(offline_policy(fake_local, fake_cloud), audit=memory_audit)
    try:
        server = build_server(router, worker_destination="cloud")
        with anyio.fail_after(30):
            async with Client(server) as client:
                result = await client.call_tool(
                    "delegate_to_worker", {"task": "Summarize", "source": "x"}
                )
        await router.aclose()
    finally:
        router.close()
    assert error_of(result)["code"] == "privacy_violation"
    assert fake_local.model_calls() == [] and fake_cloud.model_calls() == []
    (row,) = rows(router, memory_audit)
    assert (row.face, row.endpoint, row.error_class) == ("mcp", "worker", "PrivacyViolation")


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("tool", "arguments", "param"),
    [
        ("route", {"kind": "fast"}, "kind"),
        ("route", {"sensitive": "maybe"}, "sensitive"),
        ("route", {"tags": 7}, "tags"),
        ("route", {"prompt": 12}, "prompt"),
        ("complete", {}, "prompt"),
        ("complete", {"prompt": "x", "max_tokens": "ten"}, "max_tokens"),
        ("complete", {"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ("delegate_to_worker", {"task": "x", "task_kind": "poem"}, "task_kind"),
        ("delegate_to_worker", {"task": "x", "schema": "not an object"}, "schema"),
        ("delegate_to_worker", {"task": "x", "labels": "a,b"}, "labels"),
    ],
)
async def test_arguments_of_the_wrong_type_are_refused_and_audited(
    tool: str,
    arguments: dict[str, Any],
    param: str,
    router: Router,
    fake_local: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    async with connect(router) as client:
        result = await client.call_tool(tool, arguments)
    detail = error_of(result)
    assert (detail["code"], detail["param"]) == ("invalid_request", param)
    assert "Invalid arguments" in result.content[0].text  # type: ignore[union-attr]
    assert fake_local.model_calls() == []
    (row,) = rows(router, memory_audit)
    assert (row.id, row.face, row.outcome, row.error_class) == (
        detail["decision_id"],
        "mcp",
        "error",
        "InvalidRequest",
    )


@pytest.mark.parametrize(
    ("arguments", "param", "message"),
    [
        (
            {"task": "x", "task_kind": "extract", "schema": {"type": "strnig"}},
            "schema",
            "not valid JSON Schema",
        ),
        (
            {"task": "x", "task_kind": "extract", "schema": {"required": "name"}},
            "schema",
            "not valid JSON Schema",
        ),
        (
            {"task": "x", "task_kind": "summarize", "schema": {"type": "object"}},
            "schema",
            "only used with task_kind 'extract'",
        ),
        ({"task": "x", "task_kind": "classify", "labels": ["one"]}, "labels", "between 2"),
        ({"task": "x", "task_kind": "translate"}, "target_language", "target_language"),
        ({"task": "   "}, "task", "non-empty"),
    ],
)
async def test_delegation_arguments_the_worker_refuses_are_tool_errors(
    arguments: dict[str, Any],
    param: str,
    message: str,
    router: Router,
    fake_local: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    async with connect(router) as client:
        result = await client.call_tool("delegate_to_worker", arguments)
    detail = error_of(result)
    assert detail["param"] == param and message in detail["message"]
    assert fake_local.model_calls() == []
    (row,) = rows(router, memory_audit)
    assert (row.face, row.endpoint, row.outcome) == ("worker", "worker", "error")


async def test_huge_sources_are_refused_before_any_model_call(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(
        offline_policy(fake_local),
        audit=memory_audit,
        settings=Settings.load(max_input_chars=10_000),
    )
    huge = "x" * 50_000
    try:
        async with connect(router) as client:
            complete = await client.call_tool("complete", {"prompt": "Tidy", "source": huge})
            delegated = await client.call_tool(
                "delegate_to_worker", {"task": "Summarize", "source": huge}
            )
    finally:
        router.close()
    for result in (complete, delegated):
        detail = error_of(result)
        assert detail["param"] == "source" and "limit is 10000" in detail["message"]
    assert fake_local.model_calls() == []
    assert {(r.face, r.outcome) for r in rows(router, memory_audit)} == {
        ("mcp", "error"),
        ("worker", "error"),
    }


async def test_an_unknown_model_name_is_refused(router: Router) -> None:
    async with connect(router) as client:
        result = await client.call_tool(
            "complete", {"prompt": "x", "model": "http://evil.example/v1"}
        )
    assert error_of(result)["code"] == "model_not_allowed"
    assert "URLs are never accepted" in result.content[0].text  # type: ignore[union-attr]


async def test_an_unknown_tool_is_a_protocol_level_tool_error(router: Router) -> None:
    async with connect(router) as client:
        result = await client.call_tool("rm_rf", {})
    assert result.is_error and "Unknown tool" in result.content[0].text  # type: ignore[union-attr]


async def test_a_crash_inside_a_tool_is_not_mistaken_for_bad_arguments(
    router: Router, memory_audit: MemoryAuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        return TypeAdapter(int).validate_python("not a number")  # a bug, not the caller's input

    monkeypatch.setattr(router, "acomplete", broken)
    async with connect(router) as client:
        result = await client.call_tool("complete", {"prompt": "x"})
    assert result.is_error
    assert ERROR_META not in (result.meta or {})
    assert result.content[0].text == "Error executing tool complete"  # type: ignore[union-attr]
    assert rows(router, memory_audit) == []


# ------------------------------------------------------------------ resources


async def test_decisions_can_be_filtered_by_face_destination_and_outcome(
    router: Router, fake_local: FakeUpstream
) -> None:
    router.complete("from python", kind="bulk")  # another face, same store
    async with connect(router) as client:
        await client.call_tool("route", {"prompt": "x"})
        await client.call_tool("complete", {"prompt": "y", "kind": "reason"})
        everything = await read_json(client, "audit://decisions")
        mcp = await read_json(client, "audit://decisions?face=mcp")
        cloud = await read_json(client, "audit://decisions?destination=cloud&outcome=ok")
        dry = await read_json(client, "audit://decisions?outcome=dry_run&limit=1")
        local = await read_json(client, "audit://decisions?locality=local&face=python")
    assert everything["count"] == 3 and everything["decisions"][0]["face"] == "mcp"
    assert {d["face"] for d in mcp["decisions"]} == {"mcp"} and mcp["count"] == 2
    assert [d["endpoint"] for d in cloud["decisions"]] == ["complete"]
    assert dry["count"] == 1 and dry["filter"] == {"outcome": "dry_run"}
    assert local["count"] == 1
    assert all(
        "prompt" not in k or k in ("prompt_sha256", "prompt_chars")
        for d in everything["decisions"]
        for k in d
    )


async def test_one_decision_by_id_and_unknown_ids(router: Router) -> None:
    async with connect(router) as client:
        routed = await client.call_tool("route", {"prompt": "x"})
        assert routed.structured_content is not None
        audit_id = routed.structured_content["audit_id"]
        record = await read_json(client, f"audit://decisions/{audit_id}")
        for bad in ("01a2068b-0000-7000-8000-000000000000", "not-an-id", "..%2F..%2Fetc"):
            with pytest.raises(MCPError) as info:
                await client.read_resource(f"audit://decisions/{bad}")
            assert info.value.error.code == -32602
    assert record["id"] == audit_id and record["outcome"] == "dry_run"


@pytest.mark.parametrize(
    "query",
    ["face=robot", "outcome=great", "limit=0", "limit=abc", "since=yesterday", "locality=moon"],
)
async def test_bad_decision_filters_are_invalid_params(router: Router, query: str) -> None:
    async with connect(router) as client:
        with pytest.raises(MCPError) as info:
            await client.read_resource(f"audit://decisions?{query}")
    assert info.value.error.code == -32602 and query.split("=")[0] in info.value.error.message


async def test_decisions_made_by_another_process_on_the_machine_are_visible(
    fake_local: FakeUpstream, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    writer = Router(offline_policy(fake_local), settings=Settings.load(audit_url=url))
    reader = Router(offline_policy(fake_local), settings=Settings.load(audit_url=url))
    try:
        made = writer.complete("written by the proxy or a script", kind="bulk")
        writer.flush()
        async with connect(reader) as client:
            decisions = await read_json(client, "audit://decisions")
    finally:
        writer.close()
        reader.close()
    assert [d["id"] for d in decisions["decisions"]] == [made.audit_id]
    assert isinstance(writer.audit, SQLiteAuditStore)


async def test_savings_policy_and_status_resources(
    router: Router, fake_local: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LF_FAKE_CLOUD_KEY", "sk-very-secret-value")
    async with connect(router) as client:
        await client.call_tool("delegate_to_worker", {"task": "Summarize", "source": "x" * 800})
        savings = await read_json(client, "audit://savings")
        policy = await read_json(client, "policy://current")
        raw_policy = (await client.read_resource("policy://current")).contents[0]
        status = await read_json(client, "status://destinations")
    assert savings["requests"] == 1 and savings["tokens"] > 0
    assert savings["reference"]["destination"] == "cloud" and savings["cloud_cost_usd"] > 0
    assert savings["by_face"] == {
        "worker": {
            "requests": 1,
            "tokens_in": savings["tokens_in"],
            "tokens_out": savings["tokens_out"],
        }
    }
    assert set(policy["policy"]["destinations"]) == {"local", "cloud"}
    assert policy["policy"]["destinations"]["cloud"]["api_key_env"] == "LF_FAKE_CLOUD_KEY"
    assert "sk-very-secret-value" not in raw_policy.text  # type: ignore[union-attr]
    assert status["destinations"]["local"]["up"] is True
    assert status["destinations"]["local"]["locality"] == "local" and status["local"] == ["local"]


async def test_urls_in_the_policy_lose_query_strings(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    data = offline_policy(fake_local).model_dump()
    data["destinations"]["local"]["base_url"] = fake_local.base_url + "?key=abc123"
    router = Router(type(offline_policy(fake_local)).model_validate(data), audit=memory_audit)
    try:
        async with connect(router) as client:
            policy = await read_json(client, "policy://current")
    finally:
        router.close()
    assert policy["policy"]["destinations"]["local"]["base_url"] == fake_local.base_url
