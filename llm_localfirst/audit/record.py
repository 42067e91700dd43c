"""The audit record: one immutable row per routing decision, and its wire forms.

This module owns the shape of an audit row (`AuditRecord`, `Attempt`), the flat
row form the stores persist (`to_row` / `from_row`, column order in `COLUMNS`),
the nested JSON form the APIs return (`to_dict` / `from_dict`), time-sortable ids
(`new_id`) and the one timestamp format (`utc_now_iso`).

It must never hold prompt or completion text: a record carries the prompt's
SHA-256 and character counts only. It does no I/O.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from random import getrandbits as _random_bits

__all__ = [
    "ATTEMPT_OUTCOMES",
    "COLUMNS",
    "ENDPOINTS",
    "FACES",
    "OUTCOMES",
    "Attempt",
    "AuditRecord",
    "new_id",
    "utc_now_iso",
]

FACES = frozenset({"python", "cli", "mcp", "proxy", "worker"})
ENDPOINTS = frozenset(
    {"complete", "stream", "chat", "completions", "embeddings", "responses", "route", "worker"}
)
OUTCOMES = frozenset({"ok", "error", "refused", "dry_run", "cancelled"})
ATTEMPT_OUTCOMES = frozenset(
    {
        "ok",
        "connect_error",
        "timeout",
        "http_5xx",
        "http_429",
        "http_4xx",
        "refused",
        "cancelled",
        "error",
        "not_configured",
        "unsupported_endpoint",
        "not_local",
        "incomplete_stream",
    }
)

#: Column order of the flat row form; the stores build their SQL from it.
COLUMNS: tuple[str, ...] = (
    "id",
    "ts",
    "face",
    "endpoint",
    "outcome",
    "kind",
    "request_model",
    "sensitive",
    "sensitive_reasons_json",
    "rule",
    "arm",
    "destination",
    "locality",
    "model",
    "fell_back",
    "attempts_json",
    "error_class",
    "error_message",
    "tokens_in",
    "tokens_out",
    "latency_ms",
    "prompt_sha256",
    "prompt_chars",
    "completion_chars",
    "tags_json",
    "metadata_json",
)

#: The one timestamp form every record and intent carries.
ISO_UTC_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_ISO_UTC_MS = ISO_UTC_MS

# UUIDv7 state (RFC 9562, method 1): a 12-bit counter in rand_a keeps ids made in
# one process strictly increasing even within a millisecond or if the clock steps back.
_id_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """Return a new UUIDv7 string: 48-bit Unix milliseconds, then counter and randomness.

    Ids sort by creation time as plain strings; within one process they are
    strictly increasing.
    """
    global _last_ms, _counter
    rand = _random_bits(64)  # ids need uniqueness, not secrecy: no system call per id
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _counter = ms, rand & 0x7FF  # seed low so the counter has headroom
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | (rand >> 2)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def format_iso(moment: datetime) -> str:
    """Format an aware datetime as strict ISO-8601 UTC with millisecond precision."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_iso_second: tuple[int, str] = (-1, "")


def utc_now_iso() -> str:
    """Return the current time as strict ISO-8601 UTC, e.g. ``2026-11-23T03:22:35.123Z``.

    The formatted second is reused within the same second (this runs once per request).
    """
    global _iso_second
    now = time.time()
    second = int(now)
    cached, prefix = _iso_second
    if second != cached:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _iso_second = (second, prefix)
    return f"{prefix}{int((now - second) * 1000):03d}Z"


def normalize_iso(value: str, *, name: str) -> str:
    """Parse an ISO-8601 date or offset-aware date-time into the canonical UTC form.

    A bare date means midnight UTC. A date-time without an offset is refused, since
    its zone would be a guess.

    Raises:
        ValueError: ``value`` is not ISO-8601 or has no offset; the message names ``name``.
    """
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be an ISO-8601 date or date-time such as "
            f"'2026-11-23T03:22:35Z', got {value!r}"
        ) from None
    if moment.tzinfo is None:
        if "T" in value or " " in value:
            raise ValueError(f"{name} must carry a UTC offset ('Z' or '+02:00'), got {value!r}")
        moment = moment.replace(tzinfo=UTC)
    return format_iso(moment)


def _choice(value: str, allowed: frozenset[str], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one destination within a request (failover makes several).

    Attributes:
        destination: Allowlisted destination name.
        outcome: One of `ATTEMPT_OUTCOMES`.
        latency_ms: Wall time of this attempt.
        status: HTTP status, when the upstream answered.
        error: Short error description; never prompt or completion text.
        locality: ``local`` or ``cloud`` for ``destination`` at send time (``None``
            in rows written before it was recorded).
    """

    destination: str
    outcome: str
    latency_ms: float
    status: int | None = None
    error: str | None = None
    locality: str | None = None

    def __post_init__(self) -> None:
        _choice(self.outcome, ATTEMPT_OUTCOMES, "Attempt.outcome")

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-friendly form."""
        return {
            "destination": self.destination,
            "outcome": self.outcome,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "error": self.error,
            "locality": self.locality,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Attempt:
        """Build an attempt from `to_dict` output.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        return cls(
            destination=_str(data, "destination"),
            outcome=_str(data, "outcome"),
            latency_ms=_float(data, "latency_ms"),
            status=_opt_int(data, "status"),
            error=_opt_str(data, "error"),
            locality=_opt_str(data, "locality") if "locality" in data else None,
        )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One routing decision, success or failure. Append-only; never holds prompt text.

    Attributes:
        id: UUIDv7 from `new_id`.
        ts: Decision time from `utc_now_iso`.
        face: Which face handled the request, one of `FACES`.
        endpoint: What was asked for, one of `ENDPOINTS`.
        outcome: How the request ended, one of `OUTCOMES`.
        kind: Request kind (``bulk``, ``reason``, ``auto``).
        request_model: The model string the caller asked for.
        sensitive: Whether the request was treated as sensitive.
        sensitive_reasons: Why (``declared``, ``header``, detector names...).
        rule: Policy rule that matched.
        arm: A/B arm chosen inside the rule.
        destination: Destination that served (or last tried) the request.
        locality: ``local`` or ``cloud`` for ``destination``.
        model: Upstream model name at ``destination``.
        fell_back: Whether failover moved past the first candidate.
        attempts: Every upstream try, in order.
        error_class: Exception class name when the outcome is not ``ok``.
        error_message: Short error text; never prompt or completion text.
        tokens_in: Input tokens reported by the upstream.
        tokens_out: Output tokens reported by the upstream.
        latency_ms: Total wall time of the request.
        prompt_sha256: Hex SHA-256 of the prompt, for correlation without content.
        prompt_chars: Prompt size in characters.
        completion_chars: Completion size in characters.
        tags: Caller tags.
        metadata: Caller metadata (string to string).
    """

    id: str
    ts: str
    face: str
    endpoint: str
    outcome: str
    kind: str
    request_model: str
    sensitive: bool
    sensitive_reasons: tuple[str, ...]
    rule: str | None
    arm: str | None
    destination: str | None
    locality: str | None
    model: str | None
    fell_back: bool
    attempts: tuple[Attempt, ...]
    error_class: str | None
    error_message: str | None
    tokens_in: int | None
    tokens_out: int | None
    latency_ms: float
    prompt_sha256: str | None
    prompt_chars: int
    completion_chars: int
    tags: tuple[str, ...]
    metadata: Mapping[str, str] = field(hash=False)

    def __post_init__(self) -> None:
        if not _ISO_UTC_MS.fullmatch(self.ts):
            raise ValueError(
                f"AuditRecord.ts must look like '2026-11-23T03:22:35.123Z', got {self.ts!r}"
            )
        _choice(self.face, FACES, "AuditRecord.face")
        _choice(self.endpoint, ENDPOINTS, "AuditRecord.endpoint")
        _choice(self.outcome, OUTCOMES, "AuditRecord.outcome")
        # Copies, so a caller mutating its own list or dict after submit cannot change
        # a record that the writer thread has not persisted yet.
        object.__setattr__(self, "sensitive_reasons", tuple(self.sensitive_reasons))
        object.__setattr__(self, "attempts", tuple(self.attempts))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "metadata", dict(self.metadata))

    def to_row(self) -> dict[str, object]:
        """Return the flat row form, keyed by `COLUMNS`.

        Structured fields become ``*_json`` strings and booleans become 0 or 1.
        """
        return {
            "id": self.id,
            "ts": self.ts,
            "face": self.face,
            "endpoint": self.endpoint,
            "outcome": self.outcome,
            "kind": self.kind,
            "request_model": self.request_model,
            "sensitive": int(self.sensitive),
            "sensitive_reasons_json": _dumps(list(self.sensitive_reasons)),
            "rule": self.rule,
            "arm": self.arm,
            "destination": self.destination,
            "locality": self.locality,
            "model": self.model,
            "fell_back": int(self.fell_back),
            "attempts_json": _dumps([a.to_dict() for a in self.attempts]),
            "error_class": self.error_class,
            "error_message": self.error_message,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "latency_ms": self.latency_ms,
            "prompt_sha256": self.prompt_sha256,
            "prompt_chars": self.prompt_chars,
            "completion_chars": self.completion_chars,
            "tags_json": _dumps(list(self.tags)),
            "metadata_json": _dumps(dict(self.metadata)),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> AuditRecord:
        """Build a record from `to_row` output (or a database row keyed the same way).

        Raises:
            ValueError: A column is missing, has the wrong type or holds invalid JSON.
        """
        data = dict(row)
        for name in ("sensitive_reasons", "attempts", "tags", "metadata"):
            text = _str(row, f"{name}_json")
            try:
                data[name] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"column {name}_json holds invalid JSON: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, object]:
        """Return the nested, JSON-friendly form used by the APIs and JSON export."""
        data = self.to_row()
        for name in ("sensitive_reasons_json", "attempts_json", "tags_json", "metadata_json"):
            del data[name]
        data["sensitive"] = self.sensitive
        data["fell_back"] = self.fell_back
        data["sensitive_reasons"] = list(self.sensitive_reasons)
        data["attempts"] = [a.to_dict() for a in self.attempts]
        data["tags"] = list(self.tags)
        data["metadata"] = dict(self.metadata)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AuditRecord:
        """Build a record from `to_dict` output.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        attempts = data.get("attempts")
        metadata = data.get("metadata")
        if not isinstance(attempts, list) or not all(isinstance(a, dict) for a in attempts):
            raise ValueError("attempts must be a list of objects")
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise ValueError("metadata must be an object of strings")
        return cls(
            id=_str(data, "id"),
            ts=_str(data, "ts"),
            face=_str(data, "face"),
            endpoint=_str(data, "endpoint"),
            outcome=_str(data, "outcome"),
            kind=_str(data, "kind"),
            request_model=_str(data, "request_model"),
            sensitive=_bool(data, "sensitive"),
            sensitive_reasons=_str_tuple(data, "sensitive_reasons"),
            rule=_opt_str(data, "rule"),
            arm=_opt_str(data, "arm"),
            destination=_opt_str(data, "destination"),
            locality=_opt_str(data, "locality"),
            model=_opt_str(data, "model"),
            fell_back=_bool(data, "fell_back"),
            attempts=tuple(Attempt.from_dict(a) for a in attempts),
            error_class=_opt_str(data, "error_class"),
            error_message=_opt_str(data, "error_message"),
            tokens_in=_opt_int(data, "tokens_in"),
            tokens_out=_opt_int(data, "tokens_out"),
            latency_ms=_float(data, "latency_ms"),
            prompt_sha256=_opt_str(data, "prompt_sha256"),
            prompt_chars=_int(data, "prompt_chars"),
            completion_chars=_int(data, "completion_chars"),
            tags=_str_tuple(data, "tags"),
            metadata=metadata,
        )


# One encoder for every row: json.dumps with options builds a new encoder per call,
# and rows are encoded on the writer thread, where this is most of the per-row cost.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def _dumps(value: list[object] | dict[str, str]) -> str:
    if value:
        return _encode(value)
    return "[]" if isinstance(value, list) else "{}"


def _field(data: Mapping[str, object], name: str) -> object:
    try:
        return data[name]
    except KeyError:
        raise ValueError(f"audit record field {name!r} is missing") from None


def _wrong(name: str, expected: str, value: object) -> ValueError:
    return ValueError(f"audit record field {name!r} must be {expected}, got {value!r}")


def _str(data: Mapping[str, object], name: str) -> str:
    value = _field(data, name)
    if not isinstance(value, str):
        raise _wrong(name, "a string", value)
    return value


def _opt_str(data: Mapping[str, object], name: str) -> str | None:
    return None if _field(data, name) is None else _str(data, name)


def _int(data: Mapping[str, object], name: str) -> int:
    value = _field(data, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(name, "an integer", value)
    return value


def _opt_int(data: Mapping[str, object], name: str) -> int | None:
    return None if _field(data, name) is None else _int(data, name)


def _float(data: Mapping[str, object], name: str) -> float:
    value = _field(data, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong(name, "a number", value)
    return float(value)


def _bool(data: Mapping[str, object], name: str) -> bool:
    value = _field(data, name)
    if value in (0, 1):  # bool, or the integer stored in a row
        return bool(value)
    raise _wrong(name, "a boolean", value)


def _str_tuple(data: Mapping[str, object], name: str) -> tuple[str, ...]:
    value = _field(data, name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong(name, "a list of strings", value)
    return tuple(value)
