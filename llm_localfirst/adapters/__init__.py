"""The local worker as an agent-framework tool: what every adapter shares.

- :mod:`.pydantic_ai`: ``worker_toolset(router)`` for ``Agent(toolsets=[...])`` and
  ``attach_worker(agent, router)`` (needs ``llm-localfirst[pydantic-ai]``);
- :mod:`.langchain`: ``worker_tool(router)``, a LangChain ``BaseTool``
  (needs ``llm-localfirst[langchain]``).

Both wrap one :class:`~llm_localfirst.agents.Worker` and expose it as the tool
``delegate_to_worker``, with the description, argument docs and failure messages
of :mod:`llm_localfirst.agents.director` (the MCP server shows the same text).
This package owns the contract they share:

- **Locality.** The worker is built when the tool is, so a non-local
  ``worker_model`` raises ``PrivacyViolation`` then; the Worker checks again
  before every model call, so a policy reloaded to make the destination non-local
  refuses the call too. A delegation never runs in the cloud.
- **What the director reads.** On success, the worker's answer text (JSON text for
  ``extract``, the label for ``classify``), as the MCP tool returns it; the full
  :meth:`WorkerResult.to_dict() <llm_localfirst.agents.WorkerResult.to_dict>`
  travels beside it for the application (Pydantic AI ``ToolReturn.metadata``,
  LangChain ``ToolMessage.artifact``), never to the model. On failure,
  :func:`~llm_localfirst.agents.director.describe_failure`'s text as a tool error the
  run survives: the director reads why, and whether to retry.
- **One argument model.** :class:`~llm_localfirst.agents.arguments.DelegateArgs`
  (task, source, paths, documents, task_kind, schema, labels, target_language,
  max_tokens) is the schema in every framework and in MCP.
- **No logic of their own.** Arguments go to the Worker as given; the Worker
  validates them (and audits a rejection), reads ``paths`` and ``documents``,
  routes, gates the answer, and records every call.

Importing this package imports no agent framework; each module imports its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..agents.tasks import TaskKind

if TYPE_CHECKING:
    from ..agents.worker import OnDelegate, Worker
    from ..router import Router

__all__ = ["TASK_KIND_SCHEMA", "TOOL_NAME", "install_hint", "local_worker", "tool_description"]

#: The tool's name in every face (MCP, Pydantic AI, LangChain).
TOOL_NAME = "delegate_to_worker"

#: JSON Schema keywords that list the task kinds for the director. The argument is
#: typed ``str`` and validated by the Worker (``TaskKind.parse``), so a bad value is
#: refused and audited in one place, with the same message in every framework.
TASK_KIND_SCHEMA: Mapping[str, Any] = {"enum": [kind.value for kind in TaskKind]}


def local_worker(
    router: Router,
    worker_model: str | Sequence[str],
    *,
    on_delegate: OnDelegate | None,
    via: str,
    documents: Mapping[str, Path | str] | None = None,
    roots: Sequence[str | Path] = (),
) -> Worker:
    """Build the Worker behind an adapter's tool.

    Args:
        router: The router whose policy, health and audit log the worker uses.
        worker_model: A local destination name, several in order, or ``"local"``
            (every local destination of the policy, in policy order).
        on_delegate: Called as ``on_delegate(task, result)`` after each successful run.
        via: The framework, recorded as ``via`` in every call's audit metadata.
        documents: Named documents the director may refer to (``Path`` or text).
        roots: Folders the director's ``paths`` may read under (besides
            ``LF_WORKER_ROOTS`` and the policy's ``worker.roots``).

    Raises:
        PrivacyViolation: ``worker_model`` names a destination that is not local.
        ModelNotAllowed: ``worker_model`` is not an allowlisted destination, or the
            policy has no local destination at all.
        InvalidRequest: ``worker_model`` is empty.
    """
    from ..agents.worker import Worker

    return Worker(
        router,
        destination=worker_model,
        on_delegate=on_delegate,
        metadata={"via": via},
        documents=documents,
        roots=roots,
    )


def tool_description(worker: Worker) -> str:
    """The tool's description: the shared text, then the registered documents (names, sizes)."""
    from ..agents.director import DELEGATE_DESCRIPTION

    listed = worker.describe_documents()
    return f"{DELEGATE_DESCRIPTION}\n\n{listed}" if listed else DELEGATE_DESCRIPTION


def install_hint(extra: str, package: str) -> str:
    """The message of the ``ImportError`` an adapter raises when its framework is missing."""
    return (
        f"the {package} adapter needs the {package} package: pip install 'llm-localfirst[{extra}]'"
    )
