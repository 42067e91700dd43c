"""What the calling model reads when the ``route`` or ``complete`` tool is refused or fails.

Each text says what happened (and that nothing left the machine, when that is so)
and what to do next, in terms of the tool that was called: ``route`` is a dry run
that never runs a task, ``complete`` runs one prompt under the policy. The worker
tool's texts live with the worker (:func:`llm_localfirst.agents.director.describe_failure`).
Texts never contain prompt or source text.
"""

from __future__ import annotations

from ...errors import (
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    ModelNotAllowed,
    PrivacyViolation,
    UpstreamError,
)

__all__ = ["routing_failure"]

_START_LOCAL = (
    "Ask the user to start their local model (for Ollama: `ollama serve`, "
    "then `llm-localfirst doctor` to check)"
)


def routing_failure(exc: LocalFirstError, tool: str) -> str:
    """The text of a ``route`` (dry run) or ``complete`` refusal or failure.

    Args:
        exc: What was raised (audited: ``exc.decision_id`` is the audit id).
        tool: ``route`` or ``complete``.
    """
    dry_run = tool == "route"
    ref = f" (audit id {exc.decision_id})" if exc.decision_id else ""
    if isinstance(exc, LocalUnavailable):
        if dry_run:
            return (
                f"This prompt would be refused{ref}: it must stay on this machine and no "
                "local model is up, so it would fail closed and nothing would be sent "
                f"anywhere. {_START_LOCAL}; do not send the text to a cloud model instead. "
                f"Detail: {exc.message}"
            )
        return (
            f"Not run{ref}: the request must stay on this machine and no local model is "
            "up, so it failed closed and nothing left this machine. Calling again fails "
            f"the same way until a local model runs. {_START_LOCAL}; do not send the text "
            f"to a cloud model instead. Detail: {exc.message}"
        )
    if isinstance(exc, PrivacyViolation):
        verb = "would be refused" if dry_run else "was refused and nothing was sent"
        return (
            f"This request {verb}{ref}: it is sensitive and the model named is a cloud "
            'destination. Do not retry with a cloud model: call again with model "auto" '
            "(sensitive work then runs on a local model) or a local model's name. "
            f"Detail: {exc.message}"
        )
    if isinstance(exc, ModelNotAllowed):
        return (
            f"Refused{ref}: {exc.message.rstrip('.')}. Nothing was sent. Call again with "
            'model "auto" (the policy chooses) or one of the names listed.'
        )
    if isinstance(exc, InvalidRequest):
        param = f" (argument `{exc.param}`)" if exc.param else ""
        return f"Invalid arguments{param}: {exc.message.rstrip('.')}{ref}. Fix them and call again."
    if isinstance(exc, UpstreamError):
        detail = exc.message.rstrip(".")
        if not exc.retryable:
            return (
                f"The model call failed{ref}: {detail}. Calling again fails the same way "
                "until that is fixed: tell the user what the message says to set."
            )
        return (
            f"The model call failed{ref}: {detail}. You may call again once; if it fails "
            "again, tell the user."
        )
    if exc.code == "budget_exceeded":
        return (
            f"Refused{ref}: {exc.message.rstrip('.')}. Nothing was sent. Use a local "
            'model (model "auto" with kind "bulk") or tell the user the budget is spent.'
        )
    return f"{type(exc).__name__}: {exc.message}{ref}"
