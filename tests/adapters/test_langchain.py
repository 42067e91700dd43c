"""The LangChain adapter: the worker tool inside a small agent loop.

The director is :class:`~tests.adapters.conftest.ScriptedChatModel`, a chat model
with ``bind_tools`` that emits the tool calls a test scripts and records every
conversation it is sent. The loop is LangChain's canonical one: invoke the model,
run each tool call, append the ``ToolMessage``, until the model answers.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool

from llm_localfirst import ModelNotAllowed, PrivacyViolation, Router
from llm_localfirst.adapters.langchain import DelegateArgs, WorkerTool, worker_tool
from llm_localfirst.agents import DELEGATE_DESCRIPTION, PARAMETER_DESCRIPTIONS, WorkerResult
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore
from tests.adapters.conftest import (
    SOURCE,
    ScriptedChatModel,
    audit_rows,
    made_cloud,
    sent_texts,
    tool_call,
)

pytestmark = pytest.mark.anyio

TASK = "Summarize for the on-call engineer in one sentence"
MAX_TURNS = 5


def director(*calls: dict[str, Any], answer: str = "All done.") -> ScriptedChatModel:
    """Asks for ``calls`` one per turn, then answers."""
    queue = list(calls)

    def script(messages: list[BaseMessage]) -> AIMessage:
        if queue:
            return tool_call(queue.pop(0), call_id=f"call_{len(messages)}")
        return AIMessage(content=answer)

    return ScriptedChatModel(script=script)


def run_loop(model: ScriptedChatModel, tool: BaseTool, question: str) -> list[BaseMessage]:
    bound = model.bind_tools([tool])
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(MAX_TURNS):
        reply = bound.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        messages.extend(tool.invoke(call) for call in reply.tool_calls)
    raise AssertionError("the loop did not end")


async def arun_loop(model: ScriptedChatModel, tool: BaseTool, question: str) -> list[BaseMessage]:
    bound = model.bind_tools([tool])
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(MAX_TURNS):
        reply = await bound.ainvoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        messages.extend([await tool.ainvoke(call) for call in reply.tool_calls])
    raise AssertionError("the loop did not end")


def tool_messages(model: ScriptedChatModel) -> list[ToolMessage]:
    """The tool results the director was sent (each at the end of the next conversation)."""
    return [c[-1] for c in model.conversations[1:] if isinstance(c[-1], ToolMessage)]


# ------------------------------------------------------------------ delegation


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_director_loop_delegates_source_text_to_the_local_model_only(
    mode: str,
    arouter: Router,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    fake_local.reply = "Payments timed out for 12 minutes; Ana is fixing it."
    seen: list[tuple[str, WorkerResult]] = []
    tool = worker_tool(arouter, on_delegate=lambda task, result: seen.append((task, result)))
    model = director(
        {"task": TASK, "source": SOURCE, "task_kind": "summarize"}, answer="Ana is fixing payments."
    )

    if mode == "sync":
        messages = run_loop(model, tool, "What happened?")
    else:
        messages = await arun_loop(model, tool, "What happened?")

    assert messages[-1].content == "Ana is fixing payments."
    (call,) = fake_local.model_calls()
    assert SOURCE in sent_texts([call]) and fake_cloud.model_calls() == []
    (returned,) = tool_messages(model)  # what the director read on its next turn
    assert returned.status == "success" and returned.name == "delegate_to_worker"
    assert returned.content == "Payments timed out for 12 minutes; Ana is fixing it."
    ((task, result),) = seen
    assert task == TASK and result.destination == "local"
    assert returned.artifact == result.to_dict()  # for the application, not the model
    (row,) = audit_rows(arouter, memory_audit)
    assert (row.face, row.locality, row.metadata["via"]) == ("worker", "local", "langchain")


def test_the_tool_carries_the_shared_description_and_an_args_schema(router: Router) -> None:
    tool = worker_tool(router)
    model = ScriptedChatModel(script=lambda messages: AIMessage(content="hi"))
    model.bind_tools([tool])
    (bound,) = model.bound_tools
    function = bound["function"]
    assert isinstance(tool, WorkerTool) and tool.args_schema is DelegateArgs
    assert (function["name"], function["description"]) == (
        "delegate_to_worker",
        DELEGATE_DESCRIPTION,
    )
    properties = function["parameters"]["properties"]
    assert {name: p["description"] for name, p in properties.items()} == PARAMETER_DESCRIPTIONS
    assert function["parameters"]["required"] == ["task"]
    assert properties["task_kind"]["enum"][0] == "summarize"


def test_invoked_with_plain_arguments_it_returns_the_answer_text(
    router: Router, fake_local: FakeUpstream
) -> None:
    tool = worker_tool(router)
    answer = tool.invoke({"task": "Tidy", "source": "a b"})
    assert answer == "echo: Tidy\n\n<source>\na b\n</source>"
    assert tool.invoke("Write a haiku") == "echo: Write a haiku"  # a bare string is the task


def test_schema_travels_under_its_wire_name(router: Router, fake_local: FakeUpstream) -> None:
    fake_local.reply = '{"owner": "Ana"}'
    tool = worker_tool(router)
    message = tool.invoke(
        ToolCall(
            name="delegate_to_worker",
            id="c1",
            type="tool_call",
            args={
                "task": "Extract the owner",
                "source": SOURCE,
                "task_kind": "extract",
                "schema": {"type": "object", "required": ["owner"]},
            },
        )
    )
    assert message.status == "success" and message.artifact["data"] == {"owner": "Ana"}
    assert '"required":["owner"]' in sent_texts(fake_local.model_calls())


# ------------------------------------------------------------------ locality


def test_a_non_local_worker_is_refused_when_the_tool_is_built(router: Router) -> None:
    with pytest.raises(PrivacyViolation, match="'cloud' is a cloud destination"):
        worker_tool(router, worker_model="cloud")
    with pytest.raises(PrivacyViolation):
        worker_tool(router, worker_model=["local", "cloud"])
    with pytest.raises(ModelNotAllowed):
        worker_tool(router, worker_model="gpt-5")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_destination_made_non_local_by_a_reload_is_refused_at_call_time(
    mode: str, arouter: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    tool = worker_tool(arouter)
    arouter.reload(made_cloud(arouter.policy))
    model = director({"task": TASK, "source": SOURCE}, answer="I could not delegate.")

    if mode == "sync":
        messages = run_loop(model, tool, "Summarize")
    else:
        messages = await arun_loop(model, tool, "Summarize")

    assert messages[-1].content == "I could not delegate."
    (returned,) = tool_messages(model)
    assert returned.status == "error"
    assert str(returned.content).startswith(
        "Refused: this work must stay on the user's machine and the chosen destination is "
        "not local, so nothing was sent (audit id "
    )
    assert fake_local.model_calls() == [] and fake_cloud.model_calls() == []


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_local_model_that_is_down_is_a_tool_error_the_loop_survives(
    mode: str, arouter: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.stop()
    tool = worker_tool(arouter)
    model = director(
        {"task": TASK, "source": SOURCE},
        {"task": TASK, "source": SOURCE},
        answer="Your local model is down.",
    )

    if mode == "sync":
        messages = run_loop(model, tool, "Summarize")
    else:
        messages = await arun_loop(model, tool, "Summarize")

    assert messages[-1].content == "Your local model is down."
    returns = tool_messages(model)
    assert [r.status for r in returns] == ["error", "error"]
    for returned in returns:
        assert str(returned.content).startswith(
            "The local model is not available, so the task was not done and nothing left "
            "this machine (audit id "
        )
        assert returned.artifact is None
    assert fake_cloud.model_calls() == []


def test_invalid_arguments_come_back_as_a_message_the_director_can_fix(
    router: Router, fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    tool = worker_tool(router)
    model = director(
        {"task": TASK, "task_kind": "poem"},
        {"source": SOURCE, "max_tokens": 0},
        {"task": TASK, "task_kind": "Summarize"},
    )

    run_loop(model, tool, "Summarize")

    bad_kind, bad_shape, good = tool_messages(model)
    assert bad_kind.status == "error"
    assert str(bad_kind.content).startswith(
        "Invalid arguments (argument `task_kind`): unknown task_kind 'poem'; expected one of: "
        "summarize, draft, translate, reformat, extract, classify, freeform (audit id "
    )
    assert bad_shape.status == "error"
    assert bad_shape.content == (
        "Invalid arguments (argument `task`): task: Field required; max_tokens: Input should "
        "be greater than or equal to 1. Fix them and call again."
    )
    assert good.status == "success" and good.artifact["task_kind"] == "summarize"
    # The worker audits what it rejects; the schema's rejections never reached it.
    assert [r.outcome for r in audit_rows(router, memory_audit)] == ["error", "ok"]
    assert len(fake_local.model_calls()) == 1
