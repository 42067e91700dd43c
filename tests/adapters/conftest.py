"""Fixtures for the adapter tests: routers over loopback fakes, scripted directors.

A "director" here is a test double for the cloud model that plans and calls tools:
Pydantic AI's ``FunctionModel`` / ``TestModel``, or :class:`ScriptedChatModel`, a
LangChain chat model with ``bind_tools`` whose replies a test scripts and which
records every conversation it is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from llm_localfirst import Policy, Router
from llm_localfirst.audit import AuditFilter, AuditRecord
from llm_localfirst.testing import MemoryAuditStore

#: A source long enough to recognise in a request body, short enough for one call.
SOURCE = "Incident 4711: the payment service timed out for 12 minutes; Ana owns the fix."


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def arouter(router: Router) -> AsyncIterator[Router]:
    """The ``router`` fixture, closing the connections it opened on the test's event loop."""
    yield router
    await router.aclose()


def made_cloud(policy: Policy, name: str = "local") -> Policy:
    """The policy with destination ``name`` declared cloud (as a careless reload might)."""
    data = policy.model_dump()
    data["destinations"][name]["locality"] = "cloud"
    return type(policy).model_validate(data)


def audit_rows(router: Router, store: MemoryAuditStore) -> list[AuditRecord]:
    """Every audit row so far, oldest first."""
    router.flush()
    return [r for r in reversed(store.query(AuditFilter(limit=1000))) if "delegation" not in r.tags]


def delegation_rows(router: Router, store: MemoryAuditStore) -> list[AuditRecord]:
    """The rows that describe whole delegations (one per run), oldest first."""
    router.flush()
    return [r for r in reversed(store.query(AuditFilter(limit=1000))) if "delegation" in r.tags]


def sent_texts(calls: Sequence[Any]) -> str:
    """Everything the requests carried, as one string (to look for the source in)."""
    return "\n".join(str(call.body) for call in calls)


Script = Callable[[list[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """A LangChain chat model whose replies are ``script(messages)``; records every call.

    ``bind_tools`` works as on a real provider model (the tools are converted to the
    OpenAI tool format and bound), so ``model.bind_tools([tool]).invoke(...)`` runs.
    """

    script: Script
    conversations: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.bound_tools = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=self.bound_tools, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.conversations.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.script(messages))])


def tool_call(args: dict[str, Any], call_id: str = "call_1") -> AIMessage:
    """An AI message asking for one ``delegate_to_worker`` call."""
    return AIMessage(
        content="",
        tool_calls=[
            {"name": "delegate_to_worker", "args": args, "id": call_id, "type": "tool_call"}
        ],
    )
