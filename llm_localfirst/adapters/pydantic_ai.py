"""The local worker as a Pydantic AI toolset: ``delegate_to_worker`` for a director agent.

Give a director agent a local worker in one line, either when it is built::

    director = Agent("anthropic:claude-haiku-4-5", toolsets=[worker_toolset(router)])

or afterwards::

    attach_worker(director, router)

This module owns :class:`WorkerToolset` (a ``FunctionToolset`` holding the one tool,
with the director guidance as its instructions), :func:`worker_toolset` and
:func:`attach_worker`, and how a worker failure reaches the director:

- a refusal or failure (local model down -> ``LocalUnavailable``, destination no
  longer local -> ``PrivacyViolation``, an unknown destination, a model error or
  unusable output) raises ``ToolFailed`` with
  :func:`~llm_localfirst.agents.director.describe_failure`'s text. Pydantic AI sends
  it as a failed tool result (Anthropic ``is_error``; ``{"error": ...}`` elsewhere),
  consumes no retry, and the run goes on: the director reads that nothing was sent
  and that retrying right away will not help, and answers or asks the user;
- invalid arguments (``InvalidRequest``: a bad ``task_kind``, ``classify`` without
  labels...) raise ``ModelRetry`` with the same text, Pydantic AI's channel for
  "fix the arguments and call again". Like arguments that fail the tool's JSON
  Schema (which Pydantic AI answers with its own validation message), this uses the
  tool's retry budget: a director that keeps sending bad arguments ends the run
  with ``UnexpectedModelBehavior``, as with any Pydantic AI tool.

It must never route, retry or fall back on its own (the Worker does everything),
and it imports ``pydantic_ai`` here, never in ``llm_localfirst``'s other modules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..agents.arguments import DelegateArgs
from ..agents.director import DIRECTOR_GUIDANCE, describe_failure
from ..errors import InvalidRequest, LocalFirstError
from . import TOOL_NAME, install_hint, local_worker, tool_description

try:
    from pydantic_ai import Agent, FunctionToolset, ModelRetry, RunContext, ToolFailed, ToolReturn
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess without the extra
    raise ImportError(install_hint("pydantic-ai", "pydantic-ai")) from _exc

if TYPE_CHECKING:
    from ..agents.worker import OnDelegate, Worker
    from ..router import Router

__all__ = ["WorkerToolset", "attach_worker", "worker_toolset"]


class WorkerToolset(FunctionToolset[Any]):
    """A toolset with one tool, ``delegate_to_worker``, that runs on the local worker.

    Works with an agent of any ``deps_type``. Its instructions are the director
    guidance (when to delegate and when not), added to the agent's own.

    Args:
        worker: The local worker the tool runs.
        guidance: Add :data:`~llm_localfirst.agents.DIRECTOR_GUIDANCE` to the agent's
            instructions (turn off when your own prompt already covers delegation).
        id: A unique id, needed only under durable execution (e.g. Temporal).

    Attributes:
        worker: The worker (``worker.savings()`` reports what delegation saved).
    """

    def __init__(self, worker: Worker, *, guidance: bool = True, id: str | None = None) -> None:
        super().__init__(instructions=DIRECTOR_GUIDANCE if guidance else None, id=id)
        self.worker = worker
        self.add_function(
            _tool_function(worker),
            takes_ctx=False,
            name=TOOL_NAME,
            description=tool_description(worker),
        )

    def __repr__(self) -> str:
        return f"WorkerToolset({self.worker!r})"


def worker_toolset(
    router: Router,
    worker_model: str | Sequence[str] = "local",
    on_delegate: OnDelegate | None = None,
    *,
    guidance: bool = True,
    documents: Mapping[str, Path | str] | None = None,
    roots: Sequence[str | Path] = (),
) -> WorkerToolset:
    """A toolset that gives a director agent the ``delegate_to_worker`` tool.

    Args:
        router: The router whose policy, health and audit log the worker uses.
        worker_model: The local destination to run on, several in order, or
            ``"local"``: every local destination of the policy, in policy order.
        on_delegate: Called as ``on_delegate(task, result)`` after each successful
            delegation (observability; an exception in it is logged, not raised).
        guidance: Add the director guidance to the agent's instructions.
        documents: Named documents the director may refer to in ``documents``
            (a ``Path`` read when named, or the text); the tool description lists
            their names and sizes, never their content.
        roots: Folders the director's ``paths`` may read under, besides
            ``LF_WORKER_ROOTS`` and the policy's ``worker.roots``.

    Returns:
        The toolset, for ``Agent(..., toolsets=[...])`` or ``agent.run(..., toolsets=[...])``.

    Raises:
        PrivacyViolation: ``worker_model`` names a destination that is not local.
        ModelNotAllowed: ``worker_model`` is not an allowlisted destination, or the
            policy has no local destination.

    Example:
        >>> director = Agent("anthropic:claude-haiku-4-5",              # doctest: +SKIP
        ...                  toolsets=[worker_toolset(router)])
    """
    worker = local_worker(
        router,
        worker_model,
        on_delegate=on_delegate,
        via="pydantic_ai",
        documents=documents,
        roots=roots,
    )
    return WorkerToolset(worker, guidance=guidance)


def attach_worker(
    agent: Agent[Any, Any],
    router: Router,
    worker_model: str | Sequence[str] = "local",
    on_delegate: OnDelegate | None = None,
    *,
    guidance: bool = True,
    documents: Mapping[str, Path | str] | None = None,
    roots: Sequence[str | Path] = (),
) -> WorkerToolset:
    """Add the ``delegate_to_worker`` tool to an agent that already exists.

    The same as passing :func:`worker_toolset` in ``toolsets=[...]``, for code that
    does not build the agent itself. Registers the toolset with ``agent.toolset``;
    under durable execution pass ``toolsets=[worker_toolset(...)]`` when building
    the agent instead. Call it once per agent (a second call would add a second
    tool of the same name, which Pydantic AI rejects when the agent runs).

    Args:
        agent: The director agent.
        router: The router whose policy, health and audit log the worker uses.
        worker_model: The local destination to run on, several in order, or ``"local"``.
        on_delegate: Called as ``on_delegate(task, result)`` after each successful delegation.
        guidance: Add the director guidance to the agent's instructions.
        documents: Named documents (see :func:`worker_toolset`).
        roots: Folders ``paths`` may read under (see :func:`worker_toolset`).

    Returns:
        The toolset that was added (its ``worker`` reports savings).

    Raises:
        PrivacyViolation: ``worker_model`` names a destination that is not local;
            nothing is added to the agent.
        ModelNotAllowed: ``worker_model`` is not an allowlisted destination.
    """
    toolset = worker_toolset(
        router, worker_model, on_delegate, guidance=guidance, documents=documents, roots=roots
    )

    def provide(ctx: RunContext[Any]) -> WorkerToolset:
        return toolset

    agent.toolset(per_run_step=False)(provide)
    return toolset


def _tool_function(worker: Worker) -> Callable[..., Awaitable[ToolReturn[str]]]:
    """The tool function; its one model argument, :class:`DelegateArgs`, is the tool's schema
    (Pydantic AI shows a single model parameter's fields at the top level)."""

    async def delegate_to_worker(args: DelegateArgs) -> ToolReturn[str]:
        try:
            result = await worker.arun(args.task, args.source, **args.worker_kwargs())
        except LocalFirstError as exc:
            _report(exc)
        return ToolReturn(return_value=result.text, metadata=result.to_dict())

    return delegate_to_worker


def _report(exc: LocalFirstError) -> NoReturn:
    """Turn a worker error into the tool error the director reads (see the module docstring)."""
    message = describe_failure(exc)
    if isinstance(exc, InvalidRequest):
        raise ModelRetry(message) from exc
    raise ToolFailed(message) from exc
