"""What the examples run against with ``--offline``: no model, no key, no network.

- :func:`fake_models`: two loopback ``FakeUpstream`` servers from
  ``llm_localfirst.testing``; the "local model" answers with a short digest of its
  source, the "cloud model" (Anthropic wire format) answers ``[cloud] ...``. Every
  request they receive is counted, so an example can show that nothing reached the
  cloud.
- :func:`offline_router`: a ``Router`` over them (``offline_policy``: bulk and
  sensitive work local, ``kind="reason"`` cloud) with an in-memory audit log;
  :func:`write_policy`: the same policy as a YAML file, for a server process.
- :func:`pydantic_ai_director` and :func:`langchain_director`: scripted stand-ins
  for the cloud director model. They do what a real director does with the
  examples' prompt: hand the document to ``delegate_to_worker``, then answer from
  the worker's result (or report its error).
- :data:`NOTES`: the sample document the examples work on.

Only the examples import this module; the frameworks are imported inside the
functions that need them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from llm_localfirst import Router
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy

#: The instruction the scripted directors give the worker.
WORKER_TASK = "List every decision in these notes with its owner, one bullet each."

_TOPICS = [
    "the payment retries",
    "the on-call rota",
    "the database failover",
    "the status page",
    "the alert thresholds",
    "the runbook",
    "the load tests",
    "the customer notice",
]

#: Long enough that the offline local model (a 2,048-token window) gets it in pieces.
NOTES = "\n\n".join(
    f"Decision {n}: we will fix {topic} before the next release; {owner} owns it. "
    + " ".join(
        f"Discussion point {n}.{i} went over the timeline, the risks and the "
        f"metrics we will watch for {topic}."
        for i in range(1, 12)
    )
    for n, (topic, owner) in enumerate(
        zip(_TOPICS, ["Ana", "Ben", "Chen", "Dee", "Eli", "Fay", "Gus", "Hal"], strict=True),
        start=1,
    )
)


def _source_of(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    text = str(messages[-1].get("content", "")) if messages else ""
    match = re.search(r"<source>\n(.*)\n</source>", text, re.DOTALL)
    return match.group(1) if match else text


def _local_reply(body: dict[str, Any]) -> str:
    """A fake small model: the decisions it can find in its source, one bullet each."""
    source = _source_of(body)
    found = re.findall(r"Decision \d+: [^.;]*; \w+ owns it", source)
    if found:
        return "\n".join(f"- {line}" for line in dict.fromkeys(found))
    bullets = [ln for ln in source.splitlines() if ln.startswith("- ")]
    first_sentence = re.split(r"(?<=[.!?])\s+", source.strip(), maxsplit=1)[0]
    return "\n".join(dict.fromkeys(bullets)) or first_sentence


def _cloud_reply(body: dict[str, Any]) -> str:
    return "[cloud] " + _source_of(body)[:120]


@contextmanager
def fake_models() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    """Start the fake local and cloud models; stop them on exit."""
    os.environ.setdefault("LF_FAKE_CLOUD_KEY", "offline-not-a-secret")
    with FakeUpstream(reply=_local_reply) as local, FakeUpstream(reply=_cloud_reply) as cloud:
        yield local, cloud


def offline_router(local: FakeUpstream, cloud: FakeUpstream) -> Router:
    """A router over the fakes with an in-memory audit log (nothing written to disk)."""
    return Router(offline_policy(local, cloud), audit=MemoryAuditStore(), probe_ttl=0.001)


def write_policy(local: FakeUpstream, cloud: FakeUpstream, directory: Path) -> Path:
    """Write the offline policy as YAML (for a server started with ``LF_POLICY``)."""
    path = directory / "offline-policy.yaml"
    path.write_text(yaml.safe_dump(offline_policy(local, cloud).redacted()), encoding="utf-8")
    return path


def _document_in(prompt: str) -> str:
    match = re.search(r"<notes>\n(.*)\n</notes>", prompt, re.DOTALL)
    return match.group(1) if match else prompt


def _final_answer(outcome: str, content: str) -> str:
    if outcome != "success":
        return f"I could not hand the notes to the local worker, so I did not read them.\n{content}"
    return (
        "Here are the decisions, as the local worker extracted them (I checked the "
        f"owners against the notes):\n{content}"
    )


def pydantic_ai_director() -> Any:
    """A Pydantic AI ``FunctionModel`` playing the cloud director."""
    from pydantic_ai.messages import (
        ModelMessage,
        ModelRequest,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def direct(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        parts = last.parts if isinstance(last, ModelRequest) else []
        returns = [p for p in parts if isinstance(p, ToolReturnPart)]
        if returns:
            answer = _final_answer(returns[0].outcome, returns[0].model_response_str())
            return ModelResponse(parts=[TextPart(answer)])
        prompt = next(str(p.content) for p in parts if isinstance(p, UserPromptPart))
        return ModelResponse(
            parts=[
                ToolCallPart(
                    "delegate_to_worker",
                    {"task": WORKER_TASK, "source": _document_in(prompt), "task_kind": "summarize"},
                )
            ]
        )

    return FunctionModel(direct, model_name="scripted-director")


def langchain_director() -> Any:
    """A LangChain chat model (with ``bind_tools``) playing the cloud director."""
    from collections.abc import Sequence

    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.utils.function_calling import convert_to_openai_tool

    class ScriptedDirector(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "scripted-director"

        def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: Any = None,
            **kwargs: Any,
        ) -> ChatResult:
            last = messages[-1]
            if isinstance(last, ToolMessage):
                reply = AIMessage(content=_final_answer(last.status, str(last.content)))
            else:
                reply = AIMessage(
                    content="",
                    tool_calls=[
                        {
                            "name": "delegate_to_worker",
                            "id": "call_1",
                            "type": "tool_call",
                            "args": {
                                "task": WORKER_TASK,
                                "source": _document_in(str(last.content)),
                                "task_kind": "summarize",
                            },
                        }
                    ],
                )
            return ChatResult(generations=[ChatGeneration(message=reply)])

    return ScriptedDirector()
