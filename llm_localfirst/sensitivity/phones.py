"""Phone numbers: which region's numbering plan, if any, a run of digit groups belongs to.

`numbers` hands over every run that is neither a card nor a national id. A run in
international format ("+44 20 7946 0958") is checked against the plans of its
country code; one in national format only against a few regions, and only in the
groupings their numbers are written in, unless a word such as "phone" is near.
An eight-digit number ("Tel. 40 52 37 62") counts only under a phone's name and in
a grouping that a region's own format rules write it in; a register's label
("SIREN", "KvK", "VAT") rules a phone reading out.

The plans come from phonenumbers' metadata, matched directly (phonenumbers'
``parse`` and ``is_valid_number`` cost ~50 us per region tried, the patterns ~1 us).
Nothing is loaded before a run needs it: phonenumbers is imported for the first
candidate, a region's metadata is read the first time a number is tried there, and
each of its patterns is compiled the first time a number reaches it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

from .finding import Finding
from .text import (
    _CTX_ID,
    _CTX_PHONE,
    _has_words,
    _labelled_by,
    _labels_at,
    _near,
    _not_personal,
    _rx,
    _words,
)

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
    "MX": (_one_of((2, 4, 4), (3, 3, 4)), _NEVER),
    "AU": (_NEVER, _groups(2, 3)),
    "GB": (_NEVER, _one_of((3, 4, 4), (4, 3, 4), (5, 6), (5, 5), (4, 6), (5, 3, 3))),
    "DE": (_NEVER, _groups(2)),
}
# An area code in brackets: "(415) 555-2671" is North American or Mexican ("(222)
# 123 8595"), "(11) 91234-5678" Brazilian, "(02) 9876 5432" has a trunk prefix.
_BRACKETED_AREA = {3: frozenset({"US", "CA", "MX"}), 2: frozenset({"BR", "MX"})}
# Separators a region's numbers are written with ("11 2345-6789" in Brazil).
_SEPARATORS: dict[str, Callable[[str], bool]] = {
    "BR": lambda run: run[0] == "(" or run[-5] == "-",
    "JP": lambda run: "-" in run or "(" in run,
    "IT": lambda run: set(run) <= set("0123456789 "),
    # A three-digit area code ("222 123 8595", the North American shape) in brackets.
    "MX": lambda run: set(run) <= set("0123456789 ()") and (run[0] == "(" or run[2] == " "),
    "GB": lambda run: set(run) <= set("0123456789 ()"),
    "AU": lambda run: set(run) <= set("0123456789 ()"),
}
# Also tried, in any grouping, when a word such as "phone" or "tel" is near.
_MORE_PHONE_REGIONS = ("BE", "CH", "AT", "IE", "SE", "KR", "ZA", "NZ", "TR", "RU", "PL", "PT")
# Regions whose national numbers are commonly written without the trunk prefix.
_WITHOUT_TRUNK = frozenset({"US", "CA", "ES", "IT", "BR", "IN", "MX", "CN"})
# The regions tried for a number in national format, in order, without and with a
# word such as "phone" near.
_NATIONAL_REGIONS = tuple(_NATIONAL_SHAPES)
_CONTEXT_REGIONS = _NATIONAL_REGIONS + _MORE_PHONE_REGIONS
# Regions whose plans have eight-digit numbers dialled without a trunk prefix (every
# such region of phonenumbers' metadata; the first that fits names the number):
# "32 12 34 56" in Denmark, "6123 4567" in Singapore. Such a number is too weak a
# shape on its own; named by a noun or field name ("Tel.", "mobile"), it is tried
# here when the regions above fail, and counts only in a grouping that the region's
# own format rules write it in.
_EIGHT_DIGIT_REGIONS = (
    "DK", "NO", "SG", "HK", "CR", "GT", "HN", "SV", "NI", "PA", "QA", "KW", "BH", "OM",
    "CY", "MT", "LU", "EE", "LV", "MO", "MU", "CM", "ML", "BF", "NE", "TG", "GA", "GN",
    "TD", "CF", "BI", "DJ", "MR", "TN", "MZ", "BW", "LS", "SZ", "HT", "PG", "TL", "BT",
    "PF", "AD", "SM", "GI", "CW", "SJ", "VA", "IT", "PL",
)  # fmt: skip


class _Desc:
    """One number pattern of a region, compiled the first time a number reaches it.

    Until then `fullmatch` compiles the pattern and puts the compiled pattern's own
    ``fullmatch`` in its place, so later calls cost what they would on a pattern
    compiled up front.
    """

    __slots__ = ("fullmatch", "lengths", "source")

    def __init__(self, lengths: frozenset[int], source: str) -> None:
        self.lengths = lengths
        self.source = source
        self.fullmatch: Callable[[str], re.Match[str] | None] = self._compile

    def _compile(self, nsn: str) -> re.Match[str] | None:
        self.fullmatch = re.compile(self.source).fullmatch
        return self.fullmatch(nsn)


class _Region(NamedTuple):
    code: str
    national_prefix: str
    general: _Desc
    types: tuple[_Desc, ...]

    def valid(self, nsn: str) -> bool:
        """Mirror `phonenumbers.is_valid_number` for a national significant number."""
        n = len(nsn)
        if n not in self.general.lengths or not self.general.fullmatch(nsn):
            return False
        return any((not d.lengths or n in d.lengths) and d.fullmatch(nsn) for d in self.types)


@functools.cache
def _region(code: str) -> _Region | None:
    from phonenumbers import PhoneMetadata, PhoneNumberDesc

    def desc(d: PhoneNumberDesc | None) -> _Desc | None:
        if d is None or not d.national_number_pattern:
            return None
        return _Desc(frozenset(d.possible_length or ()), d.national_number_pattern)

    md = PhoneMetadata.metadata_for_region(code)
    general = desc(md.general_desc) if md is not None else None
    if md is None or general is None:
        return None
    kinds = (
        md.premium_rate,
        md.toll_free,
        md.shared_cost,
        md.voip,
        md.personal_number,
        md.pager,
        md.uan,
        md.voicemail,
        md.fixed_line,
        md.mobile,
    )
    types = tuple(d for d in map(desc, kinds) if d is not None)
    return _Region(code, md.national_prefix or "", general, types)


# A format rule: leading digits, the number's pattern, and which of the pattern's
# groups each written group joins ("\\1 \\2\\3" is ((1,), (2, 3))).
_Format = tuple[re.Pattern[str] | None, re.Pattern[str], tuple[tuple[int, ...], ...]]


@functools.cache
def _formats(code: str) -> tuple[_Format, ...]:
    """A region's format rules, in the order phonenumbers tries them: those of the main
    region of its country code ("SJ" is written as "NO")."""
    from phonenumbers import PhoneMetadata, region_code_for_country_code

    md = PhoneMetadata.metadata_for_region(code)
    if md is not None and md.country_code is not None:
        md = PhoneMetadata.metadata_for_region(region_code_for_country_code(md.country_code))
    return tuple(
        (
            re.compile(f.leading_digits_pattern[-1]) if f.leading_digits_pattern else None,
            re.compile(f.pattern),
            tuple(
                tuple(int(ref) for ref in re.findall(r"\\([0-9])", part))
                for part in re.split(r"[^\\0-9]+", f.format)
                if "\\" in part
            ),
        )
        for f in (md.number_format if md is not None else ())
        if f.pattern and f.format
    )


def _written_as(code: str, nsn: str) -> tuple[int, ...]:
    """Sizes of the digit groups a region writes a national number in, as
    `phonenumbers.format_number` chooses the format: the first whose leading digits
    and pattern fit."""
    for leading, pattern, parts in _formats(code):
        if leading is not None and not leading.match(nsn):
            continue
        m = pattern.fullmatch(nsn)
        if m:
            return tuple(sum(len(m.group(ref)) for ref in part) for part in parts)
    return (len(nsn),)  # no rule: written as one group


def _region_written_so(digits: str, sizes: tuple[int, ...]) -> str | None:
    """The first of `_EIGHT_DIGIT_REGIONS` whose plan has a number, written as grouped."""
    for code in _EIGHT_DIGIT_REGIONS:
        region = _region(code)
        if region is not None and region.valid(digits) and _written_as(code, digits) == sizes:
            return code
    return None


@functools.cache
def _by_country_code() -> dict[int, tuple[str, ...]]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    return {cc: tuple(codes) for cc, codes in COUNTRY_CODE_TO_REGION_CODE.items()}


def _international_region(digits: str) -> str | None:
    by_country_code = _by_country_code()
    for cc_len in (1, 2, 3):
        codes = by_country_code.get(int(digits[:cc_len]))
        if codes:
            nsn = digits[cc_len:]
            for region in filter(None, map(_region, codes)):
                trunk = region.national_prefix
                if region.valid(nsn) or (
                    trunk and nsn.startswith(trunk) and region.valid(nsn[len(trunk) :])
                ):
                    return region.code
            return None
    return None


def _national_region(run: str, digits: str, sizes: tuple[int, ...], context: bool) -> str | None:
    only = _BRACKETED_AREA.get(sizes[0]) if run[0] == "(" and digits[0] != "0" else None
    for code in _CONTEXT_REGIONS if context else _NATIONAL_REGIONS:
        if only is not None and code not in only:
            continue
        if not context:
            shape = _NATIONAL_SHAPES[code][digits[0] == "0"]
            style = _SEPARATORS.get(code)
            if not shape(sizes) or (style and not style(run)):
                continue
        region = _region(code)
        if region is None:
            continue
        trunk = region.national_prefix
        if trunk and digits.startswith(trunk) and region.valid(digits[len(trunk) :]):
            return region.code
        # Italy and Spain have no trunk prefix: their numbers are dialled as written.
        without_trunk = not trunk or (region.code in _WITHOUT_TRUNK and digits[0] != "0")
        if without_trunk and region.valid(digits):
            return region.code
    return None


def _phone_region(text: str, start: int, end: int, run: str) -> str | None:
    """Region of the phone number that a run of digit groups is, if any."""
    region = _region_of_run(text, start, end, run)
    # A number in international format is a phone's by its "+"; any other may be a
    # register's number with a phone's shape.
    international = run[0] == "+" or run[:2] == "(+"
    if region is None or (not international and _registry_labelled(text, start, end)):
        return None
    return region


def _region_of_run(text: str, start: int, end: int, run: str) -> str | None:
    plus = run[0] == "+" or run[:2] == "(+"
    international = plus or run[:2] == "00"
    # "+44 (0)20 ..." drops the trunk prefix; "(0)20 ..." keeps it.
    groups = _rx().groups.findall(run.replace("(0)", "" if international else "0"))
    digits = "".join(groups)
    if not 7 <= len(digits) <= 15 or not digits.isdigit():
        return None
    if plus and digits[0] == "0":
        return None  # no country code starts with 0: "+00 298623636" is no number
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
    if (
        grouped
        and len(digits) >= 8
        and not _not_personal(text, start)
        and not _near(text, start, end, _CTX_ID)
    ):
        region = _national_region(run, digits, sizes, context=False)
        if region:
            return region
    # A word such as "phone" nearby admits any grouping and more regions, and a bare
    # run in E.164 without its "+" ("msisdn": "447911123456").
    if _phone_labelled(text, start, end) or (
        len(digits) >= 8 and _labelled_by(text, start, end, _CTX_PHONE_COLUMN)
    ):
        region = _national_region(run, digits, sizes, context=True)
        if region is None and len(groups) == 1 and len(digits) >= 10:
            region = _international_region(digits)
        if region is None and len(groups) > 1 and len(digits) == 8 and _named(text, start, end):
            region = _region_written_so(digits, sizes)  # "Tel. 40 52 37 62", "6123 4567"
        return region
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


# Names of a phone field as a SQL column list or a CSV header gives them, farther
# from the value than a "Tel:" ("INSERT INTO c (name, phone) VALUES ('Ana', '...')").
_CTX_PHONE_COLUMN = _words(
    "phone phones telephone tel tél tlf mobile mobil cell cellphone fax msisdn whatsapp telefon"
    " telefono teléfono telefone téléphone handy celular cellulare gsm movil móvil portable"
    " phonenumber mobilenumber mobilephone telnumber telefonnummer mobilnummer telefonnr"
    " телефон тел мобильный cep",
    "手机",
    "电话",
    "電話",
    "携帯",
    "전화",
    "휴대폰",
    "☎",
    "📞",
    "📱",
)


def _phone_labelled(text: str, start: int, end: int) -> bool:
    """Whether a word or field name such as "phone", "tel" or "msisdn" is near a span."""
    return _near(text, start, end, _CTX_PHONE) or _near(text, start, end, _CTX_PHONE_FIELD)


def _named(text: str, start: int, end: int) -> bool:
    """Whether a run is named a phone number by a noun or field name ("Tel.", "mobile"),
    not only near a verb ("text me the code ..."), and no word such as "order" is
    right before it."""
    return (
        _labelled_by(text, start, end, _CTX_PHONE_COLUMN)
        or _near(text, start, end, _CTX_PHONE_FIELD)
    ) and not _not_personal(text, start)


# Labels of company, trade and tax registers: "SIREN 732 829 320" and "KvK 12345678"
# have a phone number's shape and are none. Acronyms that are words too in some
# language ("ein" in German, "lei" in Romanian, "btw" in chat) count in capitals only.
_CTX_REGISTRY = _words(
    "siren siret kvk kvknummer crn vat tva ust ustid ustidnr abn acn uen cvr orgnr"
    " organisationsnummer organisasjonsnummer regon krs nip nipc cif gstin gst duns eori"
    " rcs hrb hra handelsregister handelsregisternummer steuernummer firmenbuch rfc ruc"
    " nit ičo dič",
    "company number",
    "company no",
    "company reg",
    "company registration",
    "registration number",
    "registration no",
    "registered number",
    "reg no",
    "reg. no",
    "business number",
    "business id",
    "chamber of commerce",
    "kamer van koophandel",
    "companies house",
    "registre du commerce",
    "registro mercantil",
    "partita iva",
    "p.iva",
    "y-tunnus",
    "org.nr",
    "org nr",
    "tax id",
    "tax number",
)
_REGISTRY_CAPITALS = ("EIN", "LEI", "BTW", "IVA")
# One word of each label, looked up in the words already read around a run (one set
# test for most runs; the phrases are looked for only when one of these is there).
_REGISTRY_GATE = _CTX_REGISTRY.words | frozenset(
    max((w for w in p.replace(".", " ").replace("-", " ").split() if w != "number"), key=len)
    for p in _CTX_REGISTRY.phrases
)


def _registry_labelled(text: str, start: int, end: int) -> bool:
    """Whether a run is labelled as a company or tax register's number, not a phone's.

    Right before the run, such a label rules a phone out unless a phone word is as
    close ("Tel. 01 23 45 67 89, SIRET ..."); farther off (a SQL column list, a CSV
    header), only when no phone word is near at all.
    """
    labels = _labels_at(text, start, end)
    if (
        _REGISTRY_GATE.isdisjoint(labels.words)
        and _REGISTRY_GATE.isdisjoint(labels.header_words)
        and not _capitals_in(text, start - 80, end + 24)
    ):
        return False
    lo = start - 24
    if _has_words(text, lo, start, _CTX_REGISTRY) or _capitals_in(text, lo, start):
        return not _has_words(text, lo, start, _CTX_PHONE)
    return (
        _labelled_by(text, start, end, _CTX_REGISTRY) or _capitals_in(text, start - 80, end + 24)
    ) and not (
        _phone_labelled(text, start, end) or _labelled_by(text, start, end, _CTX_PHONE_COLUMN)
    )


def _capitals_in(text: str, lo: int, hi: int) -> bool:
    window = text[max(0, lo) : hi]
    return any(a in window for a in _REGISTRY_CAPITALS) and any(
        a in _rx().word.findall(window) for a in _REGISTRY_CAPITALS
    )


# ----------------------------------------------------------------------------- links, forms

# Field names that say a value is a phone number, as one word ("phoneNumber").
_CTX_PHONE_FIELD = _words(
    "msisdn e164 phonenumber mobilenumber mobilephone telephonenumber telnumber whatsappnumber"
    " contactnumber cellnumber recipient recipients sender caller callee callerid"
    " телефон тел мобильный моб cep",
    "手机",
    "电话",
    "전화",
    "휴대폰",
)
# "wa.me/447911123456" and "%2B447911123456" (a form body's "+"): E.164 by construction.
# The sweeps over "." (`secrets`) and "%" (`emails`) find them; this is what follows "%".
_ENCODED_PLUS = r"2[Bb][0-9](?:[0-9]|%20|\+|-|%2[Dd]){6,30}"


def _on_e164(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    """A number in international format without its "+", from a link or a form body."""
    value = m.group()
    head = value.index("/") + 1 if value[0] == "." else 0
    plain = value[head:].replace("%20", "").replace("%2D", "").replace("%2d", "")
    digits = "".join(c for c in plain[3 if head == 0 else 0 :] if c.isdigit())
    if 7 <= len(digits) <= 15:
        region = _international_region(digits)
        if region:
            yield Finding("phone", region.lower(), m.start() + head, m.end())
