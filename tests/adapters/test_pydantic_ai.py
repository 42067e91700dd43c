"""The Pydantic AI adapter: a director agent delegating to the local worker.

Directors are Pydantic AI's ``FunctionModel`` (scripted tool calls; each function
call sees the whole conversation so far) and ``TestModel``. The local and cloud
models are loopback ``FakeUpstream`` fakes; the cloud fake must never be reached.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_ai import Agent, UnexpectedModelBehavior
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from llm_localfirst import LocalUnavailable, ModelNotAllowed, PrivacyViolation, Router
from llm_localfirst.adapters.pydantic_ai import WorkerToolset, attach_worker, worker_toolset
from llm_localfirst.agents import (
    DELEGATE_DESCRIPTION,
    DIRECTOR_GUIDANCE,
    PARAMETER_DESCRIPTIONS,
    WorkerResult,
)
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore
from tests.adapters.conftest import SOURCE, audit_rows, made_cloud, sent_texts

pytestmark = pytest.mark.anyio

TASK = "Summarize for the on-call engineer in one sentence"


class Director:
    """A ``FunctionModel`` director: makes the given tool calls, one per turn, then answers.

    ``requests`` keeps every conversation the director was sent, so a test can read
    the tool results it got back.
    """

    def __init__(self, *calls: dict[str, Any], answer: str = "All done.") -> None:
        self.calls = list(calls)
        self.answer = answer
        self.requests: list[list[ModelMessage]] = []
        self.info: AgentInfo | None = None
        self.model = FunctionModel(self.respond)

    def respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.requests.append(list(messages))
        self.info = info
        if self.calls:
            return ModelResponse(parts=[ToolCallPart("delegate_to_worker", self.calls.pop(0))])
        return ModelResponse(parts=[TextPart(self.answer)])

    def tool_returns(self) -> list[ToolReturnPart]:
        """The tool results the director read, in order (each at the head of the next turn)."""
        return [
            part
            for messages in self.requests[1:]
            for part in _last_request(messages).parts
            if isinstance(part, ToolReturnPart)
        ]


def _last_request(messages: list[ModelMessage]) -> ModelRequest:
    last = messages[-1]
    assert isinstance(last, ModelRequest)
    return last


# ------------------------------------------------------------------ delegation


async def test_a_function_model_director_delegates_source_text_to_the_local_model_only(
    arouter: Router,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    fake_local.reply = "Payments timed out for 12 minutes; Ana is fixing it."
    seen: list[tuple[str, WorkerResult]] = []
    director = Director(
        {"task": TASK, "source": SOURCE, "task_kind": "summarize"},
        answer="Payments are being fixed by Ana.",
    )
    agent = Agent(
        director.model,
        toolsets=[
            worker_toolset(arouter, on_delegate=lambda task, result: seen.append((task, result)))
        ],
    )

    result = await agent.run("What happened last night?")

    assert result.output == "Payments are being fixed by Ana."
    (call,) = fake_local.model_calls()
    assert SOURCE in sent_texts([call]) and call.body["model"] == "fake-local"
    assert fake_cloud.model_calls() == []
    (returned,) = director.tool_returns()
    assert (returned.tool_name, returned.outcome) == ("delegate_to_worker", "success")
    assert returned.content == "Payments timed out for 12 minutes; Ana is fixing it."
    ((task, worker_result),) = seen
    assert task == TASK and worker_result.text == returned.content
    assert (worker_result.destination, worker_result.task_kind) == ("local", "summarize")
    assert returned.metadata == worker_result.to_dict()  # for the application, not the model
    (row,) = audit_rows(arouter, memory_audit)
    assert (row.id, row.face, row.endpoint, row.locality) == (
        worker_result.audit_id,
        "worker",
        "worker",
        "local",
    )
    assert row.metadata["via"] == "pydantic_ai" and not row.sensitive  # local-only, not "sensitive"


async def test_the_test_model_calls_the_tool_and_gets_the_local_answer(
    arouter: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    model = TestModel()
    agent = Agent(model, toolsets=[worker_toolset(arouter)])

    result = await agent.run("Use your tools.")

    assert len(fake_local.model_calls()) == 1 and fake_cloud.model_calls() == []
    assert result.output == '{"delegate_to_worker":"echo: a"}'  # TestModel's task is "a"
    assert model.last_model_request_parameters is not None
    (tool,) = model.last_model_request_parameters.function_tools
    assert tool.name == "delegate_to_worker"


async def test_the_director_sees_the_shared_description_argument_docs_and_guidance(
    arouter: Router,
) -> None:
    director = Director()
    await Agent(director.model, toolsets=[worker_toolset(arouter)]).run("hi")
    assert director.info is not None
    (tool,) = director.info.function_tools
    assert tool.description == DELEGATE_DESCRIPTION
    properties = tool.parameters_json_schema["properties"]
    assert {name: p["description"] for name, p in properties.items()} == PARAMETER_DESCRIPTIONS
    assert tool.parameters_json_schema["required"] == ["task"]
    assert properties["task_kind"]["enum"] == [
        "summarize",
        "draft",
        "translate",
        "reformat",
        "extract",
        "classify",
        "freeform",
    ]
    assert director.info.instructions == DIRECTOR_GUIDANCE

    quiet = Director()
    await Agent(
        quiet.model, instructions="Be brief.", toolsets=[worker_toolset(arouter, guidance=False)]
    ).run("hi")
    assert quiet.info is not None and quiet.info.instructions == "Be brief."


async def test_attach_worker_adds_the_tool_to_an_existing_agent(
    arouter: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    director = Director({"task": TASK, "source": SOURCE})
    agent = Agent(director.model, instructions="You run incidents.")
    seen: list[str] = []

    toolset = attach_worker(
        agent,
        arouter,
        worker_model="local",
        on_delegate=lambda task, result: seen.append(result.text),
    )
    result = await agent.run("What happened?")

    assert isinstance(toolset, WorkerToolset) and toolset.worker.requested == ("local",)
    assert result.output == "All done." and seen == [director.tool_returns()[0].content]
    assert len(fake_local.model_calls()) == 1 and fake_cloud.model_calls() == []
    assert director.info is not None
    assert director.info.instructions == "You run incidents.\n\n" + DIRECTOR_GUIDANCE


def test_the_seed_import_path_names_the_same_objects() -> None:
    from llm_localfirst.adapters import pydantic_ai as adapters
    from llm_localfirst.integrations import pydantic_ai as integrations

    assert integrations.attach_worker is adapters.attach_worker
    assert integrations.worker_toolset is adapters.worker_toolset
    assert integrations.__all__ == adapters.__all__


# ------------------------------------------------------------------ locality


def test_a_non_local_worker_is_refused_when_the_toolset_is_built(router: Router) -> None:
    with pytest.raises(PrivacyViolation, match="'cloud' is a cloud destination"):
        worker_toolset(router, worker_model="cloud")
    agent = Agent(TestModel())
    before = list(agent.toolsets)
    with pytest.raises(PrivacyViolation):
        attach_worker(agent, router, worker_model="cloud")
    assert list(agent.toolsets) == before  # nothing was added
    with pytest.raises(ModelNotAllowed):
        worker_toolset(router, worker_model="https://example.com/v1")


async def test_a_destination_made_non_local_by_a_reload_is_refused_at_call_time(
    arouter: Router,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    toolset = worker_toolset(arouter)
    arouter.reload(made_cloud(arouter.policy))
    director = Director({"task": TASK, "source": SOURCE}, answer="I could not delegate.")

    result = await Agent(director.model, toolsets=[toolset]).run("Summarize the incident")

    assert result.output == "I could not delegate."  # the run went on
    (returned,) = director.tool_returns()
    assert returned.outcome == "failed"
    assert str(returned.content).startswith(
        "Refused: this work must stay on the user's machine and the chosen destination is "
        "not local, so nothing was sent (audit id "
    )
    assert "Do not retry with a cloud model." in str(returned.content)
    assert fake_local.model_calls() == [] and fake_cloud.model_calls() == []
    (row,) = audit_rows(arouter, memory_audit)
    assert row.error_class == "PrivacyViolation" and row.id in str(returned.content)


# ------------------------------------------------------------------ failures


async def test_a_local_model_that_is_down_is_a_tool_failure_the_run_survives(
    arouter: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.stop()
    # Two failed calls in a row: with the default retry budget of 1, a ModelRetry
    # would end the run; a failed tool result does not consume the budget.
    director = Director(
        {"task": TASK, "source": SOURCE},
        {"task": TASK, "source": SOURCE},
        answer="Your local model is down; I did not read the record.",
    )

    result = await Agent(director.model, toolsets=[worker_toolset(arouter)]).run("Summarize")

    assert result.output == "Your local model is down; I did not read the record."
    returns = director.tool_returns()
    assert [r.outcome for r in returns] == ["failed", "failed"]
    for returned in returns:
        assert str(returned.content).startswith(
            "The local model is not available, so the task was not done and nothing left "
            "this machine (audit id "
        )
        assert "Retrying right away will fail the same way." in str(returned.content)
    assert fake_cloud.model_calls() == []


async def test_a_local_model_that_fails_mid_call_is_reported_the_same_way(
    arouter: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.status = 503  # up for the probe, failing every model call
    director = Director({"task": TASK, "source": SOURCE})

    await Agent(director.model, toolsets=[worker_toolset(arouter)]).run("Summarize")

    (returned,) = director.tool_returns()
    assert returned.outcome == "failed"
    assert str(returned.content).startswith("The local model is not available")
    assert len(fake_local.model_calls()) >= 1 and fake_cloud.model_calls() == []


async def test_invalid_arguments_ask_the_director_to_fix_them_and_are_audited(
    arouter: Router, fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    director = Director(
        {"task": TASK, "source": SOURCE, "task_kind": "poem"},
        {"task": TASK, "source": SOURCE, "task_kind": "summarize"},
    )

    result = await Agent(director.model, toolsets=[worker_toolset(arouter)]).run("Summarize")

    bad, good = director.tool_returns()
    assert bad.outcome == "retried"
    assert str(bad.content).startswith(
        "Invalid arguments (argument `task_kind`): unknown task_kind 'poem'; expected one of: "
        "summarize, draft, translate, reformat, extract, classify, freeform (audit id "
    )
    assert str(bad.content).endswith("Fix them and call again.")
    assert good.outcome == "success" and result.output == "All done."
    rejected, ok = audit_rows(arouter, memory_audit)
    assert (rejected.outcome, rejected.error_class, ok.outcome) == ("error", "InvalidRequest", "ok")
    assert len(fake_local.model_calls()) == 1


async def test_bad_arguments_use_the_tools_retry_budget_like_any_pydantic_ai_tool(
    arouter: Router, fake_local: FakeUpstream
) -> None:
    bad = {"task": TASK, "source": SOURCE, "task_kind": "poem"}
    director = Director(bad, bad)

    with pytest.raises(UnexpectedModelBehavior, match="exceeded max retries count of 1"):
        await Agent(director.model, toolsets=[worker_toolset(arouter)]).run("Summarize")
    assert fake_local.model_calls() == []


async def test_unusable_extract_output_is_a_failure_the_director_can_read(
    arouter: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = "Sorry, I cannot produce JSON."
    director = Director(
        {
            "task": "Extract the owner",
            "source": SOURCE,
            "task_kind": "extract",
            "schema": {"type": "object"},
        }
    )

    await Agent(director.model, toolsets=[worker_toolset(arouter)]).run("Who owns it?")

    (returned,) = director.tool_returns()
    assert returned.outcome == "failed"
    assert str(returned.content).startswith("The model call failed (audit id ")
    assert len(fake_local.model_calls()) == 2  # the answer, then one repair


async def test_local_unavailable_is_what_the_tool_reports_not_what_it_raises(
    arouter: Router, fake_local: FakeUpstream
) -> None:
    """The worker's own error stays inside the tool; the run gets a failed tool result."""
    toolset = worker_toolset(arouter)
    fake_local.stop()
    with pytest.raises(LocalUnavailable):
        await toolset.worker.arun(TASK, SOURCE)
    director = Director({"task": TASK, "source": SOURCE})
    result = await Agent(director.model, toolsets=[toolset]).run("Summarize")
    assert result.output == "All done."
