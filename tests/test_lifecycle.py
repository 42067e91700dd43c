"""lifecycle.py and the small Router: typed entry points, one audit row from one place.

The upstreams are ``llm_localfirst.testing.FakeUpstream`` loopback fakes; the MCP
route is driven through the SDK's in-memory client, the CLI through ``main``.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

import llm_localfirst
from llm_localfirst import InvalidRequest, PolicyError, PrivacyViolation, Request, Router
from llm_localfirst.audit import AuditFilter, AuditRecord
from llm_localfirst.cli import main
from llm_localfirst.policy import policy_from_data
from llm_localfirst.server.mcp import build_server
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy

PACKAGE = Path(llm_localfirst.__file__).parent
FACES = ("cli.py", "doctor.py", "server", "agents", "adapters")
USER_API = {
    "aclose",
    "acomplete",
    "add_listener",
    "astream",
    "audit",
    "budget",
    "close",
    "complete",
    "decide",
    "flush",
    "from_env",
    "from_policy",
    "health",
    "ledger",
    "lifecycle",
    "policy",
    "policy_source",
    "reload",
    "settings",
    "spend",
    "warm",
}


def rows(store: MemoryAuditStore, router: Router) -> list[AuditRecord]:
    router.flush()
    return list(reversed(store.query(AuditFilter(limit=100))))


def test_the_router_keeps_a_small_public_api(router: Router) -> None:
    public = {n for n in dir(router) if not n.startswith("_")}
    assert public == USER_API


@pytest.mark.parametrize("name", ["decide", "complete", "acomplete", "astream"])
def test_the_entry_points_take_typed_keyword_arguments_mirroring_request_build(name: str) -> None:
    params = inspect.signature(getattr(Router, name)).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
    build = inspect.signature(Request.build).parameters
    for field in (
        "source",
        "system",
        "messages",
        "kind",
        "model",
        "sensitive",
        "tags",
        "headers",
        "metadata",
        "ab_key",
        "max_tokens",
        "temperature",
        "extra",
        "session",
        "local_only",
        "face",
    ):
        assert params[field].kind is inspect.Parameter.KEYWORD_ONLY, field
        assert params[field].default == build[field].default, field
        assert params[field].annotation != "Any", field


def test_preview_decides_and_writes_one_dry_run_row(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    request = router.lifecycle.build("summarise this", face="cli", endpoint="route", kind="bulk")
    decision, audit_id = router.lifecycle.preview(request)
    (row,) = rows(memory_audit, router)
    assert decision.target == "local"
    assert (row.id, row.outcome, row.endpoint, row.face) == (audit_id, "dry_run", "route", "cli")
    assert row.destination == decision.destination


def test_a_refused_preview_writes_one_refused_row_and_names_it_on_the_error(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    request = router.lifecycle.build("x", sensitive=True, model="cloud", endpoint="route")
    with pytest.raises(PrivacyViolation) as caught:
        router.lifecycle.preview(request)
    (row,) = rows(memory_audit, router)
    assert row.outcome == "refused" and row.id == caught.value.decision_id
    assert row.sensitive and row.error_class == "PrivacyViolation"


def test_reject_writes_one_error_row_for_input_that_could_not_be_built(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    error = InvalidRequest("max_tokens must be a positive integer", param="max_tokens")
    audit_id = router.lifecycle.reject(
        face="proxy", endpoint="chat", error=error, kind="reason", model="gpt-x"
    )
    (row,) = rows(memory_audit, router)
    assert (row.id, row.outcome, row.kind, row.request_model) == (
        audit_id,
        "error",
        "reason",
        "gpt-x",
    )
    assert error.decision_id == audit_id and row.prompt_sha256 is None


def test_bad_input_to_the_python_api_is_audited_once(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    with pytest.raises(InvalidRequest):
        router.complete("")
    (row,) = rows(memory_audit, router)
    assert (row.outcome, row.endpoint, row.face) == ("error", "complete", "python")


def test_the_cli_route_and_the_mcp_route_audit_bad_input_the_same_way(
    tmp_path: Path,
    fake_local: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LF_MAX_INPUT_CHARS", "10")
    monkeypatch.setenv("LF_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    assert main(["route", "a prompt over ten characters"]) != 0
    capsys.readouterr()
    assert main(["audit", "tail", "--json"]) == 0
    (cli_row,) = json.loads(capsys.readouterr().out)

    store = MemoryAuditStore()
    router = Router(
        offline_policy(fake_local),
        audit=store,
        probe_ttl=60,
        settings=llm_localfirst.Settings(max_input_chars=10),
    )

    async def call() -> None:
        try:
            with anyio.fail_after(30):
                async with Client(build_server(router)) as client:
                    result = await client.call_tool(
                        "route", {"prompt": "a prompt over ten characters"}
                    )
                    assert result.is_error
        finally:
            await router.aclose()

    anyio.run(call)
    (mcp_row,) = rows(store, router)
    router.close()
    for field in ("outcome", "endpoint", "error_class", "sensitive", "destination"):
        assert cli_row[field] == getattr(mcp_row, field), field
    assert (cli_row["face"], mcp_row.face) == ("cli", "mcp")


def test_no_face_builds_or_emits_an_audit_row_itself() -> None:
    for face in FACES:
        path = PACKAGE / face
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            source = file.read_text(encoding="utf-8")
            assert "AuditRecord(" not in source, file
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Attribute):
                    assert not node.attr.startswith("record_") or node.attr in (
                        "record_failure",
                        "record_success",
                    ), (file, node.attr)


def test_no_module_outside_the_detectors_imports_a_private_name_from_another() -> None:
    # sensitivity/ shares helpers between detector modules by private name (its own
    # review item); the routing core and the faces must not.
    for file in sorted(PACKAGE.rglob("*.py")):
        if file.is_relative_to(PACKAGE / "sensitivity"):
            continue
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                private = [
                    a.name
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
                assert not private, (file, node.module, private)


def test_a_reload_whose_classifier_cannot_be_built_keeps_the_previous_policy(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    local = {
        "provider": "openai",
        "base_url": fake_local.base_url,
        "model": "m",
        "locality": "local",
    }
    classified = {
        "version": 1,
        "destinations": {"local": local},
        "default": {"to": ["local"]},
        "sensitivity": {
            "classifier": {
                "destination": "local",
                "labels": ["general", "medical"],
                "sensitive": ["medical"],
            }
        },
    }
    plain = {k: v for k, v in classified.items() if k != "sensitivity"}
    with Router(
        policy_from_data(classified), audit=memory_audit, classifier=lambda text: "general"
    ) as router:
        assert router.complete("hello").text == "echo: hello"
        before = (
            router.policy,
            router.health,
            router.spend,
            router.lifecycle.assessor,
            router.lifecycle.dispatcher.providers,
        )
        with pytest.raises(PolicyError, match="needs labels"):
            router.reload(policy_from_data(plain))
        after = (
            router.policy,
            router.health,
            router.spend,
            router.lifecycle.assessor,
            router.lifecycle.dispatcher.providers,
        )
        assert all(a is b for a, b in zip(before, after, strict=True))
        assert router.complete("again").text == "echo: again"


def test_the_taint_read_runs_on_the_event_loop_for_a_store_with_inline_reads(
    router: Router, memory_audit: MemoryAuditStore
) -> None:
    threads: list[threading.Thread] = []
    real = memory_audit.taint_match

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    memory_audit.taint_match = spy  # type: ignore[method-assign]

    async def main() -> None:
        try:
            with anyio.fail_after(10):
                await router.acomplete(messages=[{"role": "user", "content": "hi"}])
        finally:
            await router.aclose()

    asyncio.run(main())
    assert threads == [threading.main_thread()]  # no hop to a worker thread
