"""One delegation from each framework to a real llama.cpp server (tiny random-weight model).

The model's words are gibberish; what is checked is that a director's tool call
really runs on the local server (a real OpenAI-compatible HTTP exchange, usage
reported), the answer comes back to the director as the tool result, and the
cloud destination of the same policy is never contacted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from llm_localfirst import Router
from llm_localfirst.adapters.langchain import worker_tool
from llm_localfirst.adapters.pydantic_ai import worker_toolset
from llm_localfirst.agents import WorkerResult
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore
from tests.adapters.conftest import SOURCE, ScriptedChatModel, audit_rows, tool_call
from tests.support.llama_server import LlamaServer

pytestmark = [pytest.mark.llama, pytest.mark.anyio]

ARGS = {
    "task": "Summarize in one sentence",
    "source": SOURCE,
    "task_kind": "summarize",
    "max_tokens": 16,
}


@pytest.fixture
def store() -> MemoryAuditStore:
    return MemoryAuditStore()


@pytest.fixture
async def llama_router(
    llama_server: LlamaServer, fake_cloud: FakeUpstream, store: MemoryAuditStore
) -> AsyncIterator[Router]:
    """``local`` is the real llama.cpp server; ``cloud`` is a fake that must stay silent."""
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": llama_server.base_url,
                    "model": llama_server.model_id,
                    "locality": "local",
                    "context_window": 2048,
                    "timeout": 120,
                },
                "cloud": {
                    "provider": "anthropic",
                    "base_url": fake_cloud.root_url,
                    "model": "fake-cloud",
                    "locality": "cloud",
                    "api_key_env": "LF_FAKE_CLOUD_KEY",
                },
            },
            "default": {"to": ["local"], "fallback": ["cloud"]},
        }
    )
    router = Router(policy, audit=store, probe_ttl=0.001)
    yield router
    await router.aclose()
    router.close()


def check_local_run(
    result: WorkerResult,
    router: Router,
    store: MemoryAuditStore,
    fake_cloud: FakeUpstream,
    via: str,
) -> None:
    assert (result.destination, result.model) == ("local", "tiny")
    assert result.tokens_in > 0 and result.tokens_out > 0
    (row,) = audit_rows(router, store)
    assert (row.locality, row.outcome, row.metadata) == ("local", "ok", {"via": via})
    assert fake_cloud.model_calls() == []


async def test_a_pydantic_ai_director_delegates_to_the_real_local_model(
    llama_router: Router, store: MemoryAuditStore, fake_cloud: FakeUpstream
) -> None:
    returned: list[ToolReturnPart] = []

    def direct(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        assert isinstance(last, ModelRequest)
        returned.extend(p for p in last.parts if isinstance(p, ToolReturnPart))
        if returned:
            return ModelResponse(parts=[TextPart("done")])
        return ModelResponse(parts=[ToolCallPart("delegate_to_worker", ARGS)])

    seen: list[WorkerResult] = []
    agent = Agent(
        FunctionModel(direct),
        toolsets=[
            worker_toolset(llama_router, on_delegate=lambda task, result: seen.append(result))
        ],
    )
    result = await agent.run("Summarize the incident")

    assert result.output == "done"
    ((part,), (worker_result,)) = returned, seen
    assert part.outcome == "success" and part.content == worker_result.text
    check_local_run(worker_result, llama_router, store, fake_cloud, "pydantic_ai")


async def test_a_langchain_director_delegates_to_the_real_local_model(
    llama_router: Router, store: MemoryAuditStore, fake_cloud: FakeUpstream
) -> None:
    def script(messages: list[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content="done")
        return tool_call(ARGS)

    seen: list[WorkerResult] = []
    tool = worker_tool(llama_router, on_delegate=lambda task, result: seen.append(result))
    model = ScriptedChatModel(script=script)
    director = model.bind_tools([tool])
    messages: list[BaseMessage] = [HumanMessage("Summarize the incident")]
    reply = await director.ainvoke(messages)
    messages += [reply, *[await tool.ainvoke(call) for call in reply.tool_calls]]
    final = await director.ainvoke(messages)

    assert final.content == "done"
    returned = model.conversations[-1][-1]
    (worker_result,) = seen
    assert isinstance(returned, ToolMessage) and returned.status == "success"
    assert returned.content == worker_result.text
    check_local_run(worker_result, llama_router, store, fake_cloud, "langchain")
