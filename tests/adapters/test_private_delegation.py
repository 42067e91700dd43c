"""Pydantic AI and LangChain directors name data (``documents``, ``paths``); the worker reads it.

The director (a scripted model standing in for a cloud model) never holds the
text: the tool call carries names, the local fake receives the file text, the
"cloud" fake receives nothing, and the director reads only the gated answer.
The three faces share one argument model, :class:`DelegateArgs`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from pydantic_ai import Agent

from llm_localfirst import Router
from llm_localfirst.adapters.langchain import WorkerTool, worker_tool
from llm_localfirst.adapters.pydantic_ai import worker_toolset
from llm_localfirst.agents.arguments import DelegateArgs
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy
from tests.adapters.conftest import ScriptedChatModel, delegation_rows, sent_texts, tool_call
from tests.adapters.test_pydantic_ai import Director
from tests.agents.documents import write_docx, write_pdf

pytestmark = pytest.mark.anyio

CONTRACT = "Initech agreement. Renewal date 2028-01-15. Signed by bill.lumbergh@initech.com."
ANSWER = "initech.pdf renews 2028-01-15 (bill.lumbergh@initech.com)."


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    root.mkdir()
    write_pdf(root / "initech.pdf", [CONTRACT])
    write_docx(root / "hooli.docx", ["Hooli agreement, renews 2029-06-30."])
    return root


@pytest.fixture
def rooted(
    folder: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> Iterator[Router]:
    data = offline_policy(fake_local, fake_cloud).model_dump()
    data["worker"] = {"roots": [str(folder)]}
    router = Router(policy_from_data(data), audit=memory_audit, probe_ttl=0.001)
    yield router
    router.close()


def test_every_face_shows_the_one_argument_model() -> None:
    schema = DelegateArgs.model_json_schema(by_alias=True)
    assert {
        "task",
        "source",
        "paths",
        "documents",
        "task_kind",
        "schema",
        "labels",
        "target_language",
        "max_tokens",
    } == set(schema["properties"])
    assert WorkerTool.model_fields["args_schema"].default is DelegateArgs


async def test_a_pydantic_ai_director_passes_paths_and_reads_only_the_redacted_answer(
    rooted: Router,
    folder: Path,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    fake_local.reply = ANSWER
    director = Director(
        {"task": "List renewal dates", "paths": ["*.pdf", "hooli.docx"], "task_kind": "summarize"},
        answer="Initech renews in 2028.",
    )
    agent = Agent(director.model, toolsets=[worker_toolset(rooted)])
    result = await agent.run("When do my contracts renew?")
    assert result.output == "Initech renews in 2028."
    assert director.info is not None
    (tool,) = director.info.function_tools
    assert {"paths", "documents"} <= set(tool.parameters_json_schema["properties"])
    sent = sent_texts(fake_local.model_calls())
    assert "Renewal date 2028-01-15" in sent and "Hooli agreement" in sent
    assert fake_cloud.model_calls() == []
    (returned,) = director.tool_returns()
    assert returned.content == "initech.pdf renews 2028-01-15 ([EMAIL])."
    assert returned.metadata["redacted"] == {"email": 1}
    assert returned.metadata["files"] == ["initech.pdf", "hooli.docx"]
    everything_the_director_saw = json.dumps([str(m) for m in director.requests])
    assert "Renewal date 2028-01-15" not in everything_the_director_saw
    assert "bill.lumbergh" not in everything_the_director_saw
    (row,) = delegation_rows(rooted, memory_audit)
    assert (row.metadata["delegation"], row.metadata["files"]) == ("paths", "2")
    assert row.metadata["via"] == "pydantic_ai"


async def test_a_pydantic_ai_director_names_a_registered_document(
    router: Router, tmp_path: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    write_pdf(tmp_path / "q3.pdf", ["Q3 revenue grew 12 percent."])
    director = Director({"task": "Summarize", "documents": ["q3-report"]})
    toolset = worker_toolset(router, documents={"q3-report": tmp_path / "q3.pdf"})
    await Agent(director.model, toolsets=[toolset]).run("How was Q3?")
    assert director.info is not None
    (tool,) = director.info.function_tools
    assert "q3-report (" in (tool.description or "") and "revenue" not in (tool.description or "")
    assert "Q3 revenue grew 12 percent." in sent_texts(fake_local.model_calls())
    assert fake_cloud.model_calls() == []


def langchain_director(args: dict[str, Any]) -> ScriptedChatModel:
    turns = [tool_call(args)]

    def script(messages: list[Any]) -> Any:
        from langchain_core.messages import AIMessage

        return turns.pop(0) if turns else AIMessage(content="done")

    return ScriptedChatModel(script=script)


def test_a_langchain_director_passes_paths_and_gets_the_redacted_answer(
    rooted: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.reply = ANSWER
    tool = worker_tool(rooted)
    model = langchain_director({"task": "List renewal dates", "paths": ["."]})
    bound = model.bind_tools([tool])
    reply = bound.invoke([HumanMessage("When do my contracts renew?")])
    (message,) = [tool.invoke(call) for call in reply.tool_calls]
    assert isinstance(message, ToolMessage) and message.status == "success"
    assert message.content == "initech.pdf renews 2028-01-15 ([EMAIL])."
    assert message.artifact["files"] == ["hooli.docx", "initech.pdf"]
    props = model.bound_tools[0]["function"]["parameters"]["properties"]
    assert {"paths", "documents", "schema"} <= set(props)
    assert "Renewal date 2028-01-15" in sent_texts(fake_local.model_calls())
    assert fake_cloud.model_calls() == []


async def test_a_langchain_director_names_a_document_and_a_path_outside_is_an_error_message(
    rooted: Router, fake_local: FakeUpstream
) -> None:
    tool = worker_tool(rooted, documents={"memo": "The memo says: ship on Friday."})
    assert "memo (" in tool.description and "Friday" not in tool.description
    ok = await tool.ainvoke(tool_call({"task": "Summarize", "documents": ["memo"]}).tool_calls[0])
    assert ok.status == "success"
    assert "ship on Friday" in sent_texts(fake_local.model_calls())
    refused = await tool.ainvoke(
        tool_call({"task": "Summarize", "paths": ["/etc/passwd"]}).tool_calls[0]
    )
    assert refused.status == "error" and "outside the allowed roots" in refused.content
    assert "Nothing was read or sent" in refused.content
