"""Built-in detectors of sensitive content in prompts.

This module owns the detectors that decide whether a prompt carries personal data
or credentials and so must stay on a local model: e-mail addresses, phone numbers,
payment cards, IBANs, national identity numbers and secrets (API keys, tokens,
private-key blocks, passwords in assignments, credentials in URLs).

How it works: a few cheap regular-expression passes, each anchored on a character
class that is rare in prose (``@``, digits, capitals, ``_``/``-``, ``:``/``=``,
``://``, ``eyJ``), find candidates in one linear sweep; the costly checks (Luhn,
mod-97, phone-number metadata, python-stdnum check digits, JWT header decoding) run
on candidates only. Identifiers whose checksum is weak (a nine-digit BSN passes its
11-proof one time in eleven) count only in a recognised format or next to a
context word such as "BSN" or "Aadhaar".

What it must never do: return, log or store the matched text (a `Finding` carries
only the detector, a kind label and a span), or lower sensitivity: a detector can
only add findings, and a caller treats any exception raised here as "sensitive".
Importing it compiles nothing and imports neither ``phonenumbers`` nor ``stdnum``;
that work happens once, on the first `Scanner` construction.
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
"""Names of the built-in detectors, in the order they are documented."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value, described without its text.

    Attributes:
        detector: The detector that fired, one of `DETECTORS`.
        kind: A finer label such as ``"visa"``, ``"us_ssn"`` or ``"jwt"``.
        start: Offset of the first character of the value in the scanned text.
        end: Offset one past its last character.
    """

    detector: str
    kind: str
    start: int
    end: int


class Scanner:
    """Runs a chosen set of detectors over text.

    A scanner is immutable and thread-safe; build one per detector set (see
    `scanner_for`) and reuse it for every request.

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
                f"unknown detector(s) {', '.join(sorted(unknown))}; "
                f"valid names are {', '.join(DETECTORS)}"
            )
        self._detectors = names
        self._passes = tuple(p for p in _build_passes() if p.detectors & names)

    @property
    def detectors(self) -> frozenset[str]:
        """The names of the enabled detectors."""
        return self._detectors

    def findings(self, text: str) -> list[Finding]:
        """Return every finding in ``text``, ordered by position.

        Args:
            text: The text to scan.

        Returns:
            Findings of the enabled detectors, sorted by span, without duplicates.
        """
        found: set[Finding] = set()
        for scan_pass in self._passes:
            for match in scan_pass.regex.finditer(text):
                found.update(scan_pass.handle(text, match, self._detectors))
        return sorted(found, key=lambda f: (f.start, f.end, f.detector, f.kind))

    def scan(self, text: str) -> frozenset[str]:
        """Return the names of the detectors that fire on ``text``.

        Faster than `findings`: it skips checks for detectors that already fired
        and stops as soon as every enabled detector has.

        Args:
            text: The text to scan.

        Returns:
            The subset of `detectors` with at least one finding.
        """
        fired: set[str] = set()
        wanted = self._detectors
        for scan_pass in self._passes:
            if not scan_pass.detectors & wanted:
                continue
            for match in scan_pass.regex.finditer(text):
                for finding in scan_pass.handle(text, match, wanted):
                    fired.add(finding.detector)
                if len(fired) > len(self._detectors) - len(wanted):
                    wanted = self._detectors.difference(fired)
                    if not wanted:
                        return frozenset(fired)
                    if not scan_pass.detectors & wanted:
                        break
        return frozenset(fired)


@functools.lru_cache(maxsize=64)
def _scanner(detectors: frozenset[str]) -> Scanner:
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
    return _scanner(frozenset((detectors,) if isinstance(detectors, str) else detectors))


# --------------------------------------------------------------------------- passes

_Handler = Callable[[str, "re.Match[str]", frozenset[str]], Iterator[Finding]]


class _Pass(NamedTuple):
    regex: re.Pattern[str]
    detectors: frozenset[str]
    handle: _Handler


@functools.cache
def _build_passes() -> tuple[_Pass, ...]:
    # Each regex starts with one literal or character class so that `re` skips
    # ordinary prose at C speed instead of trying a match at every position.
    _load_phone_rules()
    return (
        _Pass(re.compile(_EMAIL), frozenset({"email"}), _on_email),
        _Pass(re.compile(_NUMBER), frozenset({"phone", "payment_card", "national_id"}), _on_number),
        _Pass(re.compile(_CAPS), frozenset({"iban", "national_id", "secret"}), _on_caps),
        _Pass(re.compile(_PREFIXED), frozenset({"secret"}), _on_prefixed),
        _Pass(re.compile(_JWT), frozenset({"secret"}), _on_jwt),
        _Pass(re.compile(_ASSIGN), frozenset({"secret"}), _on_assignment),
        _Pass(re.compile(_URL), frozenset({"secret"}), _on_url),
    )


def _context(text: str, start: int, end: int, words: re.Pattern[str]) -> bool:
    """Whether a context word occurs shortly before (or just after) a span."""
    return words.search(text, max(0, start - 48), min(len(text), end + 24)) is not None


def _words(*words: str) -> re.Pattern[str]:
    return re.compile("(?i)(?<![^\\W\\d_])(?:" + "|".join(words) + ")")


# --------------------------------------------------------------------------- e-mail

_EMAIL = r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:xn--[a-z0-9-]{2,59}|[^\W\d_]{2,63})(?![\w-])"
_LOCAL_CHARS = frozenset("!#$%&*+=?^_`{|}~-.")
_FILE_SUFFIXES = frozenset(
    "png jpg jpeg gif svg webp ico bmp tif tiff pdf js ts css html htm py md txt json yaml yml"
    " xml toml lock map".split()
)


def _on_email(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    at = m.start()
    start = at
    while start > 0 and start > at - 64:
        ch = text[start - 1]
        if not (ch.isalnum() or ch in _LOCAL_CHARS):
            break
        start -= 1
    while start < at and text[start] in ".-":
        start += 1
    if start == at or m.group().rsplit(".", 1)[1].lower() in _FILE_SUFFIXES:
        return
    yield Finding("email", "email", start, m.end())


# --------------------------------------------------------------------------- numbers

# A run of digit groups joined by one separator each: "+44 (0)20 7946-0958",
# "123.456.789-09", "12.345.678/0001-95", "2 85 12 2A 006 084 36", "12345678Z".
_SEP = r"(?:[ ]?[-./][ ]?|[ ]|[ ]?\([ ]?|[ ]?\)[ ]?)"
_NUMBER = (
    r"[+(0-9](?:(?<=\()\+?(?=[0-9])|(?<=\+)(?=[0-9])|(?<=[0-9]))[0-9]*"
    rf"(?:{_SEP}(?:[0-9]+|2[AB](?=[ .])))*(?:-?(?P<letter>[A-Z])(?![\w]))?"
)
_DATE = re.compile(
    r"(?:19|20)[0-9]{2}([-./])[01]?[0-9]\1[0-3]?[0-9]|[0-3]?[0-9]([-./])[01]?[0-9]\2(?:19|20)?[0-9]{2}"
)
_GROUPS = re.compile(r"[0-9]+|2[AB]")


def _on_number(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start, end = m.span()
    if start and (text[start - 1].isalnum() or text[start - 1] in "_/\\#$€£¥."):
        return
    if end < len(text) and (text[end].isalnum() or text[end] in "_"):
        return
    if m.group("letter"):
        letter_found = False
        for f in _dni(text, start, end, wanted):
            letter_found = True
            yield f
        if letter_found:
            return
        end = m.start("letter")
        while text[end - 1] in " -":
            end -= 1
    spans = [(start, end)]
    found = False
    for s, e in spans:
        for f in _classify_number(text, s, e, wanted):
            found = True
            yield f
    if not found:
        # "4111 1111 1111 1111 12/26": when the run mixes bare groups and groups
        # with inner separators, the spaces between them are delimiters.
        for s, e in _segments(text, start, end):
            if (s, e) != (start, end):
                yield from _classify_number(text, s, e, wanted)


def _segments(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    run = text[start:end]
    if " " not in run or not any(c in run for c in "-./"):
        return
    pieces: list[tuple[int, int, bool]] = []
    pos = start
    for piece in run.split(" "):
        if piece:
            plain = piece.isdigit()
            if pieces and plain and pieces[-1][2]:
                pieces[-1] = (pieces[-1][0], pos + len(piece), True)
            else:
                pieces.append((pos, pos + len(piece), plain))
        pos += len(piece) + 1
    if len(pieces) > 1:
        for s, e, _ in pieces:
            yield s, e


def _classify_number(text: str, start: int, end: int, wanted: frozenset[str]) -> Iterator[Finding]:
    run = text[start:end]
    if run[0] == "(" and ")" not in run:
        run, start = run[1:], start + 1
    groups = _GROUPS.findall(run)
    digits = "".join(groups)
    nd = len(digits)
    if nd < 7 or nd > 19:
        return
    seps = frozenset(c for c in run if c in " -./()")
    if "payment_card" in wanted and 12 <= nd <= 19 and digits.isdigit() and seps <= {" ", "-"}:
        kind = _card_kind(digits)
        if kind:
            yield Finding("payment_card", kind, start, end)
            return
    if "national_id" in wanted:
        kind = _national_number_kind(text, start, end, run, groups, digits, seps)
        if kind:
            yield Finding("national_id", kind, start, end)
            return
    if "phone" in wanted and digits.isdigit() and _is_phone(text, start, end, run, groups, digits):
        yield Finding("phone", "phone", start, end)


# --------------------------------------------------------------------------- cards

# (first digits low, high, lengths, network); more specific ranges first.
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
    (644, 649, frozenset(range(16, 20)), "discover"),
    (622126, 622925, frozenset(range(16, 20)), "discover"),
    (65, 65, frozenset(range(16, 20)), "discover"),
    (62, 62, frozenset(range(16, 20)), "unionpay"),
    (81, 82, frozenset({16}), "rupay"),
    (60, 60, frozenset({16}), "rupay"),
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


def _card_kind(digits: str) -> str | None:
    if len(set(digits)) < 3 or not _luhn(digits):
        return None
    for low, high, lengths, network in _CARD_RANGES:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return network
    return None


# --------------------------------------------------------------------------- national ids

_CTX_SSN = _words("ssn", "social security", "soc sec", "ss#", "ss no", "itin", "taxpayer")
_CTX_NHS = _words("nhs", "national health", "chi number")
_CTX_BSN = _words("bsn", "burgerservice", "sofi", "citizen service")
_CTX_AADHAAR = _words("aadhaa?r", "uidai", "uid", "आधार")
_CTX_MYNUMBER = _words("my ?number", "mynumber", "マイナンバー", "個人番号", "individual number")
_CTX_IDNR = _words("steuer", "idnr", "identifikationsnummer", "tax id", "tin\\b")
_CTX_NEGATIVE = _words(
    "order", "invoice", "inv", "tracking", "track", "ref", "reference", "ticket", "case",
    "sku", "isbn", "serial", "part", "po", "receipt", "confirmation", "booking", "transaction",
    "txn", "build", "version", "batch", "lot", "item", "product", "shipment", "parcel",
)


def _stdnum() -> _StdNum:
    return _load_stdnum()


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
def _load_stdnum() -> _StdNum:
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
        ssn.is_valid, itin.is_valid, nhs.is_valid, nir.is_valid, idnr.is_valid, dni.is_valid,
        nie.is_valid, codicefiscale.is_valid, bsn.is_valid, cpf.is_valid, cnpj.is_valid,
        aadhaar.is_valid, pan.is_valid, in_.is_valid, iban.is_valid,
    )


def _national_number_kind(
    text: str, start: int, end: int, run: str, groups: list[str], digits: str,
    seps: frozenset[str],
) -> str | None:
    v = _stdnum()
    nd = len(digits)
    sizes = tuple(len(g) for g in groups)
    bare = len(groups) == 1
    if not digits.isdigit():
        return "fr_nir" if nd == 15 and v.nir(digits) and digits[0] in "12378" else None
    if nd == 9:
        if (sizes == (3, 2, 4) and len(seps) == 1 and seps <= {"-", " "}) or (
            bare and _context(text, start, end, _CTX_SSN)
        ):
            if v.ssn(digits):
                return "us_ssn"
            if v.itin(digits):
                return "us_itin"
        if (sizes == (4, 2, 3) and seps == {"."}) or (bare and _context(text, start, end, _CTX_BSN)):
            if v.bsn(digits):
                return "nl_bsn"
    elif nd == 10:
        if v.nhs(digits) and _context(text, start, end, _CTX_NHS):
            return "gb_nhs"
    elif nd == 11:
        if sizes == (3, 3, 3, 2) or bare or seps <= {" "}:
            if v.cpf(digits) and len(set(digits)) > 1:
                return "br_cpf"
        if (bare or sizes == (2, 3, 3, 3)) and v.idnr(digits):
            return "de_idnr"
    elif nd == 12:
        spaced = sizes == (4, 4, 4) and len(seps) == 1
        if (spaced or bare) and (
            spaced or _context(text, start, end, _CTX_AADHAAR)
        ) and v.aadhaar(digits):
            if not _context(text, start, end, _CTX_NEGATIVE) or _context(
                text, start, end, _CTX_AADHAAR
            ):
                return "in_aadhaar"
        if (spaced or bare) and _context(text, start, end, _CTX_MYNUMBER) and v.my_number(digits):
            return "jp_my_number"
    elif nd == 14:
        if (sizes == (2, 3, 3, 4, 2) or bare) and v.cnpj(digits):
            return "br_cnpj"
    elif nd == 15:
        if digits[0] in "12378" and v.nir(digits):
            return "fr_nir"
    return None


def _dni(text: str, start: int, end: int, wanted: frozenset[str]) -> Iterator[Finding]:
    if "national_id" not in wanted:
        return
    value = text[start:end].replace("-", "").replace(" ", "")
    if len(value) == 9 and value[:8].isdigit() and _stdnum().dni(value):
        yield Finding("national_id", "es_dni", start, end)


# --------------------------------------------------------------------------- phones

_PHONE_REGIONS = (
    "US", "GB", "FR", "DE", "ES", "IT", "NL", "BR", "IN", "JP", "CA", "AU", "MX", "CN", "BE",
    "CH", "AT", "IE", "SE", "KR", "ZA", "NZ", "TR", "RU", "PL", "PT",
)
# Regions whose national numbers are commonly written without a trunk prefix.
_WITHOUT_TRUNK = frozenset({"US", "CA", "ES", "IT", "BR", "IN", "MX", "CN"})
_CTX_PHONE = _words(
    "tel", "phone", "call", "mobile", "mob", "cell", "fax", "whatsapp", "sms", "text me",
    "ring", "dial", "contact", "reach", "telefon", "téléphone", "tél", "portable", "móvil",
    "teléfono", "telefono", "cellulare", "telefone", "celular", "handy", "gsm", "numéro",
    "número", "numero", "電話", "携帯", "☎", "📞", "📱",
)


class _Desc(NamedTuple):
    lengths: frozenset[int]
    pattern: re.Pattern[str]


class _Region(NamedTuple):
    national_prefix: str
    general: _Desc
    types: tuple[_Desc, ...]

    def valid(self, nsn: str) -> bool:
        """Mirror `phonenumbers.is_valid_number` for one region, without parsing."""
        general = self.general
        if len(nsn) not in general.lengths or not general.pattern.fullmatch(nsn):
            return False
        n = len(nsn)
        return any((not d.lengths or n in d.lengths) and d.pattern.fullmatch(nsn) for d in self.types)


class _PhoneRules(NamedTuple):
    regions: dict[str, _Region]
    by_country_code: dict[int, tuple[str, ...]]


@functools.cache
def _load_phone_rules() -> _PhoneRules:
    # phonenumbers' parse() + is_valid_number() costs ~50 us per region; reading its
    # metadata once and matching the same patterns directly costs ~1 us.
    import phonenumbers
    from phonenumbers import PhoneMetadata

    def desc(d: phonenumbers.PhoneNumberDesc | None) -> _Desc | None:
        if d is None or not d.national_number_pattern:
            return None
        return _Desc(frozenset(d.possible_length or ()), re.compile(d.national_number_pattern))

    regions: dict[str, _Region] = {}
    by_cc = {cc: tuple(r) for cc, r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()}
    for region_codes in by_cc.values():
        for code in region_codes:
            md = PhoneMetadata.metadata_for_region(code)
            general = desc(md.general_desc) if md else None
            if md is None or general is None:
                continue
            types = tuple(
                d for d in map(desc, (
                    md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number,
                    md.pager, md.uan, md.voicemail, md.fixed_line, md.mobile,
                )) if d is not None
            )
            regions[code] = _Region(md.national_prefix or "", general, types)
    return _PhoneRules(regions, by_cc)


def _international_valid(digits: str) -> bool:
    rules = _load_phone_rules()
    for cc_len in (1, 2, 3):
        codes = rules.by_country_code.get(int(digits[:cc_len]))
        if not codes:
            continue
        nsn = digits[cc_len:]
        for code in codes:
            region = rules.regions.get(code)
            if region is None:
                continue
            prefix = region.national_prefix
            if region.valid(nsn) or (prefix and nsn.startswith(prefix)
                                     and region.valid(nsn[len(prefix):])):
                return True
        return False
    return False


def _national_valid(digits: str, relaxed: bool) -> bool:
    regions = _load_phone_rules().regions
    for code in _PHONE_REGIONS:
        region = regions[code]
        prefix = region.national_prefix
        if prefix and digits.startswith(prefix) and region.valid(digits[len(prefix):]):
            return True
        if (relaxed or code in _WITHOUT_TRUNK) and digits[0] != "0" and region.valid(digits):
            return True
    return False


def _is_phone(text: str, start: int, end: int, run: str, groups: list[str], digits: str) -> bool:
    nd = len(digits)
    if nd > 15:
        return False
    international = run[0] == "+" or run[:2] == "(+" or (digits[:2] == "00" and len(groups) > 1)
    sizes = [len(g) for g in groups]
    if not international:
        if _DATE.fullmatch(run) or _DATE.match(run) and len(groups) > 3:
            return False
        if "/" in run and (run.count("/") > 1 or "/" not in run[: len(groups[0]) + 2]):
            return False
        if "." in run and (set(run) - set("0123456789.") or all(s <= 3 for s in sizes)):
            return False
        if sizes == [5, 4] and "-" in run:  # US ZIP+4
            return False
    context = _context(text, start, end, _CTX_PHONE)
    if not context and (len(groups) < 2 or 1 in sizes[1:] or (sizes[0] == 1 and digits[0] != "1")):
        return False
    if international:
        return nd >= 8 and _international_valid(digits[2:] if digits[:2] == "00" else digits)
    if nd < 8 and not context:
        return False
    if not context and _context(text, start, end, _CTX_NEGATIVE):
        return False
    if digits[0] == "1" and sizes[0] == 1 and nd == 11:
        digits = digits[1:]
    return _national_valid(digits, relaxed=context)


# --------------------------------------------------------------------------- capitals

_CAPS = (
    r"[A-Z](?:"
    r"[A-Z][0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,8}(?:[ ]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])(?P<iban>)"
    r"|(?<=[A-CEGHJ-PR-TW-Z])[A-CEGHJ-NPR-TW-Z][ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[A-D]"
    r"(?![A-Za-z0-9])(?P<nino>)"
    r"|[A-Z]{5}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]"
    r"(?![A-Za-z0-9])(?P<it_cf>)"
    r"|[A-Z]{2}[ABCFGHLJPTK][A-Z][0-9]{4}[A-Z](?![A-Za-z0-9])(?P<in_pan>)"
    r"|(?<=[XYZ])[- ]?[0-9]{7}[- ]?[A-Z](?![A-Za-z0-9])(?P<es_nie>)"
    r"|(?<=A)(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|PKA|ROA|SCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"(?P<aws_access_key>)"
    r"|(?<=A)Iza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])(?P<gcp_api_key>)"
    r"|(?<=S)G\.[\w-]{16,32}\.[\w-]{16,64}(?P<sendgrid>)"
    r"|(?<=[AS])[CK][0-9a-f]{32}(?![A-Za-z0-9])(?P<twilio>)"
    r"|(?<=A)ccountKey=[A-Za-z0-9+/]{40,100}={0,2}(?P<azure_storage_key>)"
    r"|(?<=S)haredAccess(?:Key|Signature)=[A-Za-z0-9+/%=&:.-]{20,}(?P<azure_shared_key>)"
    r")"
)
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def _on_caps(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start, end = m.span()
    kind = m.lastgroup or ""
    if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return
    value = m.group()
    compact = value.replace(" ", "").replace("-", "")
    v = _stdnum() if kind in ("iban", "nino", "it_cf", "in_pan", "es_nie") else None
    if kind == "iban":
        if "iban" in wanted and v is not None:
            yield from _iban(value, start, v)
    elif kind in ("nino", "it_cf", "in_pan", "es_nie"):
        if "national_id" not in wanted or v is None:
            return
        if kind == "nino":
            ok = compact[:2] not in _NINO_BAD_PREFIXES
            kind = "gb_nino"
        else:
            ok = {"it_cf": v.codice_fiscale, "in_pan": v.pan, "es_nie": v.nie}[kind](compact)
        if ok:
            yield Finding("national_id", kind, start, end)
    elif "secret" in wanted:
        yield Finding("secret", kind, start, end)
        if kind == "aws_access_key":
            lo, hi = max(0, start - 300), min(len(text), end + 300)
            for s in _AWS_SECRET.finditer(text, lo, hi):
                if _looks_random(s.group()):
                    yield Finding("secret", "aws_secret_key", s.start(), s.end())


def _iban(value: str, start: int, v: _StdNum) -> Iterator[Finding]:
    # The pattern may run into a following word of capitals: try the cuts that fall
    # on group boundaries, longest first, and keep the first valid one.
    cuts = [i for i in range(len(value), 14, -1) if i == len(value) or value[i] == " "]
    for cut in cuts:
        if v.iban(value[:cut]):
            yield Finding("iban", "iban", start, start + cut)
            return


def _looks_random(value: str) -> bool:
    classes = sum((
        any(c.islower() for c in value), any(c.isupper() for c in value),
        any(c.isdigit() for c in value), any(not c.isalnum() for c in value),
    ))
    return classes >= 2 and _entropy(value) >= 3.0


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


# --------------------------------------------------------------------------- prefixed secrets

_PREFIXED = (
    r"[_-](?:"
    r"(?<=\bgh[pousr]_)[A-Za-z0-9]{30,251}(?P<github_token>)"
    r"|(?<=\bgithub_)pat_[A-Za-z0-9_]{40,}(?P<github_pat>)"
    r"|(?<=\bglpat-)[\w-]{20,}(?P<gitlab_token>)"
    r"|(?<=\bgl(?:dt|rt|cbt|ptt)-)[\w-]{20,}(?P<gitlab_token_>)"
    r"|(?<=\bxox[abposr]-)[0-9A-Za-z-]{10,}(?P<slack_token>)"
    r"|(?<=\bxapp-)[0-9A-Za-z-]{10,}(?P<slack_app_token>)"
    r"|(?<=\b[sr]k_)(?:live|test)_[0-9A-Za-z]{10,}(?P<stripe_key>)"
    r"|(?<=\bwhsec_)[0-9A-Za-z]{24,}(?P<stripe_webhook_secret>)"
    r"|(?<=\bsk-)ant-[\w-]{32,}(?P<anthropic_key>)"
    r"|(?<=\bsk-)(?:proj|svcacct|admin)-[\w-]{40,}(?P<openai_key>)"
    r"|(?<=\bsk-)[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?P<openai_key_>)"
    r"|(?<=\bsk-)[A-Za-z0-9]{32,}(?![\w-])(?P<openai_key__>)"
    r"|(?<=\bhf_)[A-Za-z0-9]{30,}(?P<huggingface_token>)"
    r"|(?<=\bapi_org_)[A-Za-z0-9]{30,}(?P<huggingface_token_>)"
    r"|(?<=\bnpm_)[A-Za-z0-9]{36}(?P<npm_token>)"
    r"|(?<=\bpypi-)AgE[\w-]{50,}(?P<pypi_token>)"
    r"|(?<=\bshp(?:at|ca|pa|ss)_)[0-9a-fA-F]{32}(?P<shopify_token>)"
    r"|(?<=\bdo[por]_)v1_[0-9a-f]{64}(?P<digitalocean_token>)"
    r"|(?<=\bkey-)[0-9a-f]{32}(?P<mailgun_key>)"
    r"|(?<=\b[0-9a-f]{32}-)[0-9a-f]{8}-[0-9a-f]{8}\b(?P<mailgun_key_>)"
    r"|(?<=\bSK)_?[0-9a-f]{32}(?P<twilio_>)"
    r"|(?<=-)----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?P<private_key>)"
    r")"
)
_PEM_END = re.compile(r"-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----")


def _on_prefixed(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start, end = m.span()
    kind = (m.lastgroup or "").rstrip("_")
    if kind == "private_key":
        pem_end = _PEM_END.search(text, end, end + 16384)
        yield Finding("secret", kind, start, pem_end.end() if pem_end else end)
        return
    while start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        start -= 1
    yield Finding("secret", kind, start, end)


# --------------------------------------------------------------------------- JWTs

_JWT = r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"


def _on_jwt(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = m.start()
    if start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        return
    header = m.group().split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return
    if isinstance(decoded, dict) and "alg" in decoded:
        yield Finding("secret", "jwt", start, m.end())


# --------------------------------------------------------------------------- assignments

_ASSIGN = r"""[:=：](?:=|>)?[ \t]*(?:["'`][ \t]*)?(?P<value>[^\s"'`,;<>(){}\[\]]{6,200})"""
_KEY_BEFORE = re.compile(
    r"""(?i)(?:pass(?:word|wd|phrase|wort)?|pwd|secret|token|api[_ -]?key|apikey|access[_ -]?key|"""
    r"""private[_ -]?key|client[_ -]?key|auth[_ -]?key|credentials?|kennwort|contrase[ñn]a|"""
    r"""mot de passe|mdp|senha|wachtwoord|clave|パスワード|密码|пароль|bearer|"""
    r"""authorization|conn(?:ection)?[_ ]?str(?:ing)?|signing[_ -]?key|encryption[_ -]?key)"""
    r"""[\w.-]{0,24}["'\]]?[ \t]*$"""
)
_PLACEHOLDER = re.compile(
    r"""(?i)[*xX•.#_-]+|\$.*|%.*|\{\{.*|.*env.*|your[\w-]*|(?:xxx|placeholder|example|changeme"""
    r"""|redacted|hidden|secret|password|none|null|true|false|required|optional|string|"""
    r"""undefined|todo|tbd|n/a)\W*|[A-Z][A-Z0-9_]*|[a-z][a-z_]*|https?://.*|[0-9]+"""
)


def _on_assignment(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = m.start()
    if not _KEY_BEFORE.search(text, max(0, start - 48), start):
        return
    value = m.group("value").rstrip(".")
    if len(value) < 6 or _PLACEHOLDER.fullmatch(value) or not _assigned_secret(value):
        return
    yield Finding("secret", "password_assignment", m.start("value"), m.start("value") + len(value))


def _assigned_secret(value: str) -> bool:
    classes = sum((
        any(c.islower() for c in value), any(c.isupper() for c in value),
        any(c.isdigit() for c in value), any(not c.isalnum() for c in value),
    ))
    return classes >= 2 and _entropy(value) >= 2.5


# --------------------------------------------------------------------------- URLs

_URL = (
    r"://(?:[^\s:/@]{1,128}:(?P<password>[^\s@/]{1,256})@[\w.-]+(?P<url_credentials>)"
    r"|hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}(?P<slack_webhook>)"
    r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[\w-]{40,}(?P<discord_webhook>)"
    r")"
)


def _on_url(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = m.start()
    while start and (text[start - 1].isalnum() or text[start - 1] in "+.-"):
        start -= 1
    if start == m.start():
        return
    password = m.group("password")
    if password is not None and (_PLACEHOLDER.fullmatch(password) and password[0] in "*$<{%"):
        return
    yield Finding("secret", m.lastgroup or "", start, m.end())
