"""What a worker run produces, and how a small model's answer is read.

This module owns :class:`WorkerResult` (the text plus structure every face
returns), :class:`WorkerOutputError` (an answer that stays unusable after one
repair), and the lenient readers for model output: :func:`parse_json` (fenced,
bare, or after some chatter) and :func:`pick_label` (one label out of the
caller's list, whatever the model wrapped around it).

It must never call a model or perform I/O.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UpstreamError

__all__ = ["WorkerOutputError", "WorkerResult", "parse_json", "pick_label"]


class WorkerOutputError(UpstreamError):
    """The local model answered, but its output was unusable even after one repair.

    Raised for extract (no JSON, or JSON that fails the schema) and classify (an
    answer that matches none of the labels).

    Attributes:
        task_kind: The task kind.
        problem: Why the output was rejected (never the output itself).
    """

    code = "worker_output_invalid"

    def __init__(
        self, message: str, *, task_kind: str, problem: str, destination: str | None = None
    ) -> None:
        super().__init__(message, destination=destination)
        self.task_kind = task_kind
        self.problem = problem


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """The outcome of one worker run.

    Attributes:
        text: The answer (for extract, the JSON text; for classify, the label).
        task_kind: The task kind, e.g. ``"summarize"``.
        destination: The local destination that produced the final answer.
        model: Its model id.
        tokens_in: Input tokens over every call of the run.
        tokens_out: Output tokens over every call of the run.
        chunks: Pieces the source was split into (1 when it fitted in one call).
        audit_id: Audit id of the call that produced the final answer.
        audit_ids: Audit ids of every call of the run, in order (refused tries too).
        data: Parsed JSON for extract, the label for classify, otherwise ``None``.
        redacted: Findings the outbound gate replaced by placeholders, per detector
            (``{"email": 2}``); empty when nothing was found or the mode is not redact.
        files: The files (paths relative to their root) and documents the worker read.
        bytes_read: Bytes of those files.
        run_id: Audit id of the row describing the whole delegation.
    """

    text: str
    task_kind: str
    destination: str
    model: str
    tokens_in: int
    tokens_out: int
    chunks: int
    audit_id: str
    audit_ids: tuple[str, ...]
    data: Any = None
    redacted: Mapping[str, int] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    bytes_read: int = 0
    run_id: str | None = None

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (MCP structured output, adapters)."""
        return {
            "text": self.text,
            "task_kind": self.task_kind,
            "destination": self.destination,
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "chunks": self.chunks,
            "audit_id": self.audit_id,
            "audit_ids": list(self.audit_ids),
            "data": self.data,
            "redacted": dict(self.redacted),
            "files": list(self.files),
            "bytes_read": self.bytes_read,
            "run_id": self.run_id,
        }


_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_NOT_WORD = re.compile(r"[^\w]+")


def parse_json(text: str) -> tuple[bool, Any]:
    """Find the JSON value in a model's answer: fenced, bare, or after some chatter.

    Returns:
        ``(found, value)``.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        stripped = candidate.strip()
        try:
            return True, json.loads(stripped)
        except ValueError:
            pass
        for i, ch in enumerate(stripped):
            if ch in "{[":
                try:
                    value, _ = decoder.raw_decode(stripped, i)
                except ValueError:
                    continue
                return True, value
    return False, None


def _norm(text: str) -> str:
    return _NOT_WORD.sub(" ", text.casefold()).strip()


def pick_label(answer: str, labels: Sequence[str]) -> str | None:
    """Map a model's answer to exactly one of ``labels``, or None.

    In order: an exact match (ignoring case, punctuation and quotes, and a leading
    ``label:``); the label whose whole words appear earliest in the answer; the
    closest label by similarity (``difflib`` ratio of at least 0.8). Otherwise
    None: the caller asks once more, then raises :class:`WorkerOutputError`.
    """
    if not labels:
        return None
    normalized = {_norm(lb): lb for lb in labels}
    text = _norm(answer)
    text = re.sub(r"^(?:the\s+)?(?:label|category|class|answer)\s+(?:is\s+)?", "", text)
    if text in normalized:
        return normalized[text]
    positions: list[tuple[int, int, str]] = []
    for key, label in normalized.items():
        if not key:
            continue
        match = re.search(rf"(?<!\w){re.escape(key)}(?!\w)", text)
        if match:
            positions.append((match.start(), -len(key), label))
    if positions:
        return min(positions)[2]
    close = difflib.get_close_matches(text, list(normalized), n=1, cutoff=0.8)
    return normalized[close[0]] if close else None
