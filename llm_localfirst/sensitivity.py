"""Built-in detectors of sensitive content in prompts.

This module owns the detectors that decide whether a prompt carries personal data
or credentials and so must stay on a local model: e-mail addresses, phone numbers,
payment cards, IBANs, national identity numbers and secrets (API keys and tokens,
private-key blocks, JWTs, passwords in assignments, credentials in URLs).

How it works: a handful of regular-expression passes find candidates in one linear
sweep each. Every pass starts with a literal ("@", "_", "-", "eyJ", ":", "=",
"://"), which `re` finds at memchr speed, except the one over digits and capitals,
which starts with a character class and only where a token starts. The costly
checks (Luhn, mod-97, phone-number metadata, python-stdnum check digits, JWT
header decoding) run on candidates only. An identifier whose checksum is weak (a
nine-digit BSN passes its 11-proof one time in eleven) counts only in a
distinctive format or next to a label such as "BSN" or "Aadhaar", and a number
right after "order", "invoice" or "tracking" needs its own label.

What it must never do: return, log or store the matched text (a `Finding` carries
only the detector, a kind label and a span), or lower sensitivity: detectors only
add findings, and callers treat an exception raised here as "sensitive". Importing
it compiles nothing and imports neither ``phonenumbers`` nor ``stdnum``; that work
(0.1-0.3 s) happens once, when the first `Scanner` is built.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DETECTORS", "Finding", "Scanner", "scanner_for"]

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
        found: set[Finding] = set()
        for scan_pass in self._passes:
            if scan_pass.needle not in text:
                continue
            for match in scan_pass.find(text):
                found.update(scan_pass.handle(text, match, self._detectors))
        return sorted(found, key=lambda f: (f.start, f.end, f.detector, f.kind))

    def scan(self, text: str) -> frozenset[str]:
        """Return the names of the detectors that fire on ``text``.

        Cheaper than `findings`: it skips the checks of detectors that have already
        fired and stops once every enabled detector has.

        Args:
            text: The text to scan.

        Returns:
            The subset of `detectors` with at least one finding.
        """
        remaining = set(self._detectors)
        for scan_pass in self._passes:
            if scan_pass.detectors.isdisjoint(remaining) or scan_pass.needle not in text:
                continue
            wanted = frozenset(remaining)
            for match in scan_pass.find(text):
                for finding in scan_pass.handle(text, match, wanted):
                    remaining.discard(finding.detector)
                if len(remaining) < len(wanted):
                    if not remaining:
                        return self._detectors
                    wanted = frozenset(remaining)
                    if scan_pass.detectors.isdisjoint(wanted):
                        break
        return self._detectors.difference(remaining)


@functools.lru_cache(maxsize=64)
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


class _Pass(NamedTuple):
    find: Callable[[str], Iterator[re.Match[str]]]
    detectors: frozenset[str]
    handle: _Handler
    needle: str = ""  # a text without it is skipped: `in` is faster than any regex


@functools.cache
def _passes() -> tuple[_Pass, ...]:
    # Every pass regex starts with a literal, which `re` finds at memchr speed, or,
    # for the one pass over digits and capitals, with a character class.
    _phone_regions()
    _stdnum()
    rx, secret = _rx(), frozenset({"secret"})
    return (
        _Pass(rx.email.finditer, frozenset({"email"}), _on_email, "@"),
        _Pass(rx.token.finditer, frozenset(DETECTORS) - {"email"}, _on_token),
        _Pass(rx.underscore.finditer, secret, _on_prefixed, "_"),
        _Pass(rx.dash.finditer, secret, _on_prefixed, "-"),
        _Pass(rx.jwt.finditer, secret, _on_jwt, "eyJ"),
        *(
            _Pass(regex.finditer, secret, _on_assignment, op)
            for op, regex in zip(_ASSIGNMENT_OPS, rx.assignments, strict=True)
        ),
        _Pass(rx.url.finditer, secret, _on_url, "://"),
        _Pass(rx.authorization.finditer, secret, _on_authorization, "uthorization"),
    )


class _Rx:
    """The compiled patterns, built once on first use (compiling costs ~50 ms)."""

    def __init__(self) -> None:
        self.email = re.compile(_EMAIL)
        self.token = re.compile(
            # Only where a token starts: not after a letter or digit.
            rf"[+(0-9A-Z](?<![A-Za-z0-9_][A-Za-z0-9])"
            rf"(?:(?<=[A-Z]){_CAPS}|{_NUMBER}(?P<number>))"
        )
        self.underscore = re.compile(_UNDERSCORE_PREFIXED)
        self.dash = re.compile(_DASH_PREFIXED)
        self.jwt = re.compile(_JWT)
        self.assignments = tuple(re.compile(_assignment(op)) for op in _ASSIGNMENT_OPS)
        self.assigned_value = re.compile(_ASSIGNED_VALUE)
        self.secret_name_part = re.compile("|".join(map(re.escape, _SECRET_NAME_PARTS)))
        self.non_letters = re.compile("[^a-z]+")
        self.url = re.compile(_URL)
        self.authorization = re.compile(_AUTHORIZATION)
        self.date = re.compile(_DATE)
        self.groups = re.compile(r"2[AB](?![0-9])|[0-9]+(?:(?<=2)[AB][0-9]+)?")
        self.word = re.compile(r"[^\W\d_]+")
        self.pem_end = re.compile(r"-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----")
        self.aws_secret = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
        self.placeholder = re.compile(_PLACEHOLDER)
        self.code_like = re.compile(
            r"[A-Za-z_$]+(?:\.[A-Za-z_$]+)+|(?:self|this|cls|os|process|config)\b.*"
        )
        self.masked = re.compile(rf"\*+|x+|{_VARIABLE}|<[^>]*>|\{{\{{.*\}}\}}|%\w+%")


@functools.cache
def _rx() -> _Rx:
    return _Rx()


class _Words(NamedTuple):
    """Context words: whole lower-case words, and phrases found anywhere."""

    words: frozenset[str]
    phrases: tuple[str, ...] = ()


def _words(spec: str, *phrases: str) -> _Words:
    return _Words(frozenset(spec.split(" ")), phrases)


_CTX_SSN = _words("ssn ssns itin taxpayer", "social security", "soc sec", "ss#")
_CTX_NHS = _words("nhs", "national health")
_CTX_BSN = _words("bsn sofinummer", "burgerservice", "citizen service")
_CTX_AADHAAR = _words("aadhaar aadhar uid uidai", "आधार")
_CTX_CPF = _words("cpf cnpj", "cadastro")
_CTX_IDNR = _words("idnr identifikationsnummer", "steuer", "tax id")
_CTX_MY_NUMBER = _words("mynumber", "my number", "マイナンバー", "個人番号", "individual number")
_CTX_PHONE = _words(
    "tel tél phone phones telephone call calls called calling mobile mob cell cellphone fax"
    " whatsapp sms text ring dial contact reach telefon telefonnummer téléphone portable"
    " móvil movil teléfono telefono cellulare telefone celular handy gsm bel bellen anrufen"
    " appeler appelez llamar llame chiamare chiama ligar ligue",
    "電話", "携帯", "☎", "📞", "📱",
)
_CTX_CARD = _words(
    "card cards carte karte kartennummer tarjeta carta cartão cartao visa mastercard amex cc"
    " credit debit cvv cvc expiry exp pan", "kreditkarte", "クレジット", "カード",
)
_CTX_ID_CARD = _words("perso", "ausweis", "id card", "identity card", "identity document")
# Labels of other identifiers: a number next to "NHS" or "SSN" is no phone number.
_CTX_ID = _words(
    "ssn itin nhs bsn sofinummer aadhaar aadhar uid cpf cnpj idnr iban nir insee dni nie"
    " nino pan", "ausweis", "social security", "national insurance", "steuer", "burgerservice",
    "my number", "マイナンバー", "個人番号", "sécurité sociale", "codice fiscale",
)
_CTX_NOT_PERSONAL = _words(
    "order invoice inv tracking track ref reference ticket case sku isbn serial part po"
    " receipt confirmation booking transaction txn build version batch lot item product"
    " shipment parcel no nr",
    "#",
)


def _has_words(text: str, lo: int, hi: int, ctx: _Words) -> bool:
    window = text[max(0, lo):hi].lower()
    if not ctx.words.isdisjoint(_rx().word.findall(window)):
        return True
    return any(phrase in window for phrase in ctx.phrases)


def _near(text: str, start: int, end: int, ctx: _Words) -> bool:
    """Whether a context word occurs shortly before or just after a span."""
    return _has_words(text, start - 40, end + 20, ctx)


def _not_personal(text: str, start: int) -> bool:
    """Whether a word such as "order" or "invoice" comes just before a span."""
    return _has_words(text, start - 24, start, _CTX_NOT_PERSONAL)


def _char_classes(value: str) -> int:
    """How many of lower case, upper case, digits and symbols ``value`` mixes."""
    chars = set(value)
    return sum((
        any(c.islower() for c in chars),
        any(c.isupper() for c in chars),
        any(c.isdigit() for c in chars),
        any(not c.isalnum() for c in chars),
    ))


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


# ----------------------------------------------------------------------------- e-mail

_EMAIL = r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:xn--[a-z0-9-]{2,59}|[^\W\d_]{2,63})(?![\w-])"
_LOCAL_PART_SYMBOLS = frozenset("!#$%&*+=?^_`{|}~-.")
_FILE_SUFFIXES = _words(
    "png jpg jpeg gif svg webp ico bmp tif tiff pdf js ts css html htm py md txt json yaml yml"
    " xml toml lock map"
).words


def _on_email(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    at = start = m.start()
    while start > max(0, at - 64) and (
        text[start - 1].isalnum() or text[start - 1] in _LOCAL_PART_SYMBOLS
    ):
        start -= 1
    while start < at and text[start] in ".-":
        start += 1
    end = m.end()
    if start == at or m.group().rsplit(".", 1)[1].lower() in _FILE_SUFFIXES:
        return
    if text.startswith(":", end) and end + 1 < len(text) and not text[end + 1].isspace():
        return  # "git@github.com:org/repo.git", an scp-style remote
    yield Finding("email", "email", start, end)


# ----------------------------------------------------------------------------- numbers

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
_DATE = (
    r"(?:19|20)[0-9]{2}([-./])[01]?[0-9]\1[0-3]?[0-9]"
    r"|[0-3]?[0-9]([-./])[01]?[0-9]\2(?:19|20)?[0-9]{2}"
)


def _on_token(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    if m.lastgroup == "number":
        return _on_number(text, m, wanted)
    return _on_caps(text, m, wanted)


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


def _joins(char: str) -> bool:
    """Whether ``char`` joins a value to a word; CJK text has no spaces between them."""
    return char.isalnum() and char < "\u2e80"


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


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_network(digits: str) -> str | None:
    if len(digits) < 12 or not digits.isdigit() or len(set(digits)) < 2 or not _luhn(digits):
        return None
    for low, high, lengths, network in _CARD_RANGES:
        if len(digits) in lengths and low <= int(digits[: len(str(low))]) <= high:
            return network
    return None


# ----------------------------------------------------------------------------- national ids


class _StdNum(NamedTuple):
    ssn: Callable[[str], bool]
    itin: Callable[[str], bool]
    nhs: Callable[[str], bool]
    nir: Callable[[str], bool]
    idnr: Callable[[str], bool]
    dni: Callable[[str], bool]
    nie: Callable[[str], bool]
    codice_fiscale: Callable[[str], bool]
    bsn: Callable[[str], bool]
    cpf: Callable[[str], bool]
    cnpj: Callable[[str], bool]
    aadhaar: Callable[[str], bool]
    pan: Callable[[str], bool]
    my_number: Callable[[str], bool]
    iban: Callable[[str], bool]


@functools.cache
def _stdnum() -> _StdNum:
    from stdnum import iban
    from stdnum.br import cnpj, cpf
    from stdnum.de import idnr
    from stdnum.es import dni, nie
    from stdnum.fr import nir
    from stdnum.gb import nhs
    from stdnum.in_ import aadhaar, pan
    from stdnum.it import codicefiscale
    from stdnum.jp import in_
    from stdnum.nl import bsn
    from stdnum.us import itin, ssn

    return _StdNum(
        ssn=ssn.is_valid, itin=itin.is_valid, nhs=nhs.is_valid, nir=nir.is_valid,
        idnr=idnr.is_valid, dni=dni.is_valid, nie=nie.is_valid,
        codice_fiscale=codicefiscale.is_valid, bsn=bsn.is_valid, cpf=cpf.is_valid,
        cnpj=cnpj.is_valid, aadhaar=aadhaar.is_valid, pan=pan.is_valid,
        my_number=in_.is_valid,
        # Mod-97 and the country's length and structure; not the national bank
        # registries of some countries, which lag behind real accounts.
        iban=functools.partial(iban.is_valid, check_country=False),
    )


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


# ----------------------------------------------------------------------------- phones

# Regions tried for numbers in national format, with the groupings (sizes of the
# digit groups as written) their numbers are written in, for numbers written
# without and with the trunk prefix "0". A number of the wrong shape for a region
# is not tried there: "928 543 3794" has a US shape, so it is no Indian mobile.
_Shape = Callable[[tuple[int, ...]], bool]


def _one_of(*shapes: tuple[int, ...]) -> _Shape:
    return frozenset(shapes).__contains__


def _groups(*counts: int) -> _Shape:
    return lambda sizes: len(sizes) in counts


_NEVER: _Shape = _groups()
_NANP = _one_of((3, 3, 4), (1, 3, 3, 4))
_NATIONAL_SHAPES: dict[str, tuple[_Shape, _Shape]] = {
    # In order of preference: a number valid in several regions is labelled with the
    # first (the permissive German plan comes last).
    "US": (_NANP, _NEVER),
    "CA": (_NANP, _NEVER),
    "FR": (_NEVER, _one_of((2, 2, 2, 2, 2))),
    "NL": (_NEVER, _groups(2, 3)),
    "JP": (_NEVER, _groups(3)),
    "ES": (_one_of((3, 3, 3), (3, 2, 2, 2), (2, 3, 2, 2)), _NEVER),
    "IT": (
        _one_of((3, 3, 4), (3, 7), (3, 3, 3), (3, 6)),
        _one_of((2, 4, 4), (2, 8), (3, 7), (4, 6), (3, 3, 4)),
    ),
    "BR": (_one_of((2, 4, 4), (2, 5, 4)), _NEVER),
    "IN": (_one_of((5, 5)), _one_of((6, 5))),
    "CN": (_one_of((3, 4, 4)), _one_of((3, 4, 4), (3, 8), (4, 7), (4, 8))),
    "MX": (_one_of((2, 4, 4)), _NEVER),
    "AU": (_NEVER, _groups(2, 3)),
    "GB": (_NEVER, _one_of((3, 4, 4), (4, 3, 4), (5, 6), (5, 5), (4, 6), (5, 3, 3))),
    "DE": (_NEVER, _groups(2)),
}
# An area code in brackets: "(415) 555-2671" is North American, "(11) 91234-5678"
# Brazilian, "(02) 9876 5432" has a trunk prefix.
_BRACKETED_AREA = {3: frozenset({"US", "CA"}), 2: frozenset({"BR", "MX"})}
# Separators a region's numbers are written with ("11 2345-6789" in Brazil).
_SEPARATORS: dict[str, Callable[[str], bool]] = {
    "BR": lambda run: run[0] == "(" or run[-5] == "-",
    "JP": lambda run: "-" in run or "(" in run,
    "IT": lambda run: set(run) <= set("0123456789 "),
    "MX": lambda run: set(run) <= set("0123456789 ()"),
    "GB": lambda run: set(run) <= set("0123456789 ()"),
    "AU": lambda run: set(run) <= set("0123456789 ()"),
}
# Also tried, in any grouping, when a word such as "phone" or "tel" is near.
_MORE_PHONE_REGIONS = ("BE", "CH", "AT", "IE", "SE", "KR", "ZA", "NZ", "TR", "RU", "PL", "PT")
# Regions whose national numbers are commonly written without the trunk prefix.
_WITHOUT_TRUNK = frozenset({"US", "CA", "ES", "IT", "BR", "IN", "MX", "CN"})


class _Desc(NamedTuple):
    lengths: frozenset[int]
    pattern: re.Pattern[str]


class _Region(NamedTuple):
    code: str
    national_prefix: str
    general: _Desc
    types: tuple[_Desc, ...]

    def valid(self, nsn: str) -> bool:
        """Mirror `phonenumbers.is_valid_number` for a national significant number."""
        n = len(nsn)
        if n not in self.general.lengths or not self.general.pattern.fullmatch(nsn):
            return False
        return any((not d.lengths or n in d.lengths) and d.pattern.fullmatch(nsn)
                   for d in self.types)


@functools.cache
def _region(code: str) -> _Region | None:
    # phonenumbers' parse() + is_valid_number() costs ~50 us per region tried;
    # matching its metadata's patterns directly costs ~1 us.
    from phonenumbers import PhoneMetadata, PhoneNumberDesc

    def desc(d: PhoneNumberDesc | None) -> _Desc | None:
        if d is None or not d.national_number_pattern:
            return None
        return _Desc(frozenset(d.possible_length or ()), re.compile(d.national_number_pattern))

    md = PhoneMetadata.metadata_for_region(code)
    general = desc(md.general_desc) if md is not None else None
    if md is None or general is None:
        return None
    kinds = (md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number,
             md.pager, md.uan, md.voicemail, md.fixed_line, md.mobile)
    types = tuple(d for d in map(desc, kinds) if d is not None)
    return _Region(code, md.national_prefix or "", general, types)


class _PhoneRegions(NamedTuple):
    national: tuple[_Region, ...]
    with_context: tuple[_Region, ...]
    by_country_code: dict[int, tuple[str, ...]]


@functools.cache
def _phone_regions() -> _PhoneRegions:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    national = tuple(filter(None, map(_region, _NATIONAL_SHAPES)))
    more = tuple(filter(None, map(_region, _MORE_PHONE_REGIONS)))
    by_cc = {cc: tuple(codes) for cc, codes in COUNTRY_CODE_TO_REGION_CODE.items()}
    return _PhoneRegions(national, national + more, by_cc)


def _international_region(digits: str) -> str | None:
    by_country_code = _phone_regions().by_country_code
    for cc_len in (1, 2, 3):
        codes = by_country_code.get(int(digits[:cc_len]))
        if codes:
            nsn = digits[cc_len:]
            for region in filter(None, map(_region, codes)):
                trunk = region.national_prefix
                if region.valid(nsn) or (
                    trunk and nsn.startswith(trunk) and region.valid(nsn[len(trunk):])
                ):
                    return region.code
            return None
    return None


def _national_region(run: str, digits: str, sizes: tuple[int, ...], context: bool) -> str | None:
    regions = _phone_regions()
    only = _BRACKETED_AREA.get(sizes[0]) if run[0] == "(" and digits[0] != "0" else None
    for region in regions.with_context if context else regions.national:
        if only is not None and region.code not in only:
            continue
        if not context:
            shape = _NATIONAL_SHAPES[region.code][digits[0] == "0"]
            style = _SEPARATORS.get(region.code)
            if not shape(sizes) or (style and not style(run)):
                continue
        trunk = region.national_prefix
        if trunk and digits.startswith(trunk) and region.valid(digits[len(trunk):]):
            return region.code
        # Italy and Spain have no trunk prefix: their numbers are dialled as written.
        without_trunk = not trunk or (region.code in _WITHOUT_TRUNK and digits[0] != "0")
        if without_trunk and region.valid(digits):
            return region.code
    return None


def _phone_region(text: str, start: int, end: int, run: str) -> str | None:
    """Region of the phone number that a run of digit groups is, if any."""
    international = run[0] == "+" or run[:2] == "(+" or run[:2] == "00"
    # "+44 (0)20 ..." drops the trunk prefix; "(0)20 ..." keeps it.
    groups = _rx().groups.findall(run.replace("(0)", "" if international else "0"))
    digits = "".join(groups)
    if not 7 <= len(digits) <= 15 or not digits.isdigit():
        return None
    sizes = tuple(len(g) for g in groups)
    if international and (run[:2] != "00" or len(groups) > 1):
        if ((len(groups) < 2 and len(digits) < 9) or 1 in sizes[2:]) and not _near(
            text, start, end, _CTX_PHONE
        ):
            return None
        return _international_region(digits[2:] if digits[:2] == "00" else digits)
    if not _phone_like(run, groups, sizes):
        return None
    if digits[0] == "1" and sizes[0] == 1 and len(digits) == 11:
        digits = digits[1:]  # NANP "1-415-555-2671"
    grouped = len(groups) > 1 and 1 not in sizes[1:] and (sizes[0] > 1 or run[0] == "1")
    if grouped and len(digits) >= 8 and not _not_personal(text, start) and not _near(
        text, start, end, _CTX_ID
    ):
        region = _national_region(run, digits, sizes, context=False)
        if region:
            return region
    # A word such as "phone" nearby admits any grouping and more regions.
    if _near(text, start, end, _CTX_PHONE):
        return _national_region(run, digits, sizes, context=True)
    return None


def _phone_like(run: str, groups: list[str], sizes: tuple[int, ...]) -> bool:
    """Whether a run could be a national phone number: not a date, ZIP+4 or IP address."""
    rx = _rx()
    if rx.date.fullmatch(run) or (rx.date.match(run) and len(groups) == 4):
        return False  # a date, or a date and the hour of "2024-03-15 14:22"
    if sizes == (5, 4) and "-" in run:
        return False
    if "/" in run and (run.count("/") > 1 or "/" not in run[: len(groups[0]) + 2]):
        return False
    # Dots only as the one separator, between three groups or more ("38.2643274" is a
    # decimal), and no IPv4 address.
    return "." not in run or not (
        set(run) - set("0123456789.") or len(groups) < 3 or (len(groups) == 4 and max(sizes) <= 3)
    )


# ----------------------------------------------------------------------------- capitals

_CAPS = (
    r"(?=[A-Z0-9.-]|ccountKey|haredAccess|Iza)(?:"
    r"[A-Z][0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,8}(?:[ ]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])(?P<iban>)"
    r"|(?:(?<=[A-CEGHJ-PR-TW-Z])[A-CEGHJ-NPR-TW-Z]|(?<=Q)Q)"  # QQ: HMRC's example prefix
    r"[ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[A-D](?![A-Za-z0-9])(?P<gb_nino>)"
    r"|[A-Z]{5}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]"
    r"(?![A-Za-z0-9])(?P<it_codice_fiscale>)"
    r"|[A-Z]{2}[ABCFGHLJPTK][A-Z][0-9]{4}[A-Z](?![A-Za-z0-9])(?P<in_pan>)"
    r"|(?<=[XYZ])[- ]?[0-9]{7}[- ]?[A-Z](?![A-Za-z0-9])(?P<es_nie>)"
    r"|(?<=[CFGHJKLMNPRTVWXYZ])[CFGHJKLMNPRTVWXYZ0-9]{8}[ ]?[0-9](?![A-Za-z0-9])"
    r"(?P<de_id_card>)"
    r"|(?<=A)(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|PKA|ROA|SCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"(?P<aws_access_key>)"
    r"|(?<=A)Iza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])(?P<gcp_api_key>)"
    r"|(?<=S)G\.[\w-]{16,32}\.[\w-]{16,64}(?P<sendgrid_key>)"
    r"|(?:(?<=A)C|(?<=S)K)[0-9a-f]{32}(?![A-Za-z0-9])(?P<twilio_key>)"
    r"|(?<=A)ccountKey=[A-Za-z0-9+/]{40,100}={0,2}(?P<azure_storage_key>)"
    r"|(?<=S)haredAccess(?:Key|Signature)=[A-Za-z0-9+/%=&:.-]{20,256}(?P<azure_shared_key>)"
    r")"
)
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _on_caps(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start, end = m.span()
    kind = m.lastgroup or ""
    if start and (_joins(text[start - 1]) or text[start - 1] == "_"):
        return
    value = m.group()
    if kind == "iban":
        if "iban" in wanted:
            yield from _iban(value, start)
    elif kind in ("gb_nino", "it_codice_fiscale", "in_pan", "es_nie"):
        if "national_id" in wanted and _valid_caps_id(kind, value):
            yield Finding("national_id", kind, start, end)
    elif kind == "de_id_card":
        # The ICAO 9303 check digit passes one random value in ten: ask for a label.
        if ("national_id" in wanted and _icao_check(value.replace(" ", ""))
                and _near(text, start, end, _CTX_ID_CARD)):
            yield Finding("national_id", kind, start, end)
    elif "secret" in wanted:
        yield Finding("secret", kind, start, end)
        if kind == "aws_access_key":
            lo, hi = max(0, start - 300), min(len(text), end + 300)
            for s in _rx().aws_secret.finditer(text, lo, hi):
                if _char_classes(s.group()) >= 3 and _entropy(s.group()) >= 4.0:
                    yield Finding("secret", "aws_secret_key", s.start(), s.end())


def _icao_check(value: str) -> bool:
    """The ICAO 9303 check digit of a German identity card number."""
    total = sum(int(c, 36) * (7, 3, 1)[i % 3] for i, c in enumerate(value[:-1]))
    return total % 10 == int(value[-1])


def _valid_caps_id(kind: str, value: str) -> bool:
    compact = value.replace(" ", "").replace("-", "")
    v = _stdnum()
    if kind == "gb_nino":
        return compact[:2] not in _NINO_BAD_PREFIXES
    if kind == "it_codice_fiscale":
        return v.codice_fiscale(compact)
    if kind == "in_pan":
        return v.pan(compact)
    return v.nie(compact)


def _mod97(value: str) -> int:
    rearranged = value[4:] + value[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97


def _iban(value: str, start: int) -> Iterator[Finding]:
    # The pattern may run on into a following group: try the cuts on group
    # boundaries, longest first, and keep the first valid one.
    for cut in range(len(value), 14, -1):
        if cut == len(value) or value[cut] == " ":
            compact = value[:cut].replace(" ", "")
            if _mod97(compact) == 1 and _stdnum().iban(compact):
                yield Finding("iban", compact[:2].lower(), start, start + cut)
                return


# ----------------------------------------------------------------------------- prefixed secrets

# Each branch checks the token's prefix with a look-behind from the "_" or "-".
_UNDERSCORE_PREFIXED = (
    r"_(?<=[A-Za-z0-9]_)(?=[A-Za-z0-9_-]{10})(?:"
    r"(?<=\bgh[pousr]_)[A-Za-z0-9]{30,251}(?P<github_token>)"
    r"|(?<=\bgithub_)pat_[A-Za-z0-9_]{40,512}(?P<github_pat>)"
    r"|(?<=\b[sr]k_)(?:live|test)_[0-9A-Za-z]{10,512}(?P<stripe_key>)"
    r"|(?<=\bwhsec_)[0-9A-Za-z]{24,512}(?P<stripe_key_>)"
    r"|(?<=\bhf_)[A-Za-z0-9]{30,512}(?P<huggingface_token>)"
    r"|(?<=\bapi_org_)[A-Za-z0-9]{30,512}(?P<huggingface_token_>)"
    r"|(?<=\bnpm_)[A-Za-z0-9]{36}(?P<npm_token>)"
    r"|(?<=\bshp(?:at|ca|pa|ss)_)[0-9a-fA-F]{32}(?P<shopify_token>)"
    r"|(?<=\bdo[por]_)v1_[0-9a-f]{64}(?P<digitalocean_token>)"
    r")"
)
_DASH_PREFIXED = (
    r"-(?:----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?P<private_key>)"
    r"|(?<=[A-Za-z0-9]-)(?=[A-Za-z0-9_-]{10})(?:"
    r"(?<=\bglpat-)[\w-]{20,512}(?P<gitlab_token>)"
    r"|(?<=\bgl(?:dt|rt)-)[\w-]{20,512}(?P<gitlab_token_>)"
    r"|(?<=\bxox[abposr]-)[0-9A-Za-z-]{10,512}(?P<slack_token>)"
    r"|(?<=\bxapp-)[0-9A-Za-z-]{10,512}(?P<slack_token__>)"
    r"|(?<=\bsk-)ant-[\w-]{32,512}(?P<anthropic_key>)"
    r"|(?<=\bsk-)(?:proj|svcacct|admin)-[\w-]{40,512}(?P<openai_key>)"
    r"|(?<=\bsk-)[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?P<openai_key_>)"
    r"|(?<=\bsk-)[A-Za-z0-9]{32,512}(?![\w-])(?P<openai_key__>)"
    r"|(?<=\bpypi-)AgE[\w-]{50,512}(?P<pypi_token>)"
    r"|(?<=\bkey-)[0-9a-f]{32}(?P<mailgun_key>)"
    r"|(?<=\b[0-9a-f]{32}-)[0-9a-f]{8}-[0-9a-f]{8}\b(?P<mailgun_key_>)"
    r"))"
)


def _on_prefixed(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start, end = m.span()
    kind = (m.lastgroup or "").rstrip("_")
    if kind == "private_key":
        pem_end = _rx().pem_end.search(text, end, end + 16384)
        yield Finding("secret", kind, start, pem_end.end() if pem_end else end)
        return
    # Back over the prefix ("ghp", "github", "sk") that the look-behind checked.
    floor = max(0, start - 8)
    while start > floor and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    yield Finding("secret", kind, start, end)


# ----------------------------------------------------------------------------- JWTs

# Starting a token only, with bounded segments, so that "eyJeyJeyJ..." stays linear.
_JWT = r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{5,1000}\.[A-Za-z0-9_-]{2,16000}\.[A-Za-z0-9_-]{0,1000}"


def _on_jwt(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = m.start()
    if start and (_joins(text[start - 1]) or text[start - 1] in "_-"):
        return
    header = m.group().split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return
    if isinstance(decoded, dict) and "alg" in decoded:
        yield Finding("secret", "jwt", start, m.end())


# ----------------------------------------------------------------------------- assignments

# How the names in _SECRET_NAME_* end, padded to four characters: a ":" or "=" after
# any other name ("Note:", "x = 1", "config:") is dropped inside `re`, with one
# look-behind per quoting style, so that code, with thousands of them, stays cheap.
_NAME_ENDS = (
    "..wd|..pw|..ña|..ード|..密码|..ль|.key|.sig|.mdp|.pwd|"
    "word|pass|wort|cret|oken|rase|asse|enha|lave|oord|роль"
)


# "password is ..." too; each more verb would cost a pass over the text.
_ASSIGNMENT_OPS = (":", "=", "：", " is ")


def _assignment(op: str) -> str:
    """The pattern of ``op`` (one of _ASSIGNMENT_OPS) after a name that may hold a secret."""
    if op.strip().isalpha():
        return f"{op}(?<=(?i:{_NAME_ENDS}){op})"
    quote, space = "[\"'`\\]]", "[ \t]"
    behind = "|".join(
        f"(?<=(?i:{_NAME_ENDS}){q}{s}{re.escape(op)})" for q in ("", quote) for s in ("", space)
    )
    # A first, cheap test: a letter, quote or space before the operator ("==", "12:30").
    cheap = f"(?<=[A-Za-z\"'`\\] \t\u00c0-\uffff]{re.escape(op)})"
    return f"{re.escape(op)}{cheap}(?:{behind})"


_ASSIGNED_VALUE = (
    r"""(?:=|>)?[ \t]*(?:["'`][ \t]*)?(?:(?:Bearer|Basic|Token|token)[ \t]+)?"""
    r"""(?P<value>[^\s"'`,;<>(){}\[\]]{6,200})"""
)
# Names of settings that hold secrets: found anywhere in the name before ":" or "="
# ("DB_PASSWORD", "clientSecret"), as a whole word ("db_pass", "pwd"), or ending
# the last words ("mot de passe", "api key").
_SECRET_NAME_PARTS = (
    "password", "passwd", "passphrase", "passwort", "secret", "token", "apikey", "api_key",
    "api-key", "accesskey", "access_key", "access-key", "privatekey", "private_key",
    "client_key", "auth_key", "credential", "kennwort", "contraseña", "contrasena", "senha",
    "wachtwoord", "パスワード", "密码", "пароль", "authorization", "connection_string",
    "connectionstring", "conn_str", "signing_key", "encryption_key",
)
_SECRET_NAME_WORDS = frozenset({"pass", "pwd", "pw", "mdp", "clave", "bearer"})
_SECRET_NAME_ENDS = ("mot de passe", "api key", "private key", "access key", "secret key")


def _secret_name(before: str) -> str | None:
    """The kind of secret that the name before ":" or "=" announces, if any."""
    words = before.lower().rstrip(" \t\"'`]").split()
    if not words:
        return None
    last = words[-1]
    if last.endswith("sig") and re.split(r"[&?;]", last)[-1] == "sig":
        return "azure_sas_token"
    rx = _rx()
    if rx.secret_name_part.search(last):
        return "password_assignment"
    if not _SECRET_NAME_WORDS.isdisjoint(rx.non_letters.split(last)):
        return "password_assignment"
    if " ".join(words[-3:]).endswith(_SECRET_NAME_ENDS):
        return "password_assignment"
    return None


# "$DB_PASSWORD", "${token}": a variable, not a value ("$y7R_Xa..." is a value).
_VARIABLE = r"\$\{?(?:[A-Z_][A-Z0-9_]*|[a-z_][a-z0-9_]*)\}?"
_PLACEHOLDER = (
    rf"{_VARIABLE}|"
    r"(?i:[*x•.#_-]+|%[a-z_]+%|\{\{.*|"
    r"(?:process\.env|os\.environ|getenv|env\[).*|your[\w-]*|"
    r"(?:xxx+|placeholder|example|changeme|redacted|hidden|secret|password|none|null|true|"
    r"false|required|optional|string|undefined|todo|tbd|n/a)\W*|https?://.*)"
    r"|[A-Z]+(?:_[A-Z]+)*|[a-z]+(?:[_-][a-z]+)*|[0-9]+"
)


def _on_assignment(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    if text.startswith("==", m.start()):
        return  # a comparison
    kind = _secret_name(text[max(0, m.start() - 40):m.start()])
    value_match = _rx().assigned_value.match(text, m.end()) if kind else None
    if kind is None or value_match is None:
        return
    value = value_match.group("value").rstrip(".?!:")
    if _looks_secret(value):
        start = value_match.start("value")
        yield Finding("secret", kind, start, start + len(value))


def _looks_secret(value: str) -> bool:
    """Whether an assigned value looks like a secret, not a placeholder or code."""
    rx = _rx()
    if len(value) < 6 or rx.placeholder.fullmatch(value) or rx.code_like.fullmatch(value):
        return False
    classes = _char_classes(value)
    if classes < 2 or (len(value) < 8 and classes < 3):
        return False
    entropy = _entropy(value)
    # "tokens_in", "Annotated": words of code carry no digit and no symbol.
    mixed = any(c.isdigit() or not (c.isalnum() or c in "._-") for c in value)
    return (mixed and entropy >= 2.5) or (len(value) >= 20 and entropy >= 3.5)


_AUTHORIZATION = (
    r"uthorization(?<=[Aa]uthorization)[\"'`]?[ \t]*[:=][ \t]*[\"'`]?"
    r"(?:[Bb]asic|[Bb]earer|[Tt]oken|Digest)[ \t]+(?P<value>[A-Za-z0-9+/=._~-]{8,512})"
)


def _on_authorization(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    # "Authorization: Bearer <token>" holds a credential whatever its format.
    value = m.group("value")
    if not _rx().placeholder.fullmatch(value) and _char_classes(value) >= 2:
        yield Finding("secret", "authorization_header", m.start("value"), m.end("value"))


# ----------------------------------------------------------------------------- URLs

_URL = (
    r"://(?:[^\s:/@]{0,128}:(?P<password>[^\s@/]{1,256})@[\w.-]+(?P<url_credentials>)"
    r"|hooks\.slack\.com/services/T[A-Z0-9]{1,32}/B[A-Z0-9]{1,32}/[A-Za-z0-9]{16,512}"
    r"(?P<slack_webhook>)"
    r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{1,32}/[\w-]{40,512}"
    r"(?P<discord_webhook>)"
    r")"
)


def _on_url(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = floor = m.start()
    while start > max(0, floor - 32) and (text[start - 1].isalnum() or text[start - 1] in "+.-"):
        start -= 1
    password = m.group("password")
    if start == m.start() or (password is not None and _rx().masked.fullmatch(password)):
        return
    yield Finding("secret", m.lastgroup or "", start, m.end())
