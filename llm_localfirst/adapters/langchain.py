"""The local worker as a LangChain tool: ``delegate_to_worker`` for a director model.

::

    tool = worker_tool(router)
    director = ChatAnthropic(model="claude-haiku-4-5").bind_tools([tool])

This module owns :class:`WorkerTool` (a ``BaseTool`` with an args schema,
:class:`DelegateArgs`, and both sync and async invocation), :func:`worker_tool`,
and how a worker failure reaches the director. The tool answers in LangChain's
``content_and_artifact`` format: invoked with a tool call, it returns a
``ToolMessage`` whose content is the worker's answer and whose ``artifact`` is
``WorkerResult.to_dict()`` (for the application; not sent to the model).

Failures never escape as exceptions an agent loop would die on:

- every refusal or failure of the Worker (local model down, destination no longer
  local, invalid arguments, a model error) becomes a ``ToolException`` carrying
  :func:`~llm_localfirst.agents.director.describe_failure`'s text, which the tool
  handles (``handle_tool_error``): the director gets a ``ToolMessage`` with
  ``status="error"`` and that text;
- arguments that do not fit :class:`DelegateArgs` (no ``task``, a number where a
  string belongs) get the same shape of message (``handle_validation_error``); they
  never reach the Worker, so they are not audited.

Sync ``invoke`` runs the Worker on the router's own event loop thread
(``Worker.run``); ``ainvoke`` awaits ``Worker.arun`` on the caller's loop.
It must never route, retry or fall back on its own, and it imports
``langchain_core`` here only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SkipValidation, ValidationError

from ..agents.arguments import DelegateArgs
from ..agents.director import DELEGATE_DESCRIPTION, describe_failure
from ..agents.output import WorkerResult
from ..agents.worker import Worker
from ..errors import InvalidRequest, LocalFirstError
from . import TOOL_NAME, install_hint, local_worker, tool_description

try:
    from langchain_core.tools import ArgsSchema, BaseTool, ToolException
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess without the extra
    raise ImportError(install_hint("langchain", "langchain-core")) from _exc

if TYPE_CHECKING:
    from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun

    from ..agents.worker import OnDelegate
    from ..router import Router

__all__ = ["DelegateArgs", "WorkerTool", "worker_tool"]


def _describe_validation_error(error: Exception) -> str:
    """The director's message for arguments that do not fit :class:`DelegateArgs`."""
    if isinstance(error, ValidationError) and error.error_count():
        details = error.errors(include_url=False)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in details
        )
        param = str(details[0]["loc"][0]) if details[0]["loc"] else None
    else:
        problems, param = str(error), None
    return describe_failure(InvalidRequest(problems[:500], param=param))


class WorkerTool(BaseTool):
    """``delegate_to_worker``: bulk text work on the user's local model, never the cloud.

    Build it with :func:`worker_tool`. Invoked with a tool call it returns a
    ``ToolMessage``: the answer as content, ``WorkerResult.to_dict()`` as artifact;
    a failure is a ``ToolMessage`` with ``status="error"`` and a message for the
    director. Invoked with plain arguments it returns the answer text (or the
    failure message).

    Attributes:
        worker: The local worker the tool runs (``worker.savings()`` reports what
            delegation saved).
    """

    name: str = TOOL_NAME
    description: str = DELEGATE_DESCRIPTION
    args_schema: SkipValidation[ArgsSchema | None] = DelegateArgs
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: Any = True
    handle_validation_error: Any = _describe_validation_error
    worker: Worker = Field(exclude=True)

    @property
    def tool_call_schema(self) -> ArgsSchema:
        """The arguments as the director sees them: :class:`DelegateArgs` by wire name.

        LangChain's default rebuilds the schema from field names, which would show
        ``schema_`` instead of ``schema`` and drop the ``task_kind`` choices.
        """
        return {**_wire_schema(), "description": self.description}

    def _run(
        self,
        task: str,
        source: str = "",
        paths: list[str] | None = None,
        documents: list[str] | None = None,
        task_kind: str = "freeform",
        schema_: dict[str, Any] | None = None,
        labels: list[str] | None = None,
        target_language: str | None = None,
        max_tokens: int | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> tuple[str, dict[str, Any]]:
        try:
            result = self.worker.run(
                task,
                source,
                paths=paths,
                documents=documents,
                task_kind=task_kind,
                schema=schema_,
                labels=labels,
                target_language=target_language,
                max_tokens=max_tokens,
            )
        except LocalFirstError as exc:
            raise ToolException(describe_failure(exc)) from exc
        return _answer(result)

    async def _arun(
        self,
        task: str,
        source: str = "",
        paths: list[str] | None = None,
        documents: list[str] | None = None,
        task_kind: str = "freeform",
        schema_: dict[str, Any] | None = None,
        labels: list[str] | None = None,
        target_language: str | None = None,
        max_tokens: int | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> tuple[str, dict[str, Any]]:
        try:
            result = await self.worker.arun(
                task,
                source,
                paths=paths,
                documents=documents,
                task_kind=task_kind,
                schema=schema_,
                labels=labels,
                target_language=target_language,
                max_tokens=max_tokens,
            )
        except LocalFirstError as exc:
            raise ToolException(describe_failure(exc)) from exc
        return _answer(result)


def worker_tool(
    router: Router,
    worker_model: str | Sequence[str] = "local",
    on_delegate: OnDelegate | None = None,
    *,
    documents: Mapping[str, Path | str] | None = None,
    roots: Sequence[str | Path] = (),
) -> WorkerTool:
    """A LangChain tool named ``delegate_to_worker`` that runs on the local worker.

    Args:
        router: The router whose policy, health and audit log the worker uses.
        worker_model: The local destination to run on, several in order, or
            ``"local"``: every local destination of the policy, in policy order.
        on_delegate: Called as ``on_delegate(task, result)`` after each successful
            delegation (observability; an exception in it is logged, not raised).
        documents: Named documents the director may refer to in ``documents``
            (a ``Path`` read when named, or the text); the tool description lists
            their names and sizes, never their content.
        roots: Folders the director's ``paths`` may read under, besides
            ``LF_WORKER_ROOTS`` and the policy's ``worker.roots``.

    Returns:
        The tool, for ``model.bind_tools([...])`` and your agent loop. Put
        :data:`~llm_localfirst.agents.DIRECTOR_GUIDANCE` in the director's system
        message to teach it when to delegate.

    Raises:
        PrivacyViolation: ``worker_model`` names a destination that is not local.
        ModelNotAllowed: ``worker_model`` is not an allowlisted destination, or the
            policy has no local destination.
    """
    worker = local_worker(
        router,
        worker_model,
        on_delegate=on_delegate,
        via="langchain",
        documents=documents,
        roots=roots,
    )
    return WorkerTool(worker=worker, description=tool_description(worker))


@functools.cache
def _frozen_wire_schema() -> str:
    return json.dumps(DelegateArgs.model_json_schema(by_alias=True))


def _wire_schema() -> dict[str, Any]:
    """A fresh copy of the JSON Schema of :class:`DelegateArgs` (callers mutate it)."""
    schema: dict[str, Any] = json.loads(_frozen_wire_schema())
    return schema


def _answer(result: WorkerResult) -> tuple[str, dict[str, Any]]:
    return result.text, result.to_dict()
