"""The local worker and what a director model is told about it.

- :class:`Worker` (:mod:`.worker`): bulk text work (summarize, draft, translate,
  reformat, extract, classify, freeform) on local destinations only; the one
  implementation behind the MCP ``delegate_to_worker`` tool and the agent adapters.
  A run (:mod:`.mapreduce`) splits long sources (:mod:`.chunking`), prompts with
  the task templates (:mod:`.tasks`) and reads the answers (:mod:`.output`).
- :mod:`.director`: the guidance and tool description every face shows a director,
  and the failure text it reads.
- :func:`savings_report` (:mod:`.savings`): tokens processed locally and their
  cloud-equivalent cost.

Importing this package imports no framework and does no I/O.
"""

from __future__ import annotations

from .director import (
    DELEGATE_DESCRIPTION,
    DIRECTOR_GUIDANCE,
    PARAMETER_DESCRIPTIONS,
    describe_failure,
)
from .savings import SavingsReport, reference_destination, savings_report
from .tasks import TaskKind
from .worker import OnDelegate, Progress, Worker, WorkerOutputError, WorkerResult

__all__ = [
    "DELEGATE_DESCRIPTION",
    "DIRECTOR_GUIDANCE",
    "PARAMETER_DESCRIPTIONS",
    "OnDelegate",
    "Progress",
    "SavingsReport",
    "TaskKind",
    "Worker",
    "WorkerOutputError",
    "WorkerResult",
    "describe_failure",
    "reference_destination",
    "savings_report",
]
