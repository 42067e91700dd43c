"""The outbound gate: the worker's answer is scanned before any director sees it.

A director is usually a cloud model. The worker read private files so that they
would not go to the cloud; its answer must not carry them there either. Before
an answer leaves the worker, the same detectors that decide sensitivity scan it,
and the policy's ``worker.outbound`` says what happens to what they find:

- ``redact`` (default): each finding becomes a typed placeholder (``[EMAIL]``,
  ``[CARD]``, ``[PHONE]``, ``[IBAN]``, ``[NATIONAL_ID]``, ``[SECRET]``);
- ``refuse``: :class:`OutboundRefused`, naming the kinds found (never the text);
- ``allow``: the answer as it is (the findings are still counted and audited).

A scanner that fails is treated as a finding: the answer is refused, whatever the
mode but ``allow``. This module owns the placeholders and that decision; it
must never log or return what it matched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ..errors import PrivacyViolation
from ..sensitivity import Finding, scanner_for

__all__ = ["PLACEHOLDERS", "GateResult", "OutboundRefused", "gate"]

Mode = Literal["redact", "refuse", "allow"]

#: The placeholder each detector's findings become.
PLACEHOLDERS: dict[str, str] = {
    "email": "[EMAIL]",
    "payment_card": "[CARD]",
    "phone": "[PHONE]",
    "iban": "[IBAN]",
    "national_id": "[NATIONAL_ID]",
    "secret": "[SECRET]",
}


class OutboundRefused(PrivacyViolation):
    """The worker's answer carried personal data or secrets and the policy says ``refuse``.

    Attributes:
        kinds: Detector names found in the answer, sorted (never the text).
        counts: Findings per detector.
    """

    code = "outbound_refused"

    def __init__(self, counts: dict[str, int]) -> None:
        kinds = ", ".join(
            f"{k} {PLACEHOLDERS.get(k, '[REDACTED]')} x{n}" for k, n in sorted(counts.items())
        )
        super().__init__(
            f"the local model's answer contains {kinds}; the policy (worker.outbound: refuse) "
            "does not let it leave the worker, so nothing was returned. Ask for an answer "
            "without personal data, or have the user set worker.outbound to redact"
        )
        self.kinds = tuple(sorted(counts))
        self.counts = dict(sorted(counts.items()))


@dataclass(frozen=True, slots=True)
class GateResult:
    """What the gate let through.

    Attributes:
        text: The answer to return (redacted when the mode is ``redact``).
        found: Findings per detector name.
        redacted: Findings replaced per detector name (empty unless ``redact``).
        mode: The mode applied.
    """

    text: str
    found: dict[str, int] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)
    mode: Mode = "redact"


def gate(text: str, *, mode: Mode, detectors: Iterable[str]) -> GateResult:
    """Scan ``text`` and redact, refuse or allow it.

    Raises:
        OutboundRefused: findings under ``refuse``, or the scanner failed (fail closed).
    """
    try:
        findings = scanner_for(tuple(detectors)).findings(text)
    except Exception:  # a broken detector must not let an answer through unexamined
        if mode == "allow":
            return GateResult(text, {"detector_error": 1}, {}, mode)
        raise OutboundRefused({"detector_error": 1}) from None
    spans = _merge(findings)
    found = dict(Counter(detector for detector, _, _ in spans))
    if not spans or mode == "allow":
        return GateResult(text, found, {}, mode)
    if mode == "refuse":
        raise OutboundRefused(found)
    out: list[str] = []
    last = 0
    for detector, start, end in spans:
        out.append(text[last:start])
        out.append(PLACEHOLDERS.get(detector, "[REDACTED]"))
        last = end
    out.append(text[last:])
    return GateResult("".join(out), found, dict(found), mode)


def _merge(findings: list[Finding]) -> list[tuple[str, int, int]]:
    """Overlapping findings as one span each, named by the first (findings are sorted)."""
    spans: list[tuple[str, int, int]] = []
    for f in findings:
        if spans and f.start < spans[-1][2]:
            detector, start, end = spans[-1]
            spans[-1] = (detector, start, max(end, f.end))
        else:
            spans.append((f.detector, f.start, f.end))
    return spans
