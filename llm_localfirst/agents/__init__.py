"""The local worker and what a director model is told about it.

- :class:`Worker` (:mod:`.worker`): bulk text work (summarize, draft, translate,
  reformat, extract, classify, freeform) on local destinations only; the one
  implementation behind the MCP ``delegate_to_worker`` tool and the agent adapters.
  A run (:mod:`.mapreduce`) splits long sources (:mod:`.chunking`) and maps them in
  parallel on the router's local-only failover, prompts with the task templates
  (:mod:`.tasks`) and reads the answers (:mod:`.output`).
- :mod:`.sources` and :mod:`.readers`: ``paths`` checked against the allowed roots
  and read locally (text, Markdown, code, CSV, JSON, HTML, PDF, DOCX).
- :mod:`.gate`: the outbound gate on every answer before a director sees it.
- :class:`DelegateArgs` (:mod:`.arguments`): the one argument model of
  ``delegate_to_worker`` for MCP, Pydantic AI and LangChain.
- :mod:`.director`: the guidance and tool description every face shows a director,
  and the failure text it reads.
- :func:`savings_report` (:mod:`.savings`): tokens processed locally, their
  cloud-equivalent cost, and the cloud tokens directors never spent.

Importing this package imports no framework and does no I/O.
"""

from __future__ import annotations

from .arguments import DelegateArgs
from .director import (
    DELEGATE_DESCRIPTION,
    DIRECTOR_GUIDANCE,
    PARAMETER_DESCRIPTIONS,
    describe_failure,
)
from .gate import PLACEHOLDERS, OutboundRefused
from .savings import DelegationSavings, SavingsReport, reference_destination, savings_report
from .sources import Roots, SourceRefused
from .tasks import TaskKind
from .worker import OnDelegate, Progress, Worker, WorkerOutputError, WorkerResult

__all__ = [
    "DELEGATE_DESCRIPTION",
    "DIRECTOR_GUIDANCE",
    "PARAMETER_DESCRIPTIONS",
    "PLACEHOLDERS",
    "DelegateArgs",
    "DelegationSavings",
    "OnDelegate",
    "OutboundRefused",
    "Progress",
    "Roots",
    "SavingsReport",
    "SourceRefused",
    "TaskKind",
    "Worker",
    "WorkerOutputError",
    "WorkerResult",
    "describe_failure",
    "reference_destination",
    "savings_report",
]
