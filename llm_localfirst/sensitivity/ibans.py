"""IBANs: the one cut of a candidate that can be one, wherever and however it is written.

This module owns reading an IBAN candidate: in capitals with spaces, dots or dashes
("DE89 3704 0044 0532 0130 00"), in lower case or right after a word ("de89...",
"IBANDE89..."), and broken across a line break, including the "> " of a quoted
e-mail reply and the "[10:32] ana: " of chat history. Each country has one IBAN
length, so a candidate has at most one cut to check: mod-97 first, then
python-stdnum's country structure. The country table below is python-stdnum's
(a test checks they agree), kept here so that a candidate whose first two letters
name no IBAN country costs a set lookup and imports nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from .checksums import _mod97, _stdnum
from .finding import Finding
from .text import _rx, _words

__all__: list[str] = []

_IBAN_LENGTHS = {
    spec[:2]: int(spec[2:])
    for spec in _words(
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 "
        "DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 "
        "HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 "
        "MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 "
        "RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 "
        "VA22 VG24 XK20 YE30"
    ).words
}
_SEPARATORS = " .-"


def _iban(text: str, value: str, start: int) -> Iterator[Finding]:
    """The IBAN that ``value`` (at ``start`` in ``text``) begins, if any."""
    length = _IBAN_LENGTHS.get(value[:2].upper())
    if length is None:
        return
    cut = _cut(value, length)
    if cut is None:
        yield from _wrapped(text, value, start, length)
        return
    if cut < 0:
        return  # runs on past the country's length: "DE89370400440532013000123"
    compact = _compact(value[:cut]).upper()
    if _valid(compact):
        yield Finding("iban", compact[:2].lower(), start, start + cut)


def _cut(value: str, length: int) -> int | None:
    """Where ``value`` holds ``length`` characters besides separators, if it does and
    the next character ends a group there."""
    n = 0
    for i, c in enumerate(value):
        if c not in _SEPARATORS:
            n += 1
            if n == length:
                after = value[i + 1 : i + 2]
                return i + 1 if not after or after in _SEPARATORS else -1
    return None


def _compact(value: str) -> str:
    return value.replace(" ", "").replace(".", "").replace("-", "")


def _valid(compact: str) -> bool:
    return compact.isalnum() and _mod97(compact) == 1 and _stdnum().iban(compact)


def _wrapped(text: str, value: str, start: int, length: int) -> Iterator[Finding]:
    """An IBAN broken across a line, whatever quotes or chat prefix the next line has."""
    cont = _rx().alnum_continuation.match(text, start + len(value))
    if cont is None:
        return
    head = _compact(value)
    tail = cont.group("groups")
    cut = _cut(tail, length - len(head))
    if cut is None or cut < 0:
        return
    compact = (head + _compact(tail[:cut])).upper()
    if _valid(compact):
        yield Finding("iban", compact[:2].lower(), start, cont.start("groups") + cut)


def _on_glued_iban(text: str, at: int, wanted: frozenset[str]) -> Iterator[Finding]:
    """An IBAN in lower case ("de89 3704 ...") or right after a word ("IBANDE89...")."""
    if "iban" not in wanted or at < 2 or text[at - 2 : at].upper() not in _IBAN_LENGTHS:
        return
    word = at - 2
    while word > 0 and text[word - 1].isalpha() and at - word < 24:
        word -= 1
    if word > 0 and (text[word - 1].isalnum() or text[word - 1] == "_"):
        return  # inside a hash or an identifier
    m = _rx().iban_run.match(text, at)
    if m is not None:
        yield from _iban(text, text[at - 2 : m.end()], at - 2)
