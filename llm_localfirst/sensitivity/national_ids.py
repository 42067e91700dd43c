"""National identity numbers of the countries added after the first ten.

This module owns, for China, South Korea, Mexico, Canada, Australia, Poland,
Sweden, Belgium, Switzerland, Denmark, Norway, Portugal, Turkey, South Africa,
Singapore, Argentina and Chile: which written shapes of a run of digits may be
each id, how strong that shape is, and the labels that make a weak one count.

Three tiers, by how often a random number of the same shape passes:

- *Self-evident*: check digits plus an embedded birth date or region (PESEL,
  fødselsnummer, Belgian national number, T.C. kimlik, South African id, Chinese
  resident id, AHV, CURP, NRIC). Counted bare, unless a word such as "order" or
  "invoice" comes just before and their own label is not near.
- *Distinctive format*: the country's usual punctuation makes the shape rare
  ("YYMMDD-NNNNNNN", "20-12345678-3", "12.345.678-5", "YYMMDD-NNNN"). Counted
  in that format; compact, they need their label.
- *Label only*: one weak check digit or none (SIN, TFN, Medicare, NIF, CPR, a
  bare DNI): counted only next to their label, in the languages of the country,
  or, when they have a check digit, next to a label any id may have ("ID number",
  "national ID", as whole words and not after "customer", "order"...). A label
  counts as far as a SQL column list, in a camelCase key, or heading a CSV column.

python-stdnum validates most of them (`checksums._stdnum`). Written here: the
Chilean RUT (python-stdnum refuses bodies under seven digits), the Mexican CURP
(python-stdnum also requires a state and a name from its lists), the
Chinese resident id (stdnum also looks the birth place up in a bundled table
that lags new county codes; here the province prefix, date and ISO 7064 check),
the Singapore NRIC/FIN and the Australian Medicare number (not in stdnum), and
the Korean RRN next to its label (numbers issued since October 2020 have no
check digit, which stdnum still requires).

What it must never do: report a label-only shape without its label, or return
the matched text.
"""

from __future__ import annotations

import datetime
import re

from .checksums import _luhn, _stdnum
from .text import (
    _CTX_BARCODE,
    _CTX_ID,
    _CTX_PHONE,
    _Labels,
    _labels_at,
    _near,
    _not_personal,
    _unit_after,
    _Words,
    _words,
)

# ----------------------------------------------------------------------------- labels

_CTX_CN = _words(
    "ric shenfenzheng sfz",
    "身份证",
    "身份證",
    "身份号码",
    "公民身份",
    "居民身份",
    "resident id",
    "chinese id",
    "id card",
)
_CTX_KR = _words("rrn jumin", "주민등록", "주민번호", "resident registration", "住民登錄")
_CTX_SIN = _words(
    "sin nas", "social insurance", "assurance sociale", "assurance-sociale", "s.i.n", "n.a.s"
)
_CTX_TFN = _words("tfn", "tax file")
_CTX_MEDICARE = _words("medicare")
_CTX_PESEL = _words("pesel")
_CTX_SE = _words(
    "personnummer personnr pnr samordningsnummer",
    "pers.nr",
    "pers. nr",
    "person number",
    "personal identity number",
)
_CTX_BE = _words(
    "rijksregisternummer rijksregister insz niss nn",
    "registre national",
    "nationaal nummer",
    "numéro national",
    "national number",
    "nationalregister",
    "rijksregister",
    "numéro de registre",
)
_CTX_AHV = _words(
    "ahv avs sozialversicherungsnummer ahvn13 ahvn",
    "numéro avs",
    "numero avs",
    "social security",
    "assicurazione",
    "sécurité sociale",
    "versichertennummer",
)
_CTX_CPR = _words("cpr personnummer", "cpr-nr", "cpr nummer", "personnummer")
_CTX_NO = _words(
    "fødselsnummer fodselsnummer fnr personnummer",
    "f.nr",
    "d-nummer",
    "fødselsnr",
    "birth number",
    "national identity number",
)
_CTX_NIF = _words(
    "nif contribuinte nipc",
    "número de identificação fiscal",
    "numero de identificacao fiscal",
    "identificação fiscal",
    "tax number",
    "número fiscal",
)
_CTX_TR = _words("tc tckn tckimlik kimlik", "t.c.", "tc no", "kimlik no", "vatandaşlık")
_CTX_ZA = _words("rsa", "identity number", "id number", "id no", "south african id", "sa id")
_CTX_DNI = _words(
    "dni documento", "d.n.i", "documento nacional", "documento de identidad", "nro de documento"
)
_CTX_CUIT = _words("cuit cuil", "c.u.i.t", "c.u.i.l", "clave única", "clave unica")
_CTX_RUT = _words("rut run", "r.u.t", "r.u.n", "rol único tributario", "rol unico tributario")


# ----------------------------------------------------------------------------- checks

_CN_PROVINCES = _words(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 "
    "53 54 61 62 63 64 65 71 81 82 83 91"
).words


def _date(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def cn_ric(value: str) -> bool:
    """A Chinese resident identity number: province, birth date, ISO 7064 mod 11-2."""
    if len(value) != 18 or not value[:17].isdigit() or value[:2] not in _CN_PROVINCES:
        return False
    if not 1900 <= int(value[6:10]) <= 2099 or not _date(
        int(value[6:10]), int(value[10:12]), int(value[12:14])
    ):
        return False
    check = (1 - 2 * int(value[:17], 13)) % 11
    return value[17] == ("X" if check == 10 else str(check))


def cl_rut(value: str) -> bool:
    """A Chilean RUT/RUN: a body of 6 to 8 digits and its mod-11 check, a digit or K.

    Written here because python-stdnum refuses the short bodies of older RUTs.
    """
    body, check = value[:-1], value[-1].upper()
    if not 6 <= len(body) <= 8 or not body.isdigit():
        return False
    total = sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(body)))
    return check == "0123456789K0"[11 - total % 11]


_CURP_ALPHABET = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ"


def mx_curp(value: str) -> bool:
    """A Mexican CURP: birth date, sex, and the check digit.

    Written here because python-stdnum also requires a state code from its list and
    a name outside its list of blocked words; the shape comes from the pattern.
    """
    century = 1900 if value[16].isdigit() else 2000
    if value[10] not in "HMX" or not _date(
        century + int(value[4:6]), int(value[6:8]), int(value[8:10])
    ):
        return False
    total = sum(_CURP_ALPHABET.index(c) * (18 - i) for i, c in enumerate(value[:17]))
    return value[17] == str((10 - total % 10) % 10)


def kr_rrn_date(value: str) -> bool:
    """Whether 13 digits start with a Korean RRN's birth date and sex digit."""
    century = {"9": 1800, "0": 1800, "1": 1900, "2": 1900, "5": 1900, "6": 1900}.get(value[6], 2000)
    return _date(century + int(value[:2]), int(value[2:4]), int(value[4:6]))


def sg_nric(value: str) -> bool:
    """A Singapore NRIC or FIN: S/T/F/G/M, seven digits, a check letter."""
    prefix, digits, letter = value[0], value[1:8], value[8]
    total = sum(w * int(d) for w, d in zip((2, 7, 6, 5, 4, 3, 2), digits, strict=True))
    total += {"T": 4, "G": 4, "M": 3}.get(prefix, 0)
    table = {
        "S": "JZIHGFEDCBA",
        "T": "JZIHGFEDCBA",
        "F": "XWUTRQPNMLK",
        "G": "XWUTRQPNMLK",
        "M": "XWUTRQPNJLK",
    }[prefix]
    return letter == table[total % 11]


def au_medicare(digits: str) -> bool:
    """An Australian Medicare card number: 10 digits (11 with the person's number)."""
    if len(digits) not in (10, 11) or digits[0] not in "23456" or digits[9] == "0":
        return False
    total = sum(w * int(d) for w, d in zip((1, 3, 7, 9, 1, 3, 7, 9), digits, strict=False))
    return total % 10 == int(digits[8])


# ----------------------------------------------------------------------------- digit runs


class _Run:
    """A run of digit groups being read, with its label tests."""

    __slots__ = ("_labels", "bare", "digits", "end", "seps", "sizes", "start", "text")

    def __init__(
        self, text: str, start: int, end: int, sizes: tuple[int, ...], digits: str, seps: str
    ) -> None:
        self.text, self.start, self.end = text, start, end
        self.sizes, self.digits, self.seps = sizes, digits, seps
        self.bare = len(sizes) == 1
        self._labels: _Labels | None = None

    def own(self, label: _Words, *, any_id: bool = True) -> bool:
        """Whether the id's own label is near, or heads its CSV column; or, unless
        ``any_id`` is false (ids without a check digit), a label any id may have."""
        if self._labels is None:  # read once per run, whichever ids are tried
            self._labels = _labels_at(self.text, self.start, self.end)
        return self._labels.has(label) or (any_id and self._labels.any_id())

    def plain(self) -> bool:
        """No "order", "invoice"... just before, and no barcode or phone label near."""
        text, start, end = self.text, self.start, self.end
        return not (
            _not_personal(text, start)
            or _near(text, start, end, _CTX_BARCODE)
            or _near(text, start, end, _CTX_PHONE)
        )

    def evident(self, label: _Words) -> bool:
        """Whether a self-evident shape counts: its label, or plain and no unit after."""
        if self.own(label):
            return True
        # Next to another id's label ("Steuer-IdNr 24905188366"), it is that id, mistyped.
        return self.plain() and not (
            (self.bare and _unit_after(self.text, self.end))
            or _near(self.text, self.start, self.end, _CTX_ID)
        )


def classify(
    text: str,
    start: int,
    end: int,
    sizes: tuple[int, ...],
    digits: str,
    separators: frozenset[str],
    letter: str = "",
) -> str | None:
    """Kind of id that a run of digit groups is, among this module's countries.

    Args:
        text: The scanned text.
        start: Offset of the run.
        end: Offset one past the run (before a trailing check letter).
        sizes: Lengths of the run's digit groups.
        digits: The run's digits.
        separators: The separator characters used between groups.
        letter: A check letter that follows the run ("X", "K"), if any.

    Returns:
        A kind such as ``"pl_pesel"``, or None.
    """
    run = _Run(text, start, end, sizes, digits, "".join(sorted(separators)))
    nd = len(digits)
    if letter:
        if letter == "X" and nd == 17 and cn_ric(digits + "X") and run.evident(_CTX_CN):
            return "cn_ric"
        if letter == "K" and nd in (7, 8):
            return _rut(run, digits + "K")
        return None
    reader = _READERS.get(nd)
    return reader(run) if reader else None


def _rut(run: _Run, value: str) -> str | None:
    """A Chilean RUT/RUN: "12.345.678-5" counts as written; other forms need "RUT"."""
    lettered = len(value) > len(run.digits)  # "12.345.678-K": the K is no group
    body = run.sizes if lettered else run.sizes[:-1]
    # "12.345.678-5", and "12345678-5" as Chilean systems print it.
    formatted = (body in ((1, 3, 3), (2, 3, 3)) or (len(body) == 1 and body[0] >= 7)) and (
        run.seps in (".", "") if lettered else run.seps in ("-.", "-") and run.sizes[-1] == 1
    )
    if formatted and len(body) == 1 and _yyyymmdd(run.digits):
        formatted = False  # "20240315-1": a date and a counter, unless "RUT" says otherwise
    if not (formatted or run.own(_CTX_RUT)) or not cl_rut(value):
        return None
    return "cl_rut" if run.own(_CTX_RUT) or (formatted and run.plain()) else None


def _yyyymmdd(digits: str) -> bool:
    year, month, day = digits[:2], digits[4:6], digits[6:8]
    return year in ("19", "20") and "01" <= month <= "12" and "01" <= day <= "31"


def _seven_eight(run: _Run) -> str | None:
    v, digits = _stdnum(), run.digits
    found = _rut(run, digits) if run.bare or run.sizes[-1] == 1 else None
    if found:
        return found
    if len(digits) == 8 and run.own(_CTX_TFN) and v.tfn(digits):
        return "au_tfn"
    dotted = run.sizes in ((1, 3, 3), (2, 3, 3)) and run.seps in (".", " ")
    # "DNI 12345678-Z" with a wrong letter is a Spanish DNI, not an Argentinian one.
    lettered = _SPANISH_LETTER.match(run.text, run.end, run.end + 3) is not None
    # No check digit: its own label, or in the dotted format any id's label ("ID number").
    if (
        (run.bare or dotted)
        and digits[0] != "0"
        and not lettered
        and run.own(_CTX_DNI, any_id=dotted and run.seps == ".")
    ):
        return "ar_dni"
    return None


def _nine(run: _Run) -> str | None:
    v, digits = _stdnum(), run.digits
    found = _rut(run, digits) if run.bare or run.sizes[-1] == 1 else None
    if found:
        return found
    # Luhn only: python-stdnum also refuses the unassigned first digits 0 and 8,
    # which test data and examples ("046 454 286") use.
    if run.own(_CTX_SIN) and _luhn(digits) and len(set(digits)) > 1:
        return "ca_sin"
    if run.own(_CTX_TFN) and v.tfn(digits):
        return "au_tfn"
    if run.own(_CTX_NIF) and v.nif(digits):
        return "pt_nif"
    return None


def _ten(run: _Run) -> str | None:
    v, digits = _stdnum(), run.digits
    if run.own(_CTX_MEDICARE) and au_medicare(digits):
        return "au_medicare"
    if run.own(_CTX_CPR) and v.cpr(digits):
        return "dk_cpr"
    dashed = run.sizes == (6, 4) and run.seps == "-"
    shaped = dashed or run.own(_CTX_SE)
    if (
        shaped
        and v.personnummer(f"{digits[:6]}-{digits[6:]}")
        and (run.own(_CTX_SE) or (run.plain() and not _stamp(digits[:2], digits[6:])))
    ):
        return "se_personnummer"
    return None


def _stamp(year: str, rest: str) -> bool:
    """Whether "YYMMDD-HHMM" reads as a recent date and a time, as in file names and logs."""
    return "15" <= year[-2:] <= "30" and rest[:2] <= "23" and rest[2:] <= "59"


def _eleven(run: _Run) -> str | None:
    v, digits, sizes = _stdnum(), run.digits, run.sizes
    formatted = sizes == (2, 8, 1) and run.seps == "-"
    if (
        (run.bare or formatted)
        and digits[:2] in _CUIT_TYPES
        and (run.own(_CTX_CUIT) or (formatted and run.plain()))
        and v.cuit(digits)
    ):
        return "ar_cuit"
    if run.own(_CTX_MEDICARE) and au_medicare(digits):
        return "au_medicare"
    be_format = sizes in ((2, 2, 2, 3, 2), (6, 3, 2)) and run.seps in (".", "-", "-.", " ")
    # Each reading that passes its checks but not its context lets the next one try.
    if (run.bare or be_format) and v.nn(digits) and run.evident(_CTX_BE):
        return "be_nn"
    if (run.bare or sizes == (6, 5)) and v.fodselsnummer(digits) and run.evident(_CTX_NO):
        return "no_fodselsnummer"
    if run.bare and v.pesel(digits) and run.evident(_CTX_PESEL):
        return "pl_pesel"
    spaced = sizes == (3, 3, 3, 2) and run.seps == " "  # "123.456.789-01" is a CPF
    if (run.bare or spaced) and v.tckimlik(digits) and run.evident(_CTX_TR):
        return "tr_tckimlik"
    return None


_SPANISH_LETTER = re.compile(r"[- ]?[A-Z](?![A-Za-z0-9])")
_CUIT_TYPES = frozenset(("20", "23", "24", "27", "30", "33", "34", "50", "51", "55"))


def _twelve(run: _Run) -> str | None:
    digits = run.digits
    dashed = run.sizes == (8, 4) and run.seps == "-"
    if (
        (dashed or run.own(_CTX_SE))
        and digits[:2] in ("18", "19", "20")
        and _stdnum().personnummer(f"{digits[:8]}-{digits[8:]}")
        and (run.own(_CTX_SE) or (run.plain() and not _stamp(digits[:4], digits[8:])))
    ):
        return "se_personnummer"
    return None


def _thirteen(run: _Run) -> str | None:
    v, digits, sizes = _stdnum(), run.digits, run.sizes
    dotted = sizes == (3, 4, 4, 2) and run.seps in (".", " ")
    if dotted and v.ahv(digits) and (run.own(_CTX_AHV) or run.plain()):
        return "ch_ahv"
    # Since October 2020 the last six digits are random: next to its label, the
    # shape suffices (test data often has no valid date either).
    dashed = sizes == (6, 7) and run.seps in ("-", " ")
    if (dashed or run.bare) and run.own(_CTX_KR, any_id=False):
        return "kr_rrn"
    if (
        (dashed or run.bare)
        and kr_rrn_date(digits)
        and v.rrn(digits)
        and (run.own(_CTX_KR) or (dashed and run.plain()))
    ):
        return "kr_rrn"
    za_format = run.bare or sizes in ((6, 4, 2, 1), (6, 4, 3), (6, 7))
    if za_format and v.za_idnr(digits) and run.evident(_CTX_ZA):
        return "za_idnr"
    if run.bare and digits.startswith("756") and v.ahv(digits) and run.evident(_CTX_AHV):
        return "ch_ahv"
    return None


def _eighteen(run: _Run) -> str | None:
    shaped = run.bare or run.sizes in ((6, 8, 4), (6, 4, 4, 4), (6, 8, 3, 1))
    if shaped and cn_ric(run.digits) and run.evident(_CTX_CN):
        return "cn_ric"
    return None


_READERS = {
    7: _seven_eight,
    8: _seven_eight,
    9: _nine,
    10: _ten,
    11: _eleven,
    12: _twelve,
    13: _thirteen,
    18: _eighteen,
}
