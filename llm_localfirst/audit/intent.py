"""The intent record: what is about to be sent where, committed before it is sent.

Under ``durability: intent`` the router commits one `AuditIntent` per upstream
attempt before dispatching it, and the decision row (`AuditRecord`) afterwards as
usual. An intent without a decision row is a request that was sent and whose
outcome is unknown (the process died); `audit verify` and `audit report` list them.
Intents live in their own append-only, hash-chained table (``audit_intents``), so
"exactly one decision row per request" still holds.

This module owns the intent's shape and flat row form. It never holds prompt text
(hash and size only) and does no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from llm_localfirst.audit.record import FACES, ISO_UTC_MS

__all__ = ["INTENT_COLUMNS", "AuditIntent"]

#: Column order of the flat row form of an intent.
INTENT_COLUMNS: tuple[str, ...] = (
    "id",
    "attempt",
    "ts",
    "face",
    "endpoint",
    "kind",
    "destination",
    "locality",
    "model",
    "sensitive",
    "sensitive_reasons_json",
    "rule",
    "prompt_sha256",
    "prompt_chars",
)


@dataclass(frozen=True, slots=True)
class AuditIntent:
    """One upstream attempt about to be sent. Never holds prompt text.

    Attributes:
        id: The request's audit id (the id its decision row will have).
        attempt: 1 for the first destination tried, 2 after one failover, ...
        ts: When it was about to be sent (`utc_now_iso`).
        face: Which face handled the request.
        endpoint: What was asked for.
        kind: Request kind.
        destination: The destination about to be contacted.
        locality: ``local`` or ``cloud`` for ``destination``.
        model: Upstream model name at ``destination``.
        sensitive: Whether the request was treated as sensitive.
        sensitive_reasons: Why.
        rule: Policy rule that matched.
        prompt_sha256: Hex SHA-256 of the prompt.
        prompt_chars: Prompt size in characters.
    """

    id: str
    attempt: int
    ts: str
    face: str
    endpoint: str
    kind: str
    destination: str
    locality: str
    model: str | None
    sensitive: bool
    sensitive_reasons: tuple[str, ...]
    rule: str | None
    prompt_sha256: str | None
    prompt_chars: int

    def __post_init__(self) -> None:
        if not ISO_UTC_MS.fullmatch(self.ts):
            raise ValueError(f"AuditIntent.ts must be strict ISO-8601 UTC, got {self.ts!r}")
        if self.face not in FACES:
            raise ValueError(f"AuditIntent.face must be one of {sorted(FACES)}, got {self.face!r}")
        if self.attempt < 1:
            raise ValueError(f"AuditIntent.attempt must be 1 or more, got {self.attempt}")
        object.__setattr__(self, "sensitive_reasons", tuple(self.sensitive_reasons))

    def to_row(self) -> dict[str, object]:
        """Return the flat row form, keyed by `INTENT_COLUMNS`."""
        return {
            "id": self.id,
            "attempt": self.attempt,
            "ts": self.ts,
            "face": self.face,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "destination": self.destination,
            "locality": self.locality,
            "model": self.model,
            "sensitive": int(self.sensitive),
            "sensitive_reasons_json": json.dumps(
                list(self.sensitive_reasons), ensure_ascii=False, separators=(",", ":")
            ),
            "rule": self.rule,
            "prompt_sha256": self.prompt_sha256,
            "prompt_chars": self.prompt_chars,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> AuditIntent:
        """Build an intent from `to_row` output or a database row keyed the same way."""
        reasons = json.loads(str(row["sensitive_reasons_json"]))
        return cls(
            id=str(row["id"]),
            attempt=int(row["attempt"]),  # type: ignore[call-overload]
            ts=str(row["ts"]),
            face=str(row["face"]),
            endpoint=str(row["endpoint"]),
            kind=str(row["kind"]),
            destination=str(row["destination"]),
            locality=str(row["locality"]),
            model=None if row["model"] is None else str(row["model"]),
            sensitive=bool(row["sensitive"]),
            sensitive_reasons=tuple(str(r) for r in reasons),
            rule=None if row["rule"] is None else str(row["rule"]),
            prompt_sha256=None if row["prompt_sha256"] is None else str(row["prompt_sha256"]),
            prompt_chars=int(row["prompt_chars"]),  # type: ignore[call-overload]
        )

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-friendly form."""
        data = self.to_row()
        del data["sensitive_reasons_json"]
        data["sensitive"] = self.sensitive
        data["sensitive_reasons"] = list(self.sensitive_reasons)
        return data
