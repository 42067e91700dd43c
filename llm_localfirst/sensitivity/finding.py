"""`Finding`, the one value the detectors return, and the names of the detectors.

A finding describes a detected value by its detector, a kind label and its span,
never by its text: nothing in this package returns, logs or stores what it matched.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DETECTORS", "Finding"]

DETECTORS: tuple[str, ...] = ("email", "phone", "payment_card", "iban", "national_id", "secret")
"""Names of the built-in detectors."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value, described without its text.

    Attributes:
        detector: The detector that fired, one of `DETECTORS`.
        kind: A finer label such as ``"visa"``, ``"us_ssn"`` or ``"jwt"``.
        start: Offset of the value's first character in the scanned text.
        end: Offset one past its last character.
    """

    detector: str
    kind: str
    start: int
    end: int
