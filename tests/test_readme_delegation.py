"""Every Python snippet of the README's "Manager–worker delegation" section runs.

Each block is executed as written, with ``LF_POLICY`` naming a policy over loopback
``FakeUpstream`` fakes (so ``Router.from_env()`` routes to them) and dummy cloud API
keys (so a director model can be constructed). Whatever director a block builds is
then driven with a test double (Pydantic AI's ``FunctionModel`` via
``Agent.override``; a scripted LangChain chat model swapped in for the block's
``director``), and the delegation must reach the local fake and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
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
from llm_localfirst.testing import FakeUpstream, offline_policy
from tests.adapters.conftest import SOURCE, ScriptedChatModel, sent_texts, tool_call

ROOT = Path(__file__).resolve().parents[1]
#: Where the section lives.
README = ROOT / "README.md"
SECTION = "## Manager–worker delegation"
SEED_IMPORT = "from llm_localfirst.integrations.pydantic_ai import attach_worker"

pytestmark = pytest.mark.anyio


def section_blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:] if end < 0 else text[start:end]
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


BLOCKS = section_blocks("python")
ARGS = {"task": "Summarize in one sentence", "source": SOURCE, "task_kind": "summarize"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def snippet_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(offline_policy(fake_local, fake_cloud).redacted()), encoding="utf-8"
    )
    monkeypatch.setenv("LF_POLICY", str(policy))
    monkeypatch.setenv("LF_PROBE_TTL", "0.001")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")


def test_the_section_holds_the_seed_snippet_and_one_for_each_framework() -> None:
    assert len(BLOCKS) == 3
    assert SEED_IMPORT in BLOCKS[0] and "attach_worker(director, router" in BLOCKS[0]
    assert "worker_toolset(router)" in BLOCKS[1]
    assert "worker_tool(router" in BLOCKS[2]


def test_the_shell_commands_are_the_offline_examples_that_test_examples_runs() -> None:
    (block,) = section_blocks("bash")
    commands = [line.split("#")[0].split() for line in block.splitlines() if line.strip()]
    assert commands and all(c[0] == "python" and c[2:] == ["--offline"] for c in commands)
    assert all((ROOT / c[1]).is_file() for c in commands)
    assert {Path(c[1]).name for c in commands} == {
        "quickstart.py",
        "manager_worker_pydantic_ai.py",
        "manager_worker_langchain.py",
        "mcp_client.py",
    }


async def drive_pydantic_ai(director: Agent[Any, Any]) -> str:
    """Run the block's agent with a FunctionModel that delegates once; return the tool result."""
    returned: list[ToolReturnPart] = []

    def direct(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        assert isinstance(last, ModelRequest)
        returned.extend(p for p in last.parts if isinstance(p, ToolReturnPart))
        if returned:
            return ModelResponse(parts=[TextPart("done")])
        return ModelResponse(parts=[ToolCallPart("delegate_to_worker", ARGS)])

    with director.override(model=FunctionModel(direct)):
        result = await director.run("Summarize the incident")
    assert result.output == "done"
    (part,) = returned
    assert part.outcome == "success"
    return str(part.content)


def drive_langchain(namespace: dict[str, Any]) -> str:
    """Call the block's ``ask`` with a scripted director in place of the real one."""

    def script(messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(content=f"The worker says: {last.content}")
        return tool_call(ARGS)

    namespace["director"] = ScriptedChatModel(script=script).bind_tools([namespace["tool"]])
    answer: str = namespace["ask"]("Summarize the incident")
    assert answer.startswith("The worker says: ")
    return answer.removeprefix("The worker says: ")


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"block{i + 1}")
async def test_the_snippet_runs_and_its_director_delegates_to_the_local_model_only(
    index: int, snippet_env: None, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    namespace: dict[str, Any] = {"__name__": f"readme_block_{index + 1}"}
    exec(compile(BLOCKS[index], f"{README.name}, python block {index + 1}", "exec"), namespace)
    router = namespace["router"]
    assert isinstance(router, Router)
    try:
        director = namespace["director"]
        if isinstance(director, Agent):
            answer = await drive_pydantic_ai(director)
        else:
            answer = drive_langchain(namespace)
    finally:
        await router.aclose()
        router.close()
    (call,) = fake_local.model_calls()
    assert SOURCE in sent_texts([call]) and fake_cloud.model_calls() == []
    assert answer == f"echo: {ARGS['task']}\n\n<source>\n{SOURCE}\n</source>"


def private_delegation_blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Private delegation")
    end = text.index(SECTION, start)
    return re.findall(rf"```{language}\n(.*?)```", text[start:end], re.DOTALL)


def test_the_private_delegation_config_and_policy_are_valid_as_printed(tmp_path: Path) -> None:
    import json

    from llm_localfirst.config import Settings
    from llm_localfirst.policy import policy_from_data

    ((config_text,),) = [private_delegation_blocks("json")]
    (entry,) = json.loads(config_text)["mcpServers"].values()
    assert entry["command"].startswith("/") and entry["args"] == ["mcp"]
    settings = Settings.load(environ=entry["env"], env_file=None)
    assert settings.worker_roots
    ((policy_text,),) = [private_delegation_blocks("yaml")]
    worker = yaml.safe_load(policy_text)
    policy = policy_from_data(
        {
            "version": 1,
            **worker,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": "http://127.0.0.1:1/v1",
                    "model": "m",
                    "locality": "local",
                    "max_concurrency": 4,
                }
            },
            "default": {"to": ["local"]},
        }
    )
    assert policy.worker.outbound == "redact" and policy.worker.max_files == 200
