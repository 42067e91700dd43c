"""Runs of digit groups: payment cards and national identity numbers, else phones.

This module owns the reading of a run such as "+44 (0)20 7946-0958",
"123.456.789-09" or "4111 1111 1111 1111": whether it is glued to a larger token
(a word, hash, version, price), where a run holds several values, and what each
value is. A payment card needs Luhn and a network's range; a national id needs
python-stdnum's check digits, and, where the checksum is weak, a distinctive
format or its label nearby (`national_ids` reads the newer countries); a run that
is neither goes to `phones`. One reading rules out another: a card is no phone
number. Cards are also read as people write them: with dots, right after a word
("order4111..."), after "order" or "ref" when full-length, and broken across a
line with the quote marks of an e-mail reply or the speaker of a chat line; a
number that is also a valid EAN/UPC barcode, or is followed by a unit, is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from . import national_ids
from .checksums import _luhn, _stdnum
from .finding import Finding
from .phones import _phone_labelled, _phone_region
from .text import (
    _CTX_AADHAAR,
    _CTX_BARCODE,
    _CTX_BSN,
    _CTX_CARD,
    _CTX_CPF,
    _CTX_ID,
    _CTX_IDNR,
    _CTX_MY_NUMBER,
    _CTX_NHS,
    _CTX_SSN,
    _column_labelled,
    _id_labelled_by,
    _joins,
    _labelled_by,
    _near,
    _not_personal,
    _rx,
    _unit_after,
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
    rf"(?:(?:{_S}?(?:{_D}|[./]){_S}?|{_S}{{1,2}}|{_S}?\({_S}?|{_S}?\){_S}?)(?:2[AB](?={_S}|\.)|[0-9]+))*"
    r"(?:[- ]?(?P<letter>[A-Zxk])(?![A-Za-z0-9_]))?"  # "...002x", "12.345.678-k" in lower case too
)
# A digit right after a letter (one test, shared by every reading of a glued digit:
# most digits the pass looks at are inside numbers), followed by a card's digits or an
# IBAN's groups.
_GLUED = r"(?<=[A-Za-z][0-9])"
_GLUED_CARD_IBAN = (
    r"(?=[0-9]{3}(?:[ .-]?[0-9]){8}"
    r"|(?<=[A-Za-z]{2}[0-9])[0-9][ .-]?[0-9A-Za-z]{4}[ .-]?[0-9A-Za-z]{4}[ .-]?[0-9A-Za-z]{2})"
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
    if _glued(text, start, end):
        if start > 1 and text[start - 1] == "-" and _after_word(text, start - 1, end):
            # "order-4111-1111-1111-1111": a card only, as right after a word.
            return list(_on_glued(text, start, _CARD_ONLY))
        return []
    if _rx().date.fullmatch(text, start, end):
        return []
    letter = (m.group("letter") or "").upper()
    if letter:
        value = "".join(c for c in text[start:end] if c.isalnum())
        # "6.758.319-E": a DNI below ten million written with dots drops its leading 0.
        dotted = len(value) == 8 and "." in text[start:end]
        if (len(value) == 9 or dotted) and _stdnum().dni(value.zfill(9)):
            return [Finding("national_id", "es_dni", start, end)]
        lettered = _lettered_id(text, start, m.start("letter"), letter)
        if lettered:
            return [Finding("national_id", lettered, start, end)]
        end = m.start("letter")
        while _plain(text[end - 1]) in " -":
            end -= 1
    found = _classify_number(text, start, end)
    if not any(f.detector == "payment_card" for f in found):
        # "4111 1111 1111\n> 1111": a card wrapped across a line break.
        wrapped = _wrapped_card(text, start, end) or _wrapped_card_tail(text, start, end)
        if wrapped:
            return [wrapped]
    if not found:
        # "4111 1111 1111 1111 12/26": in a run that mixes bare groups with groups
        # holding inner separators, the spaces between them are delimiters.
        for s, e in _segments(text, start, end):
            found += _classify_number(text, s, e)
    return found


def _after_word(text: str, dash: int, end: int) -> bool:
    """Whether a run after a dash follows a whole word and ends the token: "REF-4111...",
    not a UUID's or a hash's inner group ("3a-6639-4419-9616-eb6c")."""
    word = dash
    while word > 0 and text[word - 1].isalpha() and dash - word < 24:
        word -= 1
    if word == dash or (word > 0 and (text[word - 1].isalnum() or text[word - 1] in "-_")):
        return False
    return not (text[end : end + 1] == "-" and text[end + 1 : end + 2].isalnum())


def _lettered_id(text: str, start: int, end: int, letter: str) -> str | None:
    """A national id whose check character is a letter: "...002X", "12.345.678-K"."""
    run = _plain(text[start:end]).rstrip(" -")
    groups = _rx().groups.findall(run)
    digits = "".join(groups)
    if not digits.isdigit():
        return None
    separators = frozenset(c for c in run if c in " -./")
    sizes = tuple(len(g) for g in groups)
    return national_ids.classify(text, start, end, sizes, digits, separators, letter)


def _glued(text: str, start: int, end: int) -> bool:
    """Whether a run of digits is part of a larger token (a word, hash, UUID, price)."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if _joins(before) or _joins(after) or before in "_\\$€£¥" or after == "_":
        return True
    if before == "-" and start > 1 and not text[start - 2].isspace():
        return True  # "lat=-38.26", "pages 10-20"
    if before == ":" and after == ":":
        return True  # "arn:aws:iam::123456789012:role/x": a field of an ARN or URN
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
        sizes = tuple(len(g) for g in groups)
        network = _card_network(digits) if _card_shape(sizes, separators) else None
        if network and _card_counts(text, start, end, network, digits, sizes):
            found.append(Finding("payment_card", network, start, end))
        # A CNPJ or an Aadhaar number may pass Luhn too: report both readings.
        kind = _national_id(text, start, end, groups, digits, separators)
        if not kind and digits.isdigit():
            kind = national_ids.classify(text, start, end, sizes, digits, separators)
        if kind:
            found.append(Finding("national_id", kind, start, end))
    # Next to "phone" or "tel", a run that reads as a card or an id may be a phone
    # number too ("phone": "4915123341807" passes Luhn as a Visa number).
    if not found or _phone_labelled(text, start, end):
        region = _phone_region(text, start, end, run)
        # Under a CSV column named for an id ("sin", "nhs"), a mistyped id, no phone.
        if region and (
            found or not _column_labelled(text, start, _CTX_ID) or _phone_labelled(text, start, end)
        ):
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


_CARD_ONLY = frozenset({"payment_card"})
# Networks whose 15- or 16-digit numbers are told from order numbers by shape alone.
_MAJOR = frozenset({"visa", "mastercard", "amex", "discover", "jcb", "unionpay", "mir", "diners"})


def _card_shape(sizes: tuple[int, ...], separators: frozenset[str]) -> bool:
    """Whether groups are written as a card number: any spaces and dashes, or dots in fours."""
    if separators <= {" ", "-"}:
        return True
    if separators != {"."}:
        return False
    return (all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4) or sizes in (
        (4, 6, 5),
        (4, 6, 4),
    )


def _card_counts(
    text: str, start: int, end: int, network: str, digits: str, sizes: tuple[int, ...]
) -> bool:
    """Whether a Luhn-valid number in a network's range counts as a card where it is."""
    if _labelled_by(text, start, end, _CTX_CARD):
        return True
    if _near(text, start, end, _CTX_ID):
        return False  # "Aadhaar", "PESEL"... without "card": that id, not a card
    standard = len(sizes) == 1 or sizes in ((4, 4, 4, 4), (4, 6, 5))
    if standard and network in _MAJOR and len(digits) == (15 if network == "amex" else 16):
        # A full-length card of a major network, written as one: even after "order"
        # or "ref" (issue 9); order numbers rarely pass Luhn in a network's range.
        return True
    if len(digits) == 12 and len(sizes) == 1:
        return False  # a bare 12-digit Maestro only with "card": account ids, order numbers
    if len(sizes) == 1 and 12 <= len(digits) <= 14 and _gtin(digits):
        return False  # an EAN-13, UPC-A or GTIN-14 barcode; a 13-digit Visa only with "card"
    return not (
        _not_personal(text, start)
        or _near(text, start, end, _CTX_BARCODE)
        or (len(sizes) == 1 and _unit_after(text, end))
    )


def _gtin(digits: str) -> bool:
    """The GS1 check digit of an EAN/UPC/GTIN barcode."""
    total = sum((ord(c) - 48) * (3 if i % 2 else 1) for i, c in enumerate(reversed(digits)))
    return total % 10 == 0


def _wrapped_card(text: str, start: int, end: int) -> Finding | None:
    """A card number broken across a line, whatever quotes or chat prefix the next has."""
    cont = _rx().continuation.match(text, end)
    if cont is None:
        return None
    head = _rx().groups.findall(_plain(text[start:end]))
    tail = cont.group("digits").split()
    digits = "".join(head) + "".join(tail)
    sizes = tuple(len(g) for g in head + tail)
    if not (13 <= len(digits) <= 19) or not digits.isdigit():
        return None
    network = _card_network(digits)
    if network and _card_counts(text, start, cont.end(), network, digits, sizes):
        return Finding("payment_card", network, start, cont.end())
    return None


def _wrapped_card_tail(text: str, start: int, end: int) -> Finding | None:
    """The second line of a wrapped card, when the first holds too few digits for a run."""
    newline = text.rfind("\n", max(0, start - 60), start)
    if newline < 1 or not _rx().line_prefix.fullmatch(text, newline + 1, start):
        return None
    head = _rx().line_tail.search(text, max(0, newline - 40), newline + 1)
    if head is None:
        return None
    digits = "".join(_rx().groups.findall(head.group() + " " + _plain(text[start:end])))
    if not (13 <= len(digits) <= 19) or not digits.isdigit():
        return None
    network = _card_network(digits)
    if network and _card_counts(text, head.start(), end, network, digits, ()):
        return Finding("payment_card", network, head.start(), end)
    return None


def _on_glued(text: str, at: int, wanted: frozenset[str]) -> Iterator[Finding]:
    """A card number written right after a word: "order4111111111111111"."""
    if "payment_card" not in wanted or not text[at + 1 : at + 4].isdigit():
        return  # an IBAN's glue ("de89 3704"), not a card's
    word = at
    while word > 0 and text[word - 1].isalpha() and at - word < 24:
        word -= 1
    if word > 0 and (text[word - 1].isalnum() or text[word - 1] == "_"):
        return  # inside a hash or identifier: "a94a8fe5cc..."
    m = _rx().card_run.match(text, at)
    if m is None:
        return
    # The run may go on into an expiry date or a count: try cuts at group ends.
    groups = [(g.group(), g.end()) for g in _rx().groups.finditer(m.group())]
    separators = frozenset(c for c in _plain(m.group()) if c in " -.")
    for cut in range(len(groups), 0, -1):
        digits = "".join(g for g, _ in groups[:cut])
        if len(digits) < 12:
            return
        sizes = tuple(len(g) for g, _ in groups[:cut])
        network = _card_network(digits) if _card_shape(sizes, separators) else None
        end = at + groups[cut - 1][1]
        if network and _card_counts(text, at, end, network, digits, sizes):
            yield Finding("payment_card", network, at, end)
            return


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
    """A label is near, or at least no word like "order" or "invoice" before, no unit after."""
    return _id_labelled_by(text, start, end, label) or not (
        _not_personal(text, start) or _unit_after(text, end) or _near(text, start, end, _CTX_ID)
    )


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
            bare and _id_labelled_by(text, start, end, _CTX_SSN)
        ):
            if v.ssn(digits):
                return "us_ssn"
            if v.itin(digits):
                return "us_itin"
        if (sizes == (4, 2, 3) and separators == {"."}) or (
            bare and _id_labelled_by(text, start, end, _CTX_BSN)
        ):
            return "nl_bsn" if v.bsn(digits) else None
    elif nd == 10:
        return "gb_nhs" if v.nhs(digits) and _id_labelled_by(text, start, end, _CTX_NHS) else None
    elif nd == 11:
        # Two check digits pass one random number in a hundred: bare, they still
        # need no "order", "invoice"... nearby unless their own label is there.
        cpf_format = sizes == (3, 3, 3, 2) and separators == {".", "-"}
        if (
            (bare or cpf_format)
            and len(set(digits)) > 1
            and v.cpf(digits)
            and (not bare or _labelled(text, start, end, _CTX_CPF))
        ):
            return "br_cpf"
        if (
            (bare or sizes == (2, 3, 3, 3))
            and v.idnr(digits)
            and (not bare or _labelled(text, start, end, _CTX_IDNR))
        ):
            return "de_idnr"
    elif nd == 12 and (bare or (sizes == (4, 4, 4) and one_separator)):
        # Verhoeff and mod-11 each pass one random number in ten: ask for the
        # grouped format or a context word, and none of "order", "invoice", ...
        plain = not bare and not _not_personal(text, start)
        if v.aadhaar(digits) and (plain or _id_labelled_by(text, start, end, _CTX_AADHAAR)):
            return "in_aadhaar"
        if v.my_number(digits) and _id_labelled_by(text, start, end, _CTX_MY_NUMBER):
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
