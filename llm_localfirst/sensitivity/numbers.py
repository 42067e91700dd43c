"""Runs of digit groups: payment cards and national identity numbers, else phones.

This module owns the reading of a run such as "+44 (0)20 7946-0958",
"123.456.789-09" or "4111 1111 1111 1111": whether it is glued to a larger token
(a word, hash, version, price), where a run holds several values, and what each
value is. A payment card needs Luhn and a network's range; a national id needs
python-stdnum's check digits, and, where the checksum is weak, a distinctive
format or its label nearby; a run that is neither goes to `phones`. One reading
rules out another: a card is no phone number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .checksums import _luhn, _stdnum
from .finding import Finding
from .phones import _phone_region
from .text import (
    _CTX_AADHAAR,
    _CTX_BSN,
    _CTX_CARD,
    _CTX_CPF,
    _CTX_ID,
    _CTX_IDNR,
    _CTX_MY_NUMBER,
    _CTX_NHS,
    _CTX_SSN,
    _joins,
    _near,
    _not_personal,
    _rx,
    _Words,
)

# A run of digit groups, one separator between groups: "+44 (0)20 7946-0958",
# "123.456.789-09", "12.345.678/0001-95", "2 85 12 2A 006 084 36", "12345678-Z".
# Spaces include the no-break and thin ones of French typography, dashes the
# Unicode ones; `_plain` maps them back to " " and "-" one for one.
_S, _D = "[ \u00a0\u2009\u202f]", "[-\u2010-\u2013]"
_NUMBER = (
    r"(?:(?<=\()\+?(?=[0-9])|(?<=\+)(?=[0-9])|(?<=[0-9]))"
    r"(?=[0-9 \u00a0\u2009\u202f()./+AB\u2010-\u2013-]{6})"
    r"(?=(?:[ \u00a0\u2009\u202f()./+AB\u2010-\u2013-]{0,2}[0-9]){6})"  # six digits ahead
    # Not an ISO date standing alone (its first digit is already consumed).
    r"(?!(?:(?<=1)9|(?<=2)0)[0-9]{2}-[01][0-9]-[0-3][0-9](?![0-9]|[ ][0-9]))"
    r"[0-9]*"
    r"(?:(?<=[0-9]{5}2)[AB][0-9]{8})?"
    rf"(?:(?:{_S}?(?:{_D}|[./]){_S}?|{_S}|{_S}?\({_S}?|{_S}?\){_S}?)(?:2[AB](?={_S}|\.)|[0-9]+))*"
    r"(?:[- ]?(?P<letter>[A-Z])(?!\w))?"
)
_PLAIN = str.maketrans("\u00a0\u2009\u202f\u2010\u2011\u2012\u2013", "   ----")


def _plain(run: str) -> str:
    """``run`` with its Unicode spaces and dashes as " " and "-", one for one."""
    return run if run.isascii() else run.translate(_PLAIN)


def _on_number(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    # Every reading of a run is worked out, whatever is wanted, because one reading
    # rules out another (a card is no phone number): `scan` must agree with
    # `findings` however many detectors have already fired.
    return (f for f in _number_findings(text, m) if f.detector in wanted)


def _number_findings(text: str, m: re.Match[str]) -> list[Finding]:
    start, end = m.span()
    if end - start < 7:
        return []
    if _glued(text, start, end) or _rx().date.fullmatch(text, start, end):
        return []
    if m.group("letter"):
        value = "".join(c for c in text[start:end] if c.isalnum())
        if len(value) == 9 and _stdnum().dni(value):
            return [Finding("national_id", "es_dni", start, end)]
        end = m.start("letter")
        while _plain(text[end - 1]) in " -":
            end -= 1
    found = _classify_number(text, start, end)
    if not found:
        # "4111 1111 1111 1111 12/26": in a run that mixes bare groups with groups
        # holding inner separators, the spaces between them are delimiters.
        for s, e in _segments(text, start, end):
            found += _classify_number(text, s, e)
    return found


def _glued(text: str, start: int, end: int) -> bool:
    """Whether a run of digits is part of a larger token (a word, hash, UUID, price)."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if _joins(before) or _joins(after) or before in "_\\$€£¥" or after == "_":
        return True
    if before == "-" and start > 1 and not text[start - 2].isspace():
        return True  # "lat=-38.26", "pages 10-20"
    # "v1.2.3", "a716-4466", "1,234,567", "14:22:01", "12,50": joined to a token.
    if start > 1 and (
        (before in "-./" and text[start - 2].isalnum())
        or (before in ",:" and text[start - 2].isdigit())
    ):
        return True
    return end + 1 < len(text) and (
        (after in "-/" and text[end + 1].isalnum()) or (after in ".,:" and text[end + 1].isdigit())
    )


def _segments(text: str, start: int, end: int) -> list[tuple[int, int]]:
    run = _plain(text[start:end])
    if run[0] in "+(" or run[:2] == "00" or " " not in run or not any(c in run for c in "-./"):
        return []
    pieces: list[tuple[int, int, bool]] = []
    pos = start
    for piece in run.split(" "):
        if piece:
            bare = piece.isdigit()
            if bare and pieces and pieces[-1][2]:
                pieces[-1] = (pieces[-1][0], pos + len(piece), True)
            else:
                pieces.append((pos, pos + len(piece), bare))
        pos += len(piece) + 1
    return [(s, e) for s, e, _ in pieces] if len(pieces) > 1 else []


def _classify_number(text: str, start: int, end: int) -> list[Finding]:
    run = _plain(text[start:end])
    if run[0] == "(" and ")" not in run:
        run, start = run[1:], start + 1
    groups = _rx().groups.findall(run)
    digits = "".join(groups)
    if not 7 <= len(digits) <= 19:
        return []
    found = []
    if run[0] != "+" and run[:2] != "(+":
        separators = frozenset(c for c in run if c in " -./()")
        network = _card_network(digits) if separators <= {" ", "-"} else None
        # Not next to "order" or "Aadhaar" unless "card" is near too.
        if network and (_near(text, start, end, _CTX_CARD) or (
            not _not_personal(text, start) and not _near(text, start, end, _CTX_ID)
        )):
            found.append(Finding("payment_card", network, start, end))
        # A CNPJ or an Aadhaar number may pass Luhn too: report both readings.
        kind = _national_id(text, start, end, groups, digits, separators)
        if kind:
            found.append(Finding("national_id", kind, start, end))
    if not found:
        region = _phone_region(text, start, end, run)
        if region:
            found.append(Finding("phone", region.lower(), start, end))
    return found


# ----------------------------------------------------------------------------- cards

# (low, high, lengths, network): the number's first len(str(low)) digits lie in
# [low, high]. More specific ranges come first.
_CARD_RANGES: tuple[tuple[int, int, frozenset[int], str], ...] = (
    (2200, 2204, frozenset(range(16, 20)), "mir"),
    (2221, 2720, frozenset({16}), "mastercard"),
    (51, 55, frozenset({16}), "mastercard"),
    (34, 34, frozenset({15}), "amex"),
    (37, 37, frozenset({15}), "amex"),
    (3528, 3589, frozenset(range(16, 20)), "jcb"),
    (300, 305, frozenset(range(14, 20)), "diners"),
    (3095, 3095, frozenset(range(14, 20)), "diners"),
    (36, 36, frozenset(range(14, 20)), "diners"),
    (38, 39, frozenset(range(14, 20)), "diners"),
    (6011, 6011, frozenset(range(16, 20)), "discover"),
    (622126, 622925, frozenset(range(16, 20)), "discover"),
    (644, 649, frozenset(range(16, 20)), "discover"),
    (65, 65, frozenset(range(16, 20)), "discover"),
    (62, 62, frozenset(range(16, 20)), "unionpay"),
    (60, 60, frozenset({16}), "rupay"),
    (81, 82, frozenset({16}), "rupay"),
    (9792, 9792, frozenset({16}), "troy"),
    (4, 4, frozenset({13, 16, 19}), "visa"),
    (50, 50, frozenset(range(12, 20)), "maestro"),
    (56, 69, frozenset(range(12, 20)), "maestro"),
)


def _card_network(digits: str) -> str | None:
    if len(digits) < 12 or not digits.isdigit() or len(set(digits)) < 2 or not _luhn(digits):
        return None
    for low, high, lengths, network in _CARD_RANGES:
        if len(digits) in lengths and low <= int(digits[: len(str(low))]) <= high:
            return network
    return None


# ----------------------------------------------------------------------------- national ids


def _timestamp(digits: str) -> bool:
    """Whether 14 digits read as a date and time, 20240315142201."""
    month, day = digits[4:6], digits[6:8]
    return digits[:2] in ("19", "20") and "01" <= month <= "12" and "01" <= day <= "31"


def _labelled(text: str, start: int, end: int, label: _Words) -> bool:
    """A label is near, or at least no word like "order" or "invoice" is."""
    return _near(text, start, end, label) or not _not_personal(text, start)


def _national_id(
    text: str, start: int, end: int, groups: list[str], digits: str, separators: frozenset[str]
) -> str | None:
    """Kind of national id that a run of digit groups is, if any."""
    v = _stdnum()
    sizes = tuple(len(g) for g in groups)
    bare = len(groups) == 1
    one_separator = len(separators) == 1
    nd = len(digits)
    if nd == 15:
        # Sex 1/2 (7/8: provisional numbers), and written bare or in spaced groups.
        ok = digits[0] in "1278" and separators <= {" "} and v.nir(digits)
        return "fr_nir" if ok else None
    if not digits.isdigit():
        return None
    if nd == 9:
        if (sizes == (3, 2, 4) and one_separator and separators <= {"-", " "}) or (
            bare and _near(text, start, end, _CTX_SSN)
        ):
            if v.ssn(digits):
                return "us_ssn"
            if v.itin(digits):
                return "us_itin"
        if (sizes == (4, 2, 3) and separators == {"."}) or (
            bare and _near(text, start, end, _CTX_BSN)
        ):
            return "nl_bsn" if v.bsn(digits) else None
    elif nd == 10:
        return "gb_nhs" if v.nhs(digits) and _near(text, start, end, _CTX_NHS) else None
    elif nd == 11:
        # Two check digits pass one random number in a hundred: bare, they still
        # need no "order", "invoice"... nearby unless their own label is there.
        cpf_format = sizes == (3, 3, 3, 2) and separators == {".", "-"}
        if (bare or cpf_format) and len(set(digits)) > 1 and v.cpf(digits) and (
            not bare or _labelled(text, start, end, _CTX_CPF)
        ):
            return "br_cpf"
        if (bare or sizes == (2, 3, 3, 3)) and v.idnr(digits) and (
            not bare or _labelled(text, start, end, _CTX_IDNR)
        ):
            return "de_idnr"
    elif nd == 12 and (bare or (sizes == (4, 4, 4) and one_separator)):
        # Verhoeff and mod-11 each pass one random number in ten: ask for the
        # grouped format or a context word, and none of "order", "invoice", ...
        plain = not bare and not _not_personal(text, start)
        if v.aadhaar(digits) and (plain or _near(text, start, end, _CTX_AADHAAR)):
            return "in_aadhaar"
        if v.my_number(digits) and _near(text, start, end, _CTX_MY_NUMBER):
            return "jp_my_number"
    elif nd == 14:
        # Bare, the branch number ("0001") must look like one: this keeps out the
        # 14-digit timestamps and ids that pass the two check digits by chance.
        shaped = sizes == (2, 3, 3, 4, 2) or (
            bare and digits[8:10] == "00" and not _timestamp(digits)
        )
        labelled = not bare or _labelled(text, start, end, _CTX_CPF)
        return "br_cnpj" if shaped and labelled and v.cnpj(digits) else None
    return None
