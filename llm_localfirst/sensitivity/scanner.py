"""`Scanner`: the passes over a text, and the shared scanner of each detector set.

This module owns the order of the passes, which detectors each one serves, and
when a pass may be skipped: a text without its needle, or, in `Scanner.scan`, a
pass whose detectors have all fired already. It also reads the fields of a
URL-encoded form body ("iban=DE89+3704+...") a second time, decoded and after their
field name, and reports what they hold at the encoded value's span. Each pass
compiles its pattern the first time a text holds its needle, so building a scanner
compiles nothing.
"""

from __future__ import annotations

import functools
import itertools
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator

from .capitals import _CAPS, _LOWER_IDS, _on_caps, _on_lower_id
from .emails import _email_passes
from .finding import DETECTORS, Finding
from .ibans import _on_glued_iban
from .numbers import _GLUED, _GLUED_CARD_IBAN, _NUMBER, _on_glued, _on_number
from .secrets import _secret_passes
from .text import _forget

__all__ = ["Scanner", "scanner_for"]


class Scanner:
    """Runs a chosen set of detectors over text.

    A scanner is immutable and safe to share between threads; get one per detector
    set from `scanner_for` and reuse it for every request.

    Args:
        detectors: Names from `DETECTORS` to enable; all of them by default.

    Raises:
        ValueError: If a name is not one of `DETECTORS`.
    """

    __slots__ = ("_detectors", "_passes")

    def __init__(self, detectors: Iterable[str] = DETECTORS) -> None:
        names = frozenset((detectors,) if isinstance(detectors, str) else detectors)
        unknown = names.difference(DETECTORS)
        if unknown:
            raise ValueError(
                f"unknown detector(s): {', '.join(sorted(unknown))}; "
                f"valid names are: {', '.join(DETECTORS)}"
            )
        self._detectors = names
        self._passes = tuple(p for p in _passes() if p.detectors & names)

    @property
    def detectors(self) -> frozenset[str]:
        """The names of the enabled detectors."""
        return self._detectors

    def findings(self, text: str) -> list[Finding]:
        """Return every finding in ``text``.

        Args:
            text: The text to scan.

        Returns:
            Findings of the enabled detectors, without duplicates, sorted by span.
        """
        try:
            found = self._findings(text)
            for start, end, field in _form_fields(text):
                found.update(Finding(f.detector, f.kind, start, end) for f in self._findings(field))
        finally:
            _forget()
        return sorted(found, key=lambda f: (f.start, f.end, f.detector, f.kind))

    def _findings(self, text: str) -> set[Finding]:
        found: set[Finding] = set()
        for scan_pass in self._passes:
            if scan_pass.needle not in text:
                continue
            for match in scan_pass.find(text):
                found.update(scan_pass.handle(text, match, self._detectors))
        return found

    def scan(self, text: str) -> frozenset[str]:
        """Return the names of the detectors that fire on ``text``.

        Cheaper than `findings`: it skips the checks of detectors that have already
        fired and stops once every enabled detector has.

        Args:
            text: The text to scan.

        Returns:
            The subset of `detectors` with at least one finding.
        """
        try:
            remaining = self._scan(text, set(self._detectors))
            if remaining:
                for _, _, field in _form_fields(text):
                    if not self._scan(field, remaining):
                        break
        finally:
            _forget()
        return self._detectors.difference(remaining)

    def _scan(self, text: str, remaining: set[str]) -> set[str]:
        """Discard from ``remaining`` the detectors that fire on ``text``; return it."""
        for scan_pass in self._passes:
            if scan_pass.detectors.isdisjoint(remaining) or scan_pass.needle not in text:
                continue
            wanted = frozenset(remaining)
            for match in scan_pass.find(text):
                for finding in scan_pass.handle(text, match, wanted):
                    remaining.discard(finding.detector)
                if len(remaining) < len(wanted):
                    if not remaining:
                        return remaining
                    wanted = frozenset(remaining)
                    if scan_pass.detectors.isdisjoint(wanted):
                        break
        return remaining


# A field of a URL-encoded form whose value holds "+" or "%XX": "iban=DE89+3704+0044...".
# Starts with a literal; a value runs to the next "&", "=" or space: linear.
_FORM_FIELD = re.compile(r"=([^\s&=]*?(?:\+|%[0-9A-Fa-f]{2})[^\s&=]*)")
_FORM_KEY_MAX = 64


def _form_fields(text: str) -> Iterator[tuple[int, int, str]]:
    """The encoded form fields of ``text``: the value's span, and "key: value" decoded.

    People paste form bodies ("name=Ana+Silva&iban=DE89+3704+...") whose values only
    read as written once "+" and "%XX" are decoded; the key is the value's label.
    """
    if "=" not in text or ("+" not in text and "%" not in text):
        return
    for m in _FORM_FIELD.finditer(text):
        start = m.start()
        head = text[max(0, start - _FORM_KEY_MAX) : start]
        key = head[max(head.rfind(c) for c in "&?; \t\n") + 1 :]
        field = f"{key}: {m.group(1)}"
        yield m.start(1), m.end(), urllib.parse.unquote_plus(field, errors="replace")


@functools.cache
def _cached_scanner(detectors: frozenset[str]) -> Scanner:
    return Scanner(detectors)


def scanner_for(detectors: Iterable[str]) -> Scanner:
    """Return the shared `Scanner` for a set of detector names.

    Args:
        detectors: Names from `DETECTORS`.

    Returns:
        A scanner cached per distinct set, so callers build none per request.

    Raises:
        ValueError: If a name is not one of `DETECTORS`.
    """
    return _cached_scanner(frozenset((detectors,) if isinstance(detectors, str) else detectors))


# ----------------------------------------------------------------------------- passes


_Handler = Callable[[str, re.Match[str], frozenset[str]], Iterator[Finding]]


class _Pass:
    """One sweep over a text: a pattern, the detectors it serves, the handler of a match.

    `find` compiles the pattern on the first call and puts the compiled pattern's
    own ``finditer`` in its place, so a pass whose needle no text has held costs
    nothing, and later sweeps cost what they would on a pattern compiled up front.
    """

    __slots__ = ("detectors", "find", "handle", "needle", "source")

    def __init__(
        self, source: str, detectors: frozenset[str], handle: _Handler, needle: str = ""
    ) -> None:
        self.source = source
        self.detectors = detectors
        self.handle = handle
        self.needle = needle  # a text without it is skipped: `in` is faster than any regex
        self.find: Callable[[str], Iterator[re.Match[str]]] = self._compile

    def _compile(self, text: str) -> Iterator[re.Match[str]]:
        self.find = re.compile(self.source).finditer
        return self.find(text)


# Digits and capitals in one pass, only where a token starts: not after a letter or digit.
# Or a digit right after a letter that starts a card, an IBAN or a lower-case id:
# "order4111...", "de89 3704...", "s1234567d".
_TOKEN = (
    rf"[+(0-9A-Z](?:(?<![A-Za-z0-9_][A-Za-z0-9])"
    rf"(?:(?<=[A-Z]){_CAPS}|{_NUMBER}(?P<number>))|{_GLUED}(?:{_GLUED_CARD_IBAN}|{_LOWER_IDS})(?P<glued>))"
)


def _on_token(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    if m.lastgroup == "number":
        return _on_number(text, m, wanted)
    if m.lastgroup == "glued":
        return itertools.chain(
            _on_glued(text, m.start(), wanted),
            _on_glued_iban(text, m.start(), wanted),
            _on_lower_id(text, m.start(), wanted),
        )
    return _on_caps(text, m, wanted)


@functools.cache
def _passes() -> tuple[_Pass, ...]:
    # Every pass regex starts with a literal, which `re` finds at memchr speed, or,
    # for the one pass over digits and capitals, with a character class.
    return (
        *(_Pass(*spec) for spec in _email_passes()),
        _Pass(_TOKEN, frozenset(DETECTORS) - {"email"}, _on_token),
        *(_Pass(*spec) for spec in _secret_passes()),
    )
