"""What a director model is told about the local worker: one text, shared by every face.

A "director" is the capable (usually cloud) model that plans and calls tools; the
worker is the user's local model. This module owns the words the director reads:

- :data:`DIRECTOR_GUIDANCE`: instructions to add to a director's system prompt
  (when to delegate, when not, how to write the task);
- :data:`DELEGATE_DESCRIPTION` and :data:`PARAMETER_DESCRIPTIONS`: the
  ``delegate_to_worker`` tool's description and argument docs, used verbatim by the
  MCP server and by the Pydantic AI and LangChain adapters;
- :func:`describe_failure`: the one text a director sees when a delegation fails,
  written so that it can act on it.

It must never import a framework or perform I/O; it is text only.
"""

from __future__ import annotations

from ..errors import (
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    ModelNotAllowed,
    PrivacyViolation,
    UpstreamError,
)
from .gate import OutboundRefused
from .sources import SourceRefused

__all__ = [
    "DELEGATE_DESCRIPTION",
    "DIRECTOR_GUIDANCE",
    "PARAMETER_DESCRIPTIONS",
    "describe_failure",
]

DELEGATE_DESCRIPTION = """\
Hand bulk text work to the user's LOCAL model (it runs on their own machine; the text \
never goes to a cloud API). Use it for token-heavy, low-risk labour on text you already \
have: summarize, draft, translate, reformat, extract (JSON, optionally against a JSON \
Schema) and classify (pick one of your labels). Long sources are fine: they are split, \
processed piece by piece and combined, so a whole book works.

Use it when: the source is long (pages, logs, transcripts, files); the text is private \
(customer records, contracts, health or HR data); or the job is mechanical and a small \
model can do it well.

Do not use it for: multi-step reasoning, planning, maths, code you must get exactly \
right, final decisions, or anything that needs tools or the conversation's context. \
The worker sees only `task`, `source` and the files you name, nothing else.

Files on the user's machine: pass `paths` (files, folders, globs) and the worker \
reads them itself, locally; never paste a file into `source` when you can name it. \
The answer cites files by their path; personal data in it (e-mails, card numbers, \
phone numbers, IBANs, national ids, secrets) comes back as placeholders such as \
[EMAIL]. Write `task` as one clear instruction with the audience, length and format you want \
(e.g. "Summarize for a CFO in 5 bullet points"). Put text you already hold in `source`, \
not in `task`. Check the result before you rely on it: it comes from a small model. If the \
tool fails, the message says why and what to do; nothing is ever sent to the cloud \
instead."""

DIRECTOR_GUIDANCE = """\
You can delegate bulk text work to a local worker with the `delegate_to_worker` tool. \
The worker is a small model on the user's own hardware: it is cheap, private and \
reliable at mechanical text work, and weak at reasoning.

Delegate:
- summarizing, condensing or taking notes from long text (documents, logs, transcripts);
- drafting routine text from material you give it (emails, descriptions, release notes);
- translating, and reformatting (to a table, bullets, Markdown, a template);
- extracting fields into JSON (pass a JSON Schema when you need a fixed shape);
- classifying text into labels you choose;
- any of the above whenever the text is private: it stays on the user's machine.

Do it yourself:
- planning, multi-step reasoning, maths, judgement calls and final answers;
- code that must be exactly right;
- short jobs where writing the task takes longer than doing it;
- anything that needs tools or earlier conversation: the worker sees only `task`,
  `source` and the files you name in `paths`.

How to delegate well:
- one job per call; put the instruction in `task` and the text in `source`, or name
  files on the user's machine in `paths` (folders and globs work) so the worker reads
  them itself and they never pass through you;
- say the audience, length and format you want;
- pick the matching `task_kind` (summarize, draft, translate, reformat, extract,
  classify, freeform);
- review the result before you use it, and combine several results yourself.

If a delegation fails, read the message: it says whether retrying can help. A failed
delegation never falls back to a cloud model."""

PARAMETER_DESCRIPTIONS: dict[str, str] = {
    "task": (
        "One clear instruction for the local model, with the audience, length and format "
        "you want. Do not paste the text to process here; use `source`."
    ),
    "source": (
        "The text to work on (a document, log, transcript, record). May be very long; it "
        "is split and processed in pieces when it exceeds the local model's context."
    ),
    "task_kind": (
        "What sort of job this is: summarize, draft, translate, reformat, extract "
        "(JSON out), classify (one label out) or freeform."
    ),
    "schema": (
        "extract only: a JSON Schema the JSON answer must validate against. The answer "
        "is validated and repaired once if it does not validate."
    ),
    "labels": "classify only: the labels to choose from (at least two). Exactly one comes back.",
    "target_language": (
        "The language to write in. Required for translate; for other kinds, the "
        "language of the answer."
    ),
    "max_tokens": "Optional cap on the length of the answer, in tokens.",
    "paths": (
        'Files, folders or glob patterns on the user\'s machine (e.g. "~/contracts", '
        '"reports/*.pdf") for the worker to read ITSELF: the text never passes through '
        "you, so you spend no tokens on it and it never leaves the machine. Only folders the "
        "user allowed are readable. Text, Markdown, code, CSV, JSON, HTML, PDF and DOCX. "
        "Use instead of pasting files into `source`."
    ),
    "documents": (
        "Names of documents the application registered (listed in this tool's "
        "description, if any); the worker reads them itself."
    ),
}


def describe_failure(exc: LocalFirstError) -> str:
    """The message a director reads when delegation (or a routed call) fails.

    It says what happened, that nothing left the machine when that is so, and what
    to do next. It never contains prompt or source text.
    """
    ref = f" (audit id {exc.decision_id})" if exc.decision_id else ""
    if isinstance(exc, LocalUnavailable):
        return (
            "The local model is not available, so the task was not done and nothing left "
            f"this machine{ref}. Retrying right away will fail the same way. Tell the user "
            "their local model is down, or do the task yourself only if the text is not "
            f"private. Detail: {exc.message}"
        )
    if isinstance(exc, OutboundRefused):
        return (
            f"Refused: {exc.message}{ref}. The answer stayed on the user's machine. "
            "Do not retry the same task; ask for an answer that leaves personal data out."
        )
    if isinstance(exc, SourceRefused):
        return (
            f"Refused to read `paths`: {exc.message.rstrip('.')}{ref}. Nothing was read "
            "or sent. Name files inside the folders the user allowed, or ask the user to "
            "allow the folder."
        )
    if isinstance(exc, PrivacyViolation):
        return (
            "Refused: this work must stay on the user's machine and the chosen destination "
            f"is not local, so nothing was sent{ref}. Do not retry with a cloud model. "
            f"Detail: {exc.message}"
        )
    if isinstance(exc, ModelNotAllowed):
        return (
            f"Refused: {exc.message.rstrip('.')}{ref}. Nothing was sent. The worker's "
            "destination is fixed by the application; tell the user it is misconfigured."
        )
    if isinstance(exc, InvalidRequest):
        param = f" (argument `{exc.param}`)" if exc.param else ""
        return f"Invalid arguments{param}: {exc.message.rstrip('.')}{ref}. Fix them and call again."
    if isinstance(exc, UpstreamError):
        detail = exc.message.rstrip(".")
        return (
            f"The model call failed{ref}: {detail}. You may retry once with a simpler "
            "or shorter task, or do it yourself if the text is not private."
        )
    return f"{type(exc).__name__}: {exc.message}{ref}"
