"""A held-out corpus, written apart from `ids`, `pii` and `secrets`, to judge the detectors.

Nothing here is shared with the other corpus modules: the check digits are computed
by this module's own code (a test checks each against python-stdnum where it has the
id), and the containers, phrasings and look-alikes are its own. It is meant to look
like a new user's traffic, not like the texts the detectors were built against:

- `positives()` yields `Case`s that each hold one value of a known detector and kind:
  the national ids of the twenty-seven countries of issue 14 and of the first ten,
  cards of every network, IBANs of forty countries, e-mail addresses under country
  domains, phone numbers of thirty regions, and the secret formats of issue 14 and of
  the first release. Each value is written as people write it (grouped, compact,
  dotted, lower case, wrapped across a quoted line) inside one of: prose in fifteen
  languages, JSON, YAML, CSV under a header, SQL INSERT, XML, log lines, e-mail
  quotes, chat transcripts and URL-encoded form bodies.
- `benign()` yields look-alikes, each with a category: order numbers, totals,
  timestamps, versions, UUIDs, git SHAs, barcodes, measurements, invalid phone-like
  numbers, lottery draws, coordinates, placeholder keys, ARNs, resource names, base64
  blobs, hex colours, IP addresses, and ids with a wrong check digit next to their
  label.

Everything comes from one `random.Random(seed)`: a run is reproducible.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import random
import string
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["ID_KINDS", "Case", "benign", "positives"]

DIG = string.digits
UP = string.ascii_uppercase
LOW = string.ascii_lowercase
B62 = DIG + UP + LOW
HEXL = "0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Case:
    """One text of the corpus; ``detector`` is None for a look-alike.

    Attributes:
        text: The text to scan.
        detector: The detector that must fire, or None when none may.
        kind: The kind of value (``"pl_pesel"``, ``"visa"``, ``"iban_de"``) or, for a
            look-alike, its category (``"placeholder_key"``).
        value: The value as written in ``text``.
    """

    text: str
    detector: str | None
    kind: str
    value: str


# ----------------------------------------------------------------------------- helpers


def _n(r: random.Random, k: int, alphabet: str = DIG) -> str:
    return "".join(r.choice(alphabet) for _ in range(k))


def _born(r: random.Random, lo: int = 1940, hi: int = 2010) -> datetime.date:
    return datetime.date(lo, 1, 1) + datetime.timedelta(days=r.randrange((hi - lo) * 365))


def _luhn_check(body: str) -> str:
    s = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return str((10 - s % 10) % 10)


def _weighted(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False))


def _chunks(value: str, sizes: tuple[int, ...], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(value[i : i + size])
        i += size
    if i < len(value):
        out.append(value[i:])
    return sep.join(p for p in out if p)


def _fours(value: str, sep: str = " ") -> str:
    return sep.join(value[i : i + 4] for i in range(0, len(value), 4))


# ----------------------------------------------------------------------------- national ids
# Each maker returns the value in its canonical compact form; `_ID_SPELLINGS` writes it.


def _cn_ric(r: random.Random) -> str:
    area = r.choice(["110101", "310104", "440305", "510107", "330106", "420111", "650102"])
    body = area + _born(r).strftime("%Y%m%d") + _n(r, 3)
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[_weighted(body, w) % 11]


def _kr_rrn(r: random.Random) -> str:
    d = _born(r, 1950, 2019)
    sex = r.choice("12") if d.year < 2000 else r.choice("34")
    body = d.strftime("%y%m%d") + sex + f"{r.randrange(96):02d}" + _n(r, 3)
    s = _weighted(body, (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5))
    return body + str((11 - s % 11) % 10)


_MX_STATES = (
    "AS BC BS CC CL CM CS CH DF DG GT GR HG JC MC MN MS "
    "NT NL OC PL QT QR SP SL SR TC TS TL VZ YN ZS"
)
# The inconvenient words RENAPO replaces, among those the letters above can form.
_CURP_RENAP_WORDS = frozenset(
    [
        "BACA",
        "BAKA",
        "BUEI",
        "BUEY",
        "CACA",
        "CACO",
        "CAGA",
        "CAGO",
        "CAKA",
        "CAKO",
        "COGE",
        "COGI",
        "COJA",
        "COJE",
        "COJI",
        "COJO",
        "COLA",
        "CULO",
        "FALO",
        "FETO",
        "GETA",
        "GUEI",
        "GUEY",
        "JETA",
        "JOTO",
        "KACA",
        "KACO",
        "KAGA",
        "KAGO",
        "KAKA",
        "KAKO",
        "KOGE",
        "KOGI",
        "KOJA",
        "KOJE",
        "KOJI",
        "KOJO",
        "KOLA",
        "KULO",
        "LILO",
        "LOCA",
        "LOCO",
        "LOKA",
        "LOKO",
        "MAME",
        "MAMO",
        "MEAR",
        "MEAS",
        "MEON",
        "MIAR",
        "MION",
        "MOCO",
        "MOKO",
        "MULA",
        "MULO",
        "NACA",
        "NACO",
        "PEDA",
        "PEDO",
        "PENE",
        "PIPI",
        "PITO",
        "POPO",
        "PUTA",
        "PUTO",
        "QULO",
        "RATA",
        "ROBA",
        "ROBE",
        "ROBO",
        "RUIN",
        "SENO",
        "TETA",
        "VACA",
        "VAGA",
        "VAGO",
        "VAKA",
        "VUEI",
        "VUEY",
        "WUEI",
        "WUEY",
    ]
)
_CURP_CHARS = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ"


def _mx_curp(r: random.Random) -> str:
    d = _born(r, 1950, 2010)
    head = (
        r.choice("BCDFGHLMPRSTV") + r.choice("AEIOU") + r.choice("BCDFGLMPRS") + r.choice("AEJLMR")
    )
    if head in _CURP_RENAP_WORDS:
        head = head[0] + "X" + head[2:]  # RENAPO's rule for an inconvenient word
    body = (
        head
        + d.strftime("%y%m%d")
        + r.choice("HM")
        + r.choice(_MX_STATES.split())
        + _n(r, 3, "BCDFGHJKLMNPRSTVZ")
        + (r.choice(DIG) if d.year < 2000 else r.choice("ABC"))
    )
    s = sum(_CURP_CHARS.index(c) * (18 - i) for i, c in enumerate(body))
    return body + str((10 - s % 10) % 10)


def _ca_sin(r: random.Random) -> str:
    body = r.choice("1234567") + _n(r, 7)
    return body + _luhn_check(body)


def _au_tfn(r: random.Random) -> str:
    while True:
        body = r.choice("1234567") + _n(r, 7)
        for last in DIG:
            if _weighted(body + last, (1, 4, 3, 7, 5, 8, 6, 9, 10)) % 11 == 0:
                return body + last


def _au_medicare(r: random.Random) -> str:
    body = r.choice("23456") + _n(r, 7)
    return body + str(_weighted(body, (1, 3, 7, 9, 1, 3, 7, 9)) % 10) + r.choice("123456789")


def _pl_pesel(r: random.Random) -> str:
    d = _born(r, 1940, 2015)
    month = d.month + (20 if d.year >= 2000 else 0)
    body = f"{d:%y}{month:02d}{d:%d}" + _n(r, 4)
    return body + str((10 - _weighted(body, (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)) % 10) % 10)


def _se_pnr(r: random.Random) -> str:
    d = _born(r, 1940, 2012)
    body = d.strftime("%y%m%d") + _n(r, 3)
    return d.strftime("%Y")[:2] + body + _luhn_check(body)  # 12 digits: century kept


def _be_nn(r: random.Random) -> str:
    d = _born(r, 1940, 2015)
    body = d.strftime("%y%m%d") + f"{r.randrange(1, 998):03d}"
    base = int(("2" if d.year >= 2000 else "") + body)
    return body + f"{97 - base % 97:02d}"


def _ch_ahv(r: random.Random) -> str:
    body = "756" + _n(r, 9)
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - s % 10) % 10)


def _dk_cpr(r: random.Random) -> str:
    d = _born(r, 1940, 1999)
    seq = r.choice("0123") + _n(r, 3)  # 7th digit 0-3: born 1900-1999
    return d.strftime("%d%m%y") + seq


def _no_fnr(r: random.Random) -> str:
    while True:
        d = _born(r, 1940, 1999)
        body = d.strftime("%d%m%y") + f"{r.randrange(0, 500):03d}"
        k1 = 11 - _weighted(body, (3, 7, 6, 1, 8, 9, 4, 5, 2)) % 11
        k1 = 0 if k1 == 11 else k1
        if k1 == 10:
            continue
        body += str(k1)
        k2 = 11 - _weighted(body, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)) % 11
        k2 = 0 if k2 == 11 else k2
        if k2 != 10:
            return body + str(k2)


def _pt_nif(r: random.Random) -> str:
    body = r.choice("123") + _n(r, 7)
    c = 11 - _weighted(body, (9, 8, 7, 6, 5, 4, 3, 2)) % 11
    return body + str(0 if c >= 10 else c)


def _tr_kimlik(r: random.Random) -> str:
    d = [r.randrange(1, 10)] + [r.randrange(10) for _ in range(8)]
    d10 = ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10
    d11 = (sum(d) + d10) % 10
    return "".join(map(str, d)) + str(d10) + str(d11)


def _za_id(r: random.Random) -> str:
    body = _born(r, 1940, 2010).strftime("%y%m%d") + _n(r, 4) + r.choice("01") + "8"
    return body + _luhn_check(body)


def _sg_nric(r: random.Random) -> str:
    prefix = r.choice("STFGM")
    digits = _n(r, 7)
    s = _weighted(digits, (2, 7, 6, 5, 4, 3, 2)) + {"T": 4, "G": 4, "M": 3}.get(prefix, 0)
    tables = {"S": "ABCDEFGHIZJ", "T": "ABCDEFGHIZJ", "F": "KLMNPQRTUWX", "G": "KLMNPQRTUWX"}
    table = tables.get(prefix, "KLJNPQRTUWX")
    return prefix + digits + table[10 - s % 11]


def _ar_dni(r: random.Random) -> str:
    return str(r.randrange(10_000_000, 46_000_000))


def _ar_cuit(r: random.Random) -> str:
    while True:
        body = r.choice(["20", "23", "27", "30", "33"]) + _n(r, 8)
        c = 11 - _weighted(body, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)) % 11
        if c == 10:
            continue
        return body + str(0 if c == 11 else c)


def _cl_rut(r: random.Random) -> str:
    body = str(r.randrange(5_000_000, 27_000_000))
    s = sum(int(c) * (2 + i % 6) for i, c in enumerate(reversed(body)))
    return body + "0123456789K0"[11 - s % 11]


def _us_ssn(r: random.Random) -> str:
    area = r.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}{r.randrange(1, 100):02d}{r.randrange(1, 10000):04d}"


def _us_itin(r: random.Random) -> str:
    group = r.choice([*range(70, 89), 90, 91, 92, *range(94, 100)])
    return f"9{_n(r, 2)}{group:02d}{_n(r, 4)}"


def _gb_nino(r: random.Random) -> str:
    first = r.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = r.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        first, second = "A", "B"
    return first + second + _n(r, 6) + r.choice("ABCD")


def _gb_nhs(r: random.Random) -> str:
    while True:
        body = r.choice("4679") + _n(r, 8)
        c = 11 - _weighted(body, (10, 9, 8, 7, 6, 5, 4, 3, 2)) % 11
        if c != 10:
            return body + str(0 if c == 11 else c)


def _fr_nir(r: random.Random) -> str:
    d = _born(r)
    dept = r.choice(["75", "13", "69", "33", "59", "31", "44", "06", "67", "2A", "2B", "34"])
    body = r.choice("12") + d.strftime("%y%m") + dept + _n(r, 3) + _n(r, 3)
    numeric = int(body.replace("2A", "19").replace("2B", "18"))
    return body + f"{97 - numeric % 97:02d}"


def _de_idnr(r: random.Random) -> str:
    while True:
        digits = [r.randrange(1, 10)] + [r.randrange(10) for _ in range(9)]
        counts = sorted((digits.count(x) for x in set(digits)), reverse=True)
        if counts[0] not in (2, 3) or counts[1] > 1:
            continue
        product = 10
        for x in digits:
            s = (x + product) % 10 or 10
            product = (2 * s) % 11
        check = (11 - product) % 10
        return "".join(map(str, digits)) + str(check)


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _es_dni(r: random.Random) -> str:
    n = r.randrange(1_000_000, 99_999_999)
    return f"{n:08d}{_DNI_LETTERS[n % 23]}"


def _es_nie(r: random.Random) -> str:
    lead = r.choice("XYZ")
    n = _n(r, 7)
    return lead + n + _DNI_LETTERS[int(str("XYZ".index(lead)) + n) % 23]


_CF_ODD = [
    1,
    0,
    5,
    7,
    9,
    13,
    15,
    17,
    19,
    21,
    2,
    4,
    18,
    20,
    11,
    3,
    6,
    8,
    12,
    14,
    16,
    10,
    22,
    25,
    24,
    23,
]


def _it_cf(r: random.Random) -> str:
    d = _born(r)
    day = d.day + (40 if r.random() < 0.5 else 0)
    body = (
        _n(r, 3, "BCDFGLMNPRSTVZ")
        + _n(r, 3, "BCDFGLMNPRSTVZ")
        + d.strftime("%y")
        + "ABCDEHLMPRST"[d.month - 1]
        + f"{day:02d}"
        + r.choice("ABCDEFGHILM")
        + _n(r, 3)
    )
    total = 0
    for i, c in enumerate(body):
        v = int(c) if c.isdigit() else ord(c) - 65
        total += _CF_ODD[v] if i % 2 == 0 else v
    return body + UP[total % 26]


def _nl_bsn(r: random.Random) -> str:
    while True:
        body = r.choice("123456") + _n(r, 7)
        rest = _weighted(body, (9, 8, 7, 6, 5, 4, 3, 2)) % 11
        if rest < 10:
            return body + str(rest)


def _br_cpf(r: random.Random) -> str:
    d = [r.randrange(10) for _ in range(9)]
    for n in (10, 11):
        s = sum(x * (n - i) for i, x in enumerate(d))
        d.append(0 if s % 11 < 2 else 11 - s % 11)
    return "".join(map(str, d))


def _br_cnpj(r: random.Random) -> str:
    d = [r.randrange(10) for _ in range(8)] + [0, 0, 0, r.randrange(1, 4)]
    for weights in ((5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2), (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)):
        s = sum(x * w for x, w in zip(d, weights, strict=False))
        d.append(0 if s % 11 < 2 else 11 - s % 11)
    return "".join(map(str, d))


_VD = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VP = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]
_VINV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def _in_aadhaar(r: random.Random) -> str:
    body = r.choice("23456789") + _n(r, 10)
    c = 0
    for i, ch in enumerate(reversed(body)):
        c = _VD[c][_VP[(i + 1) % 8][int(ch)]]
    return body + str(_VINV[c])


def _in_pan(r: random.Random) -> str:
    return _n(r, 3, UP) + r.choice("PCHF") + r.choice(UP) + _n(r, 4) + r.choice(UP)


def _jp_my_number(r: random.Random) -> str:
    body = _n(r, 11)
    s = sum(int(c) * (i + 2 if i < 6 else i - 4) for i, c in enumerate(reversed(body)))
    return body + str(0 if s % 11 <= 1 else 11 - s % 11)


def _de_id_card(r: random.Random) -> str:
    body = r.choice("CFGHJKLMNPRTVWXYZ") + _n(r, 8, "CFGHJKLMNPRTVWXYZ0123456789")
    s = sum(int(c, 36) * (7, 3, 1)[i % 3] for i, c in enumerate(body))
    return body + str(s % 10)


# (maker, labels in the country's languages, JSON/CSV keys, self-evident shape or not)
_ID_MAKERS: dict[str, tuple[Callable[[random.Random], str], list[str], list[str], bool]] = {
    "cn_ric": (
        _cn_ric,
        ["身份证号", "居民身份证号码", "ID card no.", "身份证"],
        ["sfzh", "id_card"],
        True,
    ),
    "kr_rrn": (
        _kr_rrn,
        ["주민등록번호", "주민번호", "RRN", "resident registration no."],
        ["rrn", "jumin"],
        False,
    ),
    "mx_curp": (_mx_curp, ["CURP", "Clave Única de Registro de Población"], ["curp"], True),
    "ca_sin": (
        _ca_sin,
        ["SIN", "social insurance number", "NAS", "numéro d'assurance sociale"],
        ["sin", "social_insurance_number"],
        False,
    ),
    "au_tfn": (_au_tfn, ["TFN", "tax file number"], ["tfn", "tax_file_number"], False),
    "au_medicare": (
        _au_medicare,
        ["Medicare number", "Medicare card no.", "medicare"],
        ["medicare", "medicare_number"],
        False,
    ),
    "pl_pesel": (_pl_pesel, ["PESEL", "numer PESEL", "nr PESEL"], ["pesel"], True),
    "se_personnummer": (
        _se_pnr,
        ["personnummer", "personnr", "personal identity number"],
        ["personnummer", "pnr"],
        False,
    ),
    "be_nn": (
        _be_nn,
        ["rijksregisternummer", "numéro de registre national", "INSZ", "NISS"],
        ["rijksregisternummer", "niss"],
        True,
    ),
    "ch_ahv": (
        _ch_ahv,
        ["AHV-Nummer", "numéro AVS", "AHV-Nr.", "Sozialversicherungsnummer"],
        ["ahv", "avs_number"],
        True,
    ),
    "dk_cpr": (_dk_cpr, ["CPR-nummer", "CPR-nr.", "personnummer"], ["cpr", "cpr_nr"], False),
    "no_fodselsnummer": (
        _no_fnr,
        ["fødselsnummer", "fnr.", "personnummer"],
        ["fodselsnummer", "fnr"],
        True,
    ),
    "pt_nif": (
        _pt_nif,
        ["NIF", "número de contribuinte", "número de identificação fiscal"],
        ["nif", "contribuinte"],
        False,
    ),
    "tr_tckimlik": (
        _tr_kimlik,
        ["T.C. Kimlik No", "TC kimlik numarası", "TCKN"],
        ["tckn", "tc_kimlik_no"],
        True,
    ),
    "za_idnr": (_za_id, ["ID number", "SA ID", "identity number"], ["id_number", "sa_id"], True),
    "sg_nric": (_sg_nric, ["NRIC", "FIN", "NRIC no."], ["nric", "nric_fin"], True),
    "ar_dni": (
        _ar_dni,
        ["DNI", "documento nacional de identidad", "Nro de DNI"],
        ["dni", "nro_documento"],
        False,
    ),
    "ar_cuit": (_ar_cuit, ["CUIT", "CUIL", "C.U.I.T."], ["cuit", "cuil"], True),
    "cl_rut": (_cl_rut, ["RUT", "RUN", "R.U.T."], ["rut", "run"], True),
    "us_ssn": (
        _us_ssn,
        ["SSN", "social security number", "Soc. Sec. #"],
        ["ssn", "social_security_number"],
        True,
    ),
    "us_itin": (_us_itin, ["ITIN", "taxpayer id (ITIN)"], ["itin"], True),
    "gb_nino": (
        _gb_nino,
        ["NI number", "National Insurance number", "NINO"],
        ["nino", "ni_number"],
        True,
    ),
    "gb_nhs": (_gb_nhs, ["NHS number", "NHS no."], ["nhs_number", "nhs"], False),
    "fr_nir": (
        _fr_nir,
        ["numéro de sécurité sociale", "NIR", "n° INSEE"],
        ["nir", "numero_secu"],
        True,
    ),
    "de_idnr": (
        _de_idnr,
        ["Steuer-ID", "Steueridentifikationsnummer", "IdNr"],
        ["steuer_id", "idnr"],
        False,
    ),
    "es_dni": (_es_dni, ["DNI", "documento nacional de identidad"], ["dni", "nif"], True),
    "es_nie": (_es_nie, ["NIE", "número de identidad de extranjero"], ["nie"], True),
    "it_codice_fiscale": (
        _it_cf,
        ["codice fiscale", "C.F.", "cod. fisc."],
        ["codice_fiscale", "cf"],
        True,
    ),
    "nl_bsn": (_nl_bsn, ["BSN", "burgerservicenummer"], ["bsn", "burgerservicenummer"], False),
    "br_cpf": (_br_cpf, ["CPF", "nº do CPF"], ["cpf"], True),
    "br_cnpj": (_br_cnpj, ["CNPJ"], ["cnpj"], True),
    "in_aadhaar": (_in_aadhaar, ["Aadhaar", "Aadhaar no.", "आधार संख्या"], ["aadhaar", "uid"], True),
    "in_pan": (_in_pan, ["PAN", "PAN card no."], ["pan"], True),
    "jp_my_number": (
        _jp_my_number,
        ["マイナンバー", "個人番号", "My Number"],
        ["my_number", "individual_number"],
        False,
    ),
    "de_id_card": (
        _de_id_card,
        ["Personalausweisnummer", "Ausweisnummer", "ID card no."],
        ["ausweisnummer", "personalausweis"],
        False,
    ),
}
ID_KINDS = tuple(_ID_MAKERS)


def _dots_thousands(n: str) -> str:
    return f"{int(n):,}".replace(",", ".")


def _id_spellings(kind: str, v: str) -> list[str]:
    """The ways people write one id, its compact form first."""
    if kind == "cn_ric":
        return [v, v.replace("X", "x"), _chunks(v, (6, 8, 4), " ")]
    if kind == "kr_rrn":
        return [f"{v[:6]}-{v[6:]}", v, f"{v[:6]} {v[6:]}"]
    if kind in ("mx_curp", "it_codice_fiscale", "in_pan", "gb_nino", "de_id_card", "sg_nric"):
        spaced = _chunks(v, (2, 2, 2, 2, 1), " ") if kind == "gb_nino" else v
        return [v, spaced, v if kind == "de_id_card" else v.lower()]
    if kind == "ca_sin":
        return [_chunks(v, (3, 3, 3), " "), _chunks(v, (3, 3, 3), "-"), v]
    if kind == "au_tfn":
        return [_chunks(v, (3, 3, 3), " "), v]
    if kind == "au_medicare":
        return [_chunks(v, (4, 5, 1), " "), v, _chunks(v, (4, 5), " ")]
    if kind in ("pl_pesel", "tr_tckimlik"):
        return [v]
    if kind == "se_personnummer":
        return [f"{v[2:8]}-{v[8:]}", f"{v[:8]}-{v[8:]}", v[2:], v]
    if kind == "be_nn":
        return [f"{v[:2]}.{v[2:4]}.{v[4:6]}-{v[6:9]}.{v[9:]}", f"{v[:6]}-{v[6:9]}-{v[9:]}", v]
    if kind == "ch_ahv":
        return [_chunks(v, (3, 4, 4, 2), "."), v, _chunks(v, (3, 4, 4, 2), " ")]
    if kind == "dk_cpr":
        return [f"{v[:6]}-{v[6:]}", v]
    if kind == "no_fodselsnummer":
        return [v, f"{v[:6]} {v[6:]}"]
    if kind == "pt_nif":
        return [v, _chunks(v, (3, 3, 3), " ")]
    if kind == "za_idnr":
        return [v, _chunks(v, (6, 4, 3), " ")]
    if kind == "ar_dni":
        return [_dots_thousands(v), v]
    if kind == "ar_cuit":
        return [f"{v[:2]}-{v[2:10]}-{v[10]}", v]
    if kind == "cl_rut":
        return [
            f"{_dots_thousands(v[:-1])}-{v[-1]}",
            f"{v[:-1]}-{v[-1]}",
            f"{v[:-1]}-{v[-1].lower()}",
        ]
    if kind in ("us_ssn", "us_itin"):
        return [_chunks(v, (3, 2, 4), "-"), _chunks(v, (3, 2, 4), " ")]
    if kind == "gb_nhs":
        return [_chunks(v, (3, 3, 4), " "), v, _chunks(v, (3, 3, 4), "-")]
    if kind == "fr_nir":
        return [_chunks(v, (1, 2, 2, 2, 3, 3, 2), " "), v]
    if kind == "de_idnr":
        return [v, _chunks(v, (2, 3, 3, 3), " ")]
    if kind == "es_dni":
        return [v, f"{v[:8]}-{v[8]}", f"{_dots_thousands(v[:8])}-{v[8]}"]
    if kind == "es_nie":
        return [v, f"{v[0]}-{v[1:8]}-{v[8]}", v.lower()]
    if kind == "nl_bsn":
        return [v, f"{v[:4]}.{v[4:6]}.{v[6:]}"]
    if kind == "br_cpf":
        return [f"{v[:3]}.{v[3:6]}.{v[6:9]}-{v[9:]}", v]
    if kind == "br_cnpj":
        return [f"{v[:2]}.{v[2:5]}.{v[5:8]}/{v[8:12]}-{v[12:]}", v]
    if kind == "in_aadhaar":
        return [_fours(v), _fours(v, "-"), v]
    if kind == "jp_my_number":
        return [_fours(v), v]
    raise KeyError(kind)


# ----------------------------------------------------------------------------- containers

_PROSE = {
    "en": [
        "Hi team, my {label} is {value}, could you check the form?",
        "For the record, {label} {value}. Thanks!",
        "please update the {label} to {value} before friday",
    ],
    "de": [
        "Hallo, meine {label} lautet {value}. Viele Grüße",
        "Anbei {label}: {value} für den Antrag.",
    ],
    "fr": [
        "Bonjour, voici mon {label} : {value}. Cordialement",
        "Mon {label} est le {value}, merci.",
    ],
    "es": ["Hola, mi {label} es {value}, ¿lo puedes revisar?", "Te paso el {label}: {value}"],
    "pt": ["Olá, o meu {label} é {value}, obrigado.", "Segue o {label} {value} para o cadastro."],
    "it": ["Ciao, il mio {label} è {value}.", "Ecco il {label}: {value}, grazie"],
    "nl": ["Hoi, mijn {label} is {value}.", "Graag het {label} {value} aanpassen."],
    "pl": ["Dzień dobry, mój {label} to {value}, proszę o weryfikację.", "Podaję {label}: {value}"],
    "sv": ["Hej, mitt {label} är {value}.", "Här är {label} {value}, tack!"],
    "da": ["Hej, mit {label} er {value}.", "Vedlagt {label}: {value}"],
    "no": ["Hei, mitt {label} er {value}.", "Her er {label} {value}, takk"],
    "tr": [
        "Merhaba, {label}: {value}, kontrol eder misiniz?",
        "{label} bilgim {value} olarak güncellensin.",
    ],
    "zh": ["你好，我的{label}是{value}，请帮忙核对。", "{label}：{value}"],
    "ko": ["안녕하세요, 제 {label}은 {value}입니다.", "{label}: {value} 확인 부탁드립니다."],
    "ja": ["{label}は{value}です。よろしくお願いします。", "{label}：{value}"],
}
_NEUTRAL = [
    "Could you file this for Ana Ruiz: {value}. Thanks",
    "Fwd from Marta -- {value} -- see above",
    "{value}",
    "checking {value} now",
    "Name: Piotr Nowak, {value}, Kraków",
    "customer wrote in with {value} and asked for a callback about the contract",
]
_NAMES = [
    "Ana Silva",
    "Jan Kowalski",
    "Li Wei",
    "Kim Min-jun",
    "Sofía Pérez",
    "Lars Berg",
    "Emma Peeters",
]


def _slug(r: random.Random, keys: list[str]) -> str:
    key = r.choice(keys)
    return r.choice(
        [key, key.upper(), "".join(p.title() if i else p for i, p in enumerate(key.split("_")))]
    )


def _render(
    r: random.Random, value: str, label: str | None, key: str | None, lang: str = "en"
) -> str:
    """Put one value in a container; with a label (prose) and key (structured) or none."""
    name = r.choice(_NAMES)
    k = key or r.choice(["value", "data", "field3", "v"])
    how = r.randrange(11)
    if how == 0 or (how == 1 and label is None):
        if label is None:
            return r.choice(_NEUTRAL).format(value=value)
        langs = [lang, lang, "en"]
        return r.choice(_PROSE[r.choice(langs)]).format(label=label, value=value)
    if how == 1:
        return json.dumps(
            {"customer": {"name": name, k: value, "active": True}},
            ensure_ascii=False,
            indent=r.choice([None, 2]),
        )
    if how == 2:
        return f'customer:\n  name: {name}\n  {k}: "{value}"\n  tier: gold\n'
    if how == 3:
        cols = ["name", k, "city"] if key else ["name", "col_b", "city"]
        rows = [f"{_NAMES[i]},{_n(r, 2)}-A,Porto" for i in range(r.randrange(0, 3))]
        return "\n".join([",".join(cols), *rows, f"{name},{value},Lisboa"])
    if how == 4:
        return f"INSERT INTO clients (name, {k}, created_at) VALUES ('{name}', '{value}', now());"
    if how == 5:
        tag = key if key and not key.islower() else (key or "value").capitalize()
        return f"<client><name>{name}</name><{tag}>{value}</{tag}></client>"
    if how == 6:
        stamp = f"2026-04-0{r.randrange(1, 9)}T10:{r.randrange(10, 59)}:07Z"
        return f"{stamp} INFO kyc.check client=8812 {k}={value} status=ok"
    if how == 7:
        said = f"{label} {value}" if label else value
        return f"On Mon, 3 Mar 2026 at 09:12, {name} wrote:\n> hello,\n> {said}\n> regards"
    if how == 8:
        said = f"my {label} is {value}" if label else f"here: {value}"
        return f"[09:14] {name}: hi\n[09:15] {name}: {said}\n[09:16] agent: thanks, checking"
    if how == 9:
        return (
            f"name={urllib.parse.quote_plus(name)}&{k}={urllib.parse.quote_plus(value)}&submit=Send"
        )
    return f"| name | {label or 'note'} |\n|---|---|\n| {name} | {value} |"


_ID_LANG = {
    "cn_ric": "zh",
    "kr_rrn": "ko",
    "mx_curp": "es",
    "ca_sin": "fr",
    "au_tfn": "en",
    "au_medicare": "en",
    "pl_pesel": "pl",
    "se_personnummer": "sv",
    "be_nn": "nl",
    "ch_ahv": "de",
    "dk_cpr": "da",
    "no_fodselsnummer": "no",
    "pt_nif": "pt",
    "tr_tckimlik": "tr",
    "za_idnr": "en",
    "sg_nric": "en",
    "ar_dni": "es",
    "ar_cuit": "es",
    "cl_rut": "es",
    "us_ssn": "en",
    "us_itin": "en",
    "gb_nino": "en",
    "gb_nhs": "en",
    "fr_nir": "fr",
    "de_idnr": "de",
    "es_dni": "es",
    "es_nie": "es",
    "it_codice_fiscale": "it",
    "nl_bsn": "nl",
    "br_cpf": "pt",
    "br_cnpj": "pt",
    "in_aadhaar": "en",
    "in_pan": "en",
    "jp_my_number": "ja",
    "de_id_card": "de",
}


# The spellings (indices into `_id_spellings`) distinctive enough to go without a label:
# a birth date and check digits, letters in fixed places, or the country's punctuation.
_UNLABELLED = {
    "cn_ric": (0, 1, 2),
    "kr_rrn": (0,),
    "mx_curp": (0, 1, 2),
    "pl_pesel": (0,),
    "se_personnummer": (0, 1),
    "be_nn": (0, 1, 2),
    "ch_ahv": (0, 1, 2),
    "no_fodselsnummer": (0, 1),
    "tr_tckimlik": (0,),
    "za_idnr": (0, 1),
    "sg_nric": (0, 1, 2),
    "ar_cuit": (0,),
    "cl_rut": (0, 1),
    "us_ssn": (0, 1),
    "us_itin": (0, 1),
    "gb_nino": (0, 1),
    "fr_nir": (0, 1),
    "es_dni": (0, 1, 2),
    "es_nie": (0, 1, 2),
    "it_codice_fiscale": (0, 1, 2),
    "br_cpf": (0,),
    "br_cnpj": (0,),
    "in_aadhaar": (0,),
    "in_pan": (0, 1),
}


# More of the ways each label is written, and labels any id may have.
_MORE_LABELS = {
    "cn_ric": ["身份证号码", "公民身份号码", "ID No."],
    "kr_rrn": ["resident registration number", "주민등록 번호"],
    "ca_sin": ["SIN #", "S.I.N.", "Social Insurance No."],
    "au_tfn": ["Tax File No.", "TFN no"],
    "au_medicare": ["Medicare No", "Medicare card number"],
    "se_personnummer": ["pers.nr", "personnummer (ÅÅMMDD-NNNN)"],
    "dk_cpr": ["CPR nr.", "cpr-nummer"],
    "no_fodselsnummer": ["f.nr.", "fødselsnr"],
    "pt_nif": ["NIF/NIPC", "contribuinte n.º", "nº de contribuinte"],
    "ar_dni": ["D.N.I.", "DNI N°", "documento"],
    "cl_rut": ["cédula de identidad", "RUN", "Rol Único Tributario"],
    "jp_my_number": ["個人番号（マイナンバー）"],
    "de_idnr": ["steuerliche Identifikationsnummer", "Steuer-IdNr."],
    "nl_bsn": ["sofinummer", "BSN-nummer"],
    "gb_nhs": ["NHS No:", "NHS#"],
    "de_id_card": ["Ausweis-Nr.", "Personalausweis"],
    "za_idnr": ["ID-nommer", "RSA ID"],
    "sg_nric": ["NRIC/FIN", "IC no."],
    "tr_tckimlik": ["TC No", "Kimlik No"],
}
_ANY_ID_LABELS = ["national ID", "ID number", "personal ID no.", "identity number"]


def _id_case(r: random.Random, kind: str) -> Case:
    maker, labels, keys, _ = _ID_MAKERS[kind]
    labels = labels + _MORE_LABELS.get(kind, []) + (_ANY_ID_LABELS if r.random() < 0.15 else [])
    spellings = _id_spellings(kind, maker(r))
    bare_ok = _UNLABELLED.get(kind, ())
    if bare_ok and r.random() < 0.4:
        value = spellings[r.choice(bare_ok)]
        text = _render(r, value, None, None)
    else:
        value = r.choice(spellings)
        text = _render(r, value, r.choice(labels), _slug(r, keys), _ID_LANG[kind])
    return Case(text, "national_id", kind, value)


# ----------------------------------------------------------------------------- cards

_NETWORKS: dict[str, list[tuple[str, int]]] = {
    "visa": [("4", 16), ("4", 16), ("4", 13), ("4", 19)],
    "mastercard": [("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("23", 16)],
    "amex": [("34", 15), ("37", 15)],
    "discover": [("6011", 16), ("65", 16), ("644", 16), ("649", 16)],
    "jcb": [("3528", 16), ("3589", 16), ("3530", 16), ("3566", 19)],
    "diners": [("36", 14), ("300", 14), ("305", 14), ("38", 16)],
    "unionpay": [("62", 16), ("62", 19), ("621", 17)],
    "maestro": [("6759", 16), ("5018", 16), ("5020", 19), ("6304", 16), ("5038", 12)],
    "mir": [("2200", 16), ("2204", 16)],
    "rupay": [("60", 16), ("6521", 16), ("8100", 16)],
}


def _card(r: random.Random, network: str) -> str:
    prefix, length = r.choice(_NETWORKS[network])
    body = prefix + _n(r, length - len(prefix) - 1)
    return body + _luhn_check(body)


def _card_spelling(r: random.Random, v: str) -> str:
    how = r.randrange(8)
    if len(v) == 15:
        grouped = _chunks(v, (4, 6, 5), " ")
    elif len(v) == 14:
        grouped = _chunks(v, (4, 6, 4), " ")
    else:
        grouped = _fours(v)
    if how == 0:
        return v
    if how == 1:
        return grouped.replace(" ", "-")
    if how == 2:
        return grouped.replace(" ", ".") if len(v) in (16, 19) else grouped
    if how == 3:
        return grouped.replace(" ", "  ")  # as copied from a PDF
    return grouped


_CARD_LABELS = [
    "card",
    "credit card",
    "Kreditkarte",
    "carte bancaire",
    "tarjeta",
    "cartão",
    "CC",
    "visa",
]


def _card_case(r: random.Random, network: str) -> Case:
    v = _card(r, network)
    major = network in ("visa", "mastercard", "amex", "discover", "jcb", "unionpay", "mir") and len(
        v
    ) in (15, 16)
    value = _card_spelling(r, v)
    how = r.randrange(10)
    if how == 0 and len(v) >= 16:
        # wrapped across a line in a quoted e-mail reply or a chat transcript
        g = _fours(v)
        cut = r.choice([10, 15])
        text = r.choice(
            [
                f"> please charge my card {g[:cut].strip()}\n> {g[cut:].strip()} exp 09/28",
                f"[10:32] ana: card is {g[:cut].strip()}\n[10:32] ana: {g[cut:].strip()}",
            ]
        )
        return Case(text, "payment_card", network, g)
    if how == 1:
        text = f"{r.choice(['paid with', 'Karte', 'cc', 'pay'])}{r.choice(['', ':'])}{v} thanks"
        if text.startswith("pay") and not major:
            text = "card:" + v
        return Case(text, "payment_card", network, v)
    label = r.choice(_CARD_LABELS) if (not major or r.random() < 0.5) else None
    key = r.choice(["card_number", "cc_number", "pan", "cardNo"]) if label else None
    return Case(_render(r, value, label, key), "payment_card", network, value)


# ----------------------------------------------------------------------------- IBANs

_IBAN_BBAN = {
    "DE": "8n10n",
    "FR": "5n5n11c2n",
    "ES": "4n4n1n1n10n",
    "IT": "1a5n5n12c",
    "NL": "4a10n",
    "BE": "3n7n2n",
    "AT": "5n11n",
    "CH": "5n12c",
    "PL": "8n16n",
    "PT": "4n4n11n2n",
    "GB": "4a6n8n",
    "IE": "4a6n8n",
    "SE": "3n16n1n",
    "DK": "4n9n1n",
    "NO": "4n6n1n",
    "FI": "3n11n",
    "LU": "3n13c",
    "CZ": "4n6n10n",
    "SK": "4n6n10n",
    "HU": "3n4n1n15n1n",
    "RO": "4a16c",
    "BG": "4a4n2n8c",
    "HR": "7n10n",
    "SI": "5n8n2n",
    "GR": "3n4n16c",
    "CY": "3n5n16c",
    "MT": "4a5n18c",
    "EE": "2n2n11n1n",
    "LV": "4a13c",
    "LT": "5n11n",
    "TR": "5n1n16c",
    "SA": "2n18c",
    "AE": "3n16n",
    "BR": "8n5n10n1a1c",
    "IL": "3n3n13n",
    "UA": "6n19c",
    "MD": "2c18c",
    "GE": "2a16n",
    "KZ": "3n13c",
    "QA": "4a21c",
    "MU": "4a2n2n12n3n3a",
    "LI": "5n12c",
}


def _bban(r: random.Random, spec: str) -> str:
    out, num = [], ""
    for ch in spec:
        if ch.isdigit():
            num += ch
            continue
        alphabet = {"n": DIG, "a": UP, "c": DIG + UP}[ch]
        if ch == "c" and r.random() < 0.7:
            alphabet = DIG  # most alphanumeric fields hold digits in practice
        out.append(_n(r, int(num), alphabet))
        num = ""
    return "".join(out)


def _iban(r: random.Random, country: str) -> str:
    bban = _bban(r, _IBAN_BBAN[country])
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def _iban_case(r: random.Random, country: str) -> Case:
    v = _iban(r, country)
    how = r.randrange(12)
    grouped = _fours(v)
    if how == 0:
        value = v
    elif how == 1:
        value = grouped.lower()
    elif how == 2:
        value = grouped.replace(" ", "-")
    elif how == 3:
        value = grouped.replace(" ", ".")
    elif how == 4:
        value = v.lower()
    else:
        value = grouped
    if how == 5:
        cut = r.choice([9, 14, 19])
        head, tail = grouped[:cut].strip(), grouped[cut:].strip()
        text = r.choice(
            [
                f"> Bitte überweisen an IBAN {head}\n> {tail}\n> Danke",
                f"[11:02] marta: iban {head}\n[11:02] marta: {tail}",
                f"Our account: {head}\n{tail}\nBIC: ABCDEFGH",
            ]
        )
        return Case(text, "iban", f"iban_{country.lower()}", grouped)
    if how == 6:
        return Case(
            f"{r.choice(['IBAN', 'iban:', 'Konto', 'IBAN:'])}{v}",
            "iban",
            f"iban_{country.lower()}",
            v,
        )
    label = r.choice(
        ["IBAN", "account", "Kontonummer (IBAN)", "numéro IBAN", "rekeningnummer", None]
    )
    key = r.choice(["iban", "account_iban", "bank_account"]) if label else None
    return Case(_render(r, value, label, key), "iban", f"iban_{country.lower()}", value)


# ----------------------------------------------------------------------------- e-mails

_TLDS = [
    "md",
    "py",
    "sh",
    "rs",
    "ai",
    "io",
    "co",
    "me",
    "tv",
    "so",
    "pl",
    "de",
    "ch",
    "co.uk",
    "com.br",
    "com.au",
    "ac.jp",
    "gg",
    "ws",
    "zip",
    "mov",
    "cz",
    "dev",
    "app",
    "nl",
    "fr",
]


def _email(r: random.Random) -> str:
    first, last = (
        r.choice(["ana", "jan", "wei", "minjun", "sofia", "lars", "emma", "o.brien", "j"]),
        r.choice(["silva", "kowalski", "li", "kim", "perez", "berg", "peeters", "x"]),
    )
    local = r.choice(
        [
            f"{first}.{last}",
            f"{first}{r.randrange(100)}",
            f"{first}+{r.choice(['news', 'git', 'tax'])}",
            f"{first[0]}{last}",
            f"{first}_{last}",
            first.upper(),
        ]
    )
    domain = r.choice(
        ["acme", "mail", "studio-nine", "kowalski", "lab", "hey", "posteo", "ruiz-co", "b"]
    )
    sub = r.choice(["", "", "", "eu.", "mail."])
    return f"{local}@{sub}{domain}.{r.choice(_TLDS)}"


def _email_case(r: random.Random) -> Case:
    v = _email(r)
    how = r.randrange(12)
    if how == 0:
        text = f"From: Ana Silva <{v}>\nTo: team@acme.md\nSubject: contract"
    elif how == 1:
        text = f"On Tue, 4 Mar 2026, Jan Kowalski <{v}> wrote:\n> see the draft"
    elif how == 2:
        text = f'<a href="mailto:{v}">write to us</a>'
    elif how == 3:
        text = f"email={urllib.parse.quote(v, safe='')}&name=Ana&consent=on"
    elif how == 4:
        text = f"[12:01] ana: just ping me at {v}"
    elif how == 5:
        text = f"Kontakt: {v.upper()}"
    else:
        text = _render(
            r,
            v,
            r.choice(["e-mail", "email", "adres e-mail", "correo", "メール", None]),
            r.choice(["email", "e_mail", "contact"]),
        )
    return Case(text, "email", "email", v)


# ----------------------------------------------------------------------------- phones

_PHONE_REGIONS = [
    "US",
    "GB",
    "DE",
    "FR",
    "ES",
    "IT",
    "NL",
    "BR",
    "IN",
    "JP",
    "CN",
    "KR",
    "MX",
    "CA",
    "AU",
    "PL",
    "SE",
    "BE",
    "CH",
    "DK",
    "NO",
    "PT",
    "TR",
    "ZA",
    "SG",
    "AR",
    "CL",
    "NG",
    "PH",
    "AE",
]


def _phone_number(r: random.Random, region: str) -> tuple[str, str, str]:
    """(E.164, international, national) of a valid mobile or fixed number of ``region``."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat as F

    kind = r.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(
        region
    )
    assert example is not None
    national = str(example.national_number)
    for _ in range(200):
        keep = max(2, len(national) - r.choice([4, 5, 6]))
        candidate = national[:keep] + _n(r, len(national) - keep)
        number = phonenumbers.parse(f"+{example.country_code}{candidate}")
        if phonenumbers.is_valid_number(number):
            break
    else:
        number = example
    return (
        phonenumbers.format_number(number, F.E164),
        phonenumbers.format_number(number, F.INTERNATIONAL),
        phonenumbers.format_number(number, F.NATIONAL),
    )


def _phone_case(r: random.Random, region: str) -> Case:
    e164, intl, national = _phone_number(r, region)
    bare = e164[1:]
    how = r.randrange(12)
    if how == 0:
        text, value = f"chat with us on WhatsApp: https://wa.me/{bare}?text=hi", bare
    elif how == 1:
        text, value = f"phone={urllib.parse.quote_plus(intl)}&name=Ana+Silva&ok=1", intl
    elif how == 2:
        text, value = f"msisdn={bare}&country={region}&optin=true", bare
    elif how == 3:
        text, value = (
            json.dumps({"name": "Ana", r.choice(["phone", "mobile", "msisdn", "whatsapp"]): bare}),
            bare,
        )
    elif how == 4:
        text, value = f'<a href="tel:{e164}">{intl}</a>', e164
    elif how == 5:
        text, value = f"BEGIN:VCARD\nFN:Ana Silva\nTEL;TYPE=cell:{intl}\nEND:VCARD", intl
    elif how == 6:
        label = r.choice(
            [
                "Tel.",
                "phone",
                "mobile",
                "Handy",
                "téléphone",
                "celular",
                "電話",
                "手机",
                "전화번호",
                "telefon",
            ]
        )
        text, value = (
            _render(r, national, label, r.choice(["phone", "telefono", "mobile"])),
            national,
        )
    elif how == 7:
        text, value = (
            f"call me on {intl.replace(' ', '.')}" if region != "US" else f"call me at {intl}",
            intl,
        )
    else:
        value = r.choice([intl, e164, intl.replace(" ", "-")])
        text = _render(
            r,
            value,
            r.choice(["phone", "mobile", "tel", "WhatsApp", None]),
            r.choice(["phone", "tel"]),
        )
    return Case(text, "phone", f"phone_{region.lower()}", value)


# ----------------------------------------------------------------------------- secrets


def _b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n, 62)
        out = B62[rem] + out
    return out.rjust(width, "0")


def _crc_tok(r: random.Random, prefix: str, n: int = 30) -> str:
    body = _n(r, n, B62)
    return prefix + body + _b62(binascii.crc32(body.encode()), 6)


def _b64(r: random.Random, nbytes: int, alt: str = "+/") -> str:
    return base64.b64encode(r.randbytes(nbytes), altchars=alt.encode()).decode()


def _pem_block(r: random.Random, title: str, nbytes: int) -> str:
    body = _b64(r, nbytes)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {title}-----\n" + "\n".join(lines) + f"\n-----END {title}-----"


def _secret_makers() -> dict[str, tuple[Callable[[random.Random], str], list[str]]]:
    """kind -> (maker, names an assignment or a sentence gives it)."""

    def openssh(r: random.Random) -> str:
        body = base64.b64encode(b"openssh-key-v1\x00" + r.randbytes(300)).decode()
        lines = [body[i : i + 70] for i in range(0, len(body), 70)]
        return (
            "-----BEGIN OPENSSH PRIVATE KEY-----\n"
            + "\n".join(lines)
            + "\n-----END OPENSSH PRIVATE KEY-----"
        )

    def gcp_sa(r: random.Random) -> str:
        key = _pem_block(r, "PRIVATE KEY", 600).replace("\n", "\\n")
        proj = r.choice(["acme-prod", "billing-472113", "ml-sandbox"])
        return (
            '{\n  "type": "service_account",\n  "project_id": "'
            + proj
            + '",\n  "private_key_id": "'
            + _n(r, 40, HEXL)
            + '",\n  "private_key": "'
            + key
            + '\\n",\n  "client_email": "deployer@'
            + proj
            + '.iam.gserviceaccount.com",\n  "client_id": "'
            + _n(r, 21)
            + '"\n}'
        )

    def db_url(r: random.Random) -> str:
        scheme = r.choice(
            ["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp", "mssql", "mariadb"]
        )
        user = r.choice(["app", "admin", "svc_billing", "root", "analytics"])
        pw = _n(r, r.randrange(12, 24), B62 + "!*-_")
        host = r.choice(
            ["db.internal", "10.0.3.12", "cluster0.x9k2.mongodb.net", "pg-prod.acme.io"]
        )
        port = r.choice([5432, 3306, 6379, 27017])
        return f"{scheme}://{user}:{urllib.parse.quote(pw, safe='')}@{host}:{port}/main"

    def http_url(r: random.Random) -> str:
        pw = _n(r, r.randrange(10, 20), B62)
        host = r.choice(["git.acme.io", "registry.example.org", "nexus.corp.net"])
        return f"https://{r.choice(['deploy', 'ci', 'jenkins'])}:{pw}@{host}/repo"

    def pgp(r: random.Random) -> str:
        body = _b64(r, 700)
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"
            + "\n".join(lines)
            + "\n="
            + _b64(r, 3)
            + "\n-----END PGP PRIVATE KEY BLOCK-----"
        )

    def slack_hook(r: random.Random) -> str:
        t, b = "T" + _n(r, 10, UP + DIG), r.choice("BA") + _n(r, 10, UP + DIG)
        return r.choice(
            [
                f"https://hooks.slack.com/services/{t}/{b}/{_n(r, 24, B62)}",
                f"https://hooks.slack.com/workflows/{t}/{b}/{_n(r, 18)}/{_n(r, 32, B62)}",
                f"https://hooks.slack.com/triggers/{t}/{_n(r, 13)}/{_n(r, 32, HEXL)}",
            ]
        )

    def discord(r: random.Random) -> str:
        uid = str(r.randrange(10**17, 10**19)).encode()
        head = base64.urlsafe_b64encode(uid).decode().rstrip("=")
        return f"{head}.{_n(r, 6, B62 + '-_')}.{_n(r, 38, B62 + '-_')}"

    def azure_conn(r: random.Random) -> str:
        return (
            f"DefaultEndpointsProtocol=https;AccountName={r.choice(['acmeprod', 'mlstore01'])};"
            f"AccountKey={_b64(r, 64)};EndpointSuffix=core.windows.net"
        )

    return {
        "aws_access_key": (
            lambda r: "AKIA" + _n(r, 16, UP + "234567"),
            ["aws_access_key_id", "AWS key"],
        ),
        "aws_secret_key": (lambda r: _n(r, 40, B62 + "/+"), ["aws_secret_access_key"]),
        "github_token": (
            lambda r: _crc_tok(r, r.choice(["ghp_", "gho_", "ghs_", "ghu_"])),
            ["GITHUB_TOKEN", "github token"],
        ),
        "github_fine_grained": (
            lambda r: "github_pat_" + _n(r, 22, B62) + "_" + _n(r, 59, B62),
            ["GH_PAT", "token"],
        ),
        "gitlab_token": (
            lambda r: "glpat-" + _n(r, 20, B62 + "-_"),
            ["GITLAB_TOKEN", "gitlab pat"],
        ),
        "slack_token": (
            lambda r: f"xox{r.choice('bpa')}-{_n(r, 12)}-{_n(r, 13)}-{_n(r, 24, B62)}",
            ["SLACK_BOT_TOKEN", "slack token"],
        ),
        "slack_webhook": (slack_hook, ["SLACK_WEBHOOK_URL", "webhook"]),
        "stripe_key": (
            lambda r: r.choice(["sk_live_", "rk_live_"]) + _n(r, r.choice([24, 99]), B62),
            ["STRIPE_SECRET_KEY", "stripe key"],
        ),
        "openai_key": (
            lambda r: "sk-proj-" + _n(r, 74, B62 + "-_") + "T3BlbkFJ" + _n(r, 74, B62 + "-_"),
            ["OPENAI_API_KEY", "openai key"],
        ),
        "anthropic_key": (
            lambda r: "sk-ant-api03-" + _n(r, 93, B62 + "-_") + "AA",
            ["ANTHROPIC_API_KEY", "claude key"],
        ),
        "gcp_api_key": (lambda r: "AIza" + _n(r, 35, B62 + "-_"), ["GOOGLE_API_KEY", "maps key"]),
        "azure_storage_key": (lambda r: _b64(r, 64), ["AZURE_STORAGE_KEY", "storage account key"]),
        "azure_connection_string": (
            azure_conn,
            ["AZURE_STORAGE_CONNECTION_STRING", "connection string"],
        ),
        "entra_client_secret": (
            lambda r: _n(r, 3, B62) + r.choice(DIG) + "Q~" + _n(r, 34, B62 + "_~.-"),
            ["AZURE_CLIENT_SECRET", "client secret"],
        ),
        "huggingface_token": (
            lambda r: "hf_" + _n(r, 34, UP + LOW),
            ["HF_TOKEN", "hugging face token"],
        ),
        "npm_token": (
            lambda r: _crc_tok(r, "npm_"),
            ["NPM_TOKEN", "//registry.npmjs.org/:_authToken"],
        ),
        "pypi_token": (
            lambda r: "pypi-AgEIcHlwaS5vcmc" + _n(r, r.randrange(70, 160), B62 + "-_"),
            ["PYPI_TOKEN", "password"],
        ),
        "twilio_key": (
            lambda r: r.choice(["SK", "AC"]) + _n(r, 32, HEXL),
            ["TWILIO_API_KEY", "twilio sid"],
        ),
        "twilio_auth_token": (
            lambda r: _n(r, 32, HEXL),
            ["TWILIO_AUTH_TOKEN", "twilio auth token"],
        ),
        "sendgrid_key": (
            lambda r: "SG." + _n(r, 22, B62 + "-_") + "." + _n(r, 43, B62 + "-_"),
            ["SENDGRID_API_KEY", "sendgrid key"],
        ),
        "mailgun_key": (
            lambda r: r.choice(
                ["key-" + _n(r, 32, HEXL), f"{_n(r, 32, HEXL)}-{_n(r, 8, HEXL)}-{_n(r, 8, HEXL)}"]
            ),
            ["MAILGUN_API_KEY", "mailgun key"],
        ),
        "datadog_api_key": (lambda r: _n(r, 32, HEXL), ["DD_API_KEY", "datadog api key"]),
        "datadog_app_key": (lambda r: _n(r, 40, HEXL), ["DD_APP_KEY", "datadog application key"]),
        "shopify_token": (
            lambda r: r.choice(["shpat_", "shpca_", "shppa_", "shpss_"]) + _n(r, 32, HEXL),
            ["SHOPIFY_ACCESS_TOKEN", "shopify token"],
        ),
        "discord_bot_token": (discord, ["DISCORD_TOKEN", "discord bot token"]),
        "telegram_bot_token": (
            lambda r: f"{r.randrange(10**8, 10**10)}:AA{_n(r, 33, B62 + '-_')}",
            ["TELEGRAM_BOT_TOKEN", "bot token"],
        ),
        "gcp_service_account": (gcp_sa, ["credentials.json"]),
        "db_url_password": (db_url, ["DATABASE_URL", "dsn"]),
        "http_url_password": (http_url, ["REPO_URL", "url"]),
        "openssh_private_key": (openssh, ["id_ed25519"]),
        "pgp_private_key": (pgp, ["private.asc"]),
        "pem_private_key": (
            lambda r: _pem_block(
                r, r.choice(["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"]), 600
            ),
            ["key.pem"],
        ),
        "jwt": (
            lambda r: (
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                + base64.urlsafe_b64encode(
                    json.dumps({"sub": _n(r, 6), "exp": 1893456000}).encode()
                )
                .decode()
                .rstrip("=")
                + "."
                + _n(r, 43, B62 + "-_")
            ),
            ["Authorization", "token"],
        ),
        "password": (
            lambda r: _n(r, r.randrange(10, 18), B62) + r.choice("!#%&*") + _n(r, 2),
            ["password", "DB_PASSWORD", "passwd"],
        ),
    }


# Formats without a prefix of their own: they count only under their name.
_NAMED_ONLY = {
    "aws_secret_key",
    "azure_storage_key",
    "twilio_auth_token",
    "datadog_api_key",
    "datadog_app_key",
    "password",
}
_BLOCKS = {"gcp_service_account", "openssh_private_key", "pgp_private_key", "pem_private_key"}


def _secret_case(
    r: random.Random, kind: str, maker: Callable[[random.Random], str], names: list[str]
) -> Case:
    v = maker(r)
    name = r.choice(names)
    env = name.upper().replace(" ", "_").replace(".", "_") if " " in name else name
    if kind in _BLOCKS:
        text = r.choice(
            [
                f"here is the key file, don't share:\n{v}\n",
                f"```\n{v}\n```\ncan you tell me why ssh refuses it?",
                f"$ cat {name}\n{v}",
                f"> > {v.replace(chr(10), chr(10) + '> > ')}",
            ]
        )
        return Case(text, "secret", kind, v)
    how = r.randrange(10)
    if kind in _NAMED_ONLY:
        how = r.choice([0, 1, 2, 3, 5, 7])
    if how == 0:
        text = f"{env}={v}\nLOG_LEVEL=info\n"
    elif how == 1:
        text = f'export {env}="{v}"'
    elif how == 2:
        text = json.dumps({"service": "billing", env.lower(): v}, indent=2)
    elif how == 3:
        text = f"env:\n  - name: {env}\n    value: '{v}'\n"
    elif how == 4:
        text = f'client = Client(api_key="{v}", timeout=30)'
    elif how == 5:
        text = f"the {name} is {v} -- rotate it after the demo"
    elif how == 6:
        text = f"curl -H 'Authorization: Bearer {v}' https://api.example.org/v1/me"
    elif how == 7:
        text = f"[14:03] dev: new {name}: {v}\n[14:04] ops: thx"
    elif how == 8:
        text = f"2026-05-01 12:00:01 ERROR auth failed for token={v} host=web-3"
    else:
        text = f"{v}"
    return Case(text, "secret", kind, v)


# ----------------------------------------------------------------------------- positives


def positives(seed: int = 14, per_kind: int = 60) -> Iterator[Case]:
    """Texts that each hold one sensitive value, ``per_kind`` per kind.

    Args:
        seed: Seed of the generator.
        per_kind: Texts per kind (e-mail addresses: three times as many, one kind).

    Yields:
        Cases whose ``detector`` must fire.
    """
    r = random.Random(seed)
    for kind in _ID_MAKERS:
        for _ in range(per_kind):
            yield _id_case(r, kind)
    for network in _NETWORKS:
        for _ in range(per_kind):
            yield _card_case(r, network)
    for country in _IBAN_BBAN:
        for _ in range(max(20, per_kind // 2)):
            yield _iban_case(r, country)
    for _ in range(per_kind * 3):
        yield _email_case(r)
    for region in _PHONE_REGIONS:
        for _ in range(max(20, per_kind // 2)):
            yield _phone_case(r, region)
    for kind, (maker, names) in _secret_makers().items():
        for _ in range(per_kind):
            yield _secret_case(r, kind, maker, names)


# ----------------------------------------------------------------------------- look-alikes


def _bad_id(r: random.Random) -> str:
    """An id next to its label with one check digit wrong."""
    kind = r.choice(
        [
            "pl_pesel",
            "tr_tckimlik",
            "cn_ric",
            "ch_ahv",
            "be_nn",
            "no_fodselsnummer",
            "za_idnr",
            "br_cpf",
            "in_aadhaar",
            "ca_sin",
            "fr_nir",
            "ar_cuit",
        ]
    )
    maker, labels, keys, _ = _ID_MAKERS[kind]
    v = maker(r)
    last = v[-1]
    wrong = str((int(last) + r.randrange(1, 10)) % 10) if last.isdigit() else "3"
    bad = v[:-1] + wrong
    return _render(r, _id_spellings(kind, bad)[0], r.choice(labels), r.choice(keys), _ID_LANG[kind])


def _ean13(r: random.Random, prefix: str = "") -> str:
    body = prefix + _n(r, 12 - len(prefix))
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - s % 10) % 10)


def _benign_makers(r: random.Random) -> dict[str, Callable[[], str]]:
    def order() -> str:
        return r.choice(
            [
                f"Order #{_n(r, 9)} has shipped",
                f"Bestellnummer {_n(r, 11)} ist unterwegs",
                f"your order no. {_n(r, 12)} was delivered",
                f"pedido {_n(r, 10)} confirmado",
                f"Invoice INV-{r.randrange(2020, 2027)}-{_n(r, 6)} attached",
                f"Tracking: 1Z{_n(r, 16, UP + DIG)}",
                f"ticket {_n(r, 8)} reopened",
                f"Ref. {_n(r, 13)}",
                f"Auftrag {_n(r, 10)} vom 03.02.2026",
                f"Shipment {_n(r, 12)} left the depot",
                f"zamówienie nr {_n(r, 11)}",
            ]
        )

    def total() -> str:
        a = r.randrange(1000, 10**7)
        return r.choice(
            [
                f"Total: {a:,}.{_n(r, 2)} EUR",
                f"Gesamtbetrag {a:,} €".replace(",", "."),
                f"amount due ${a:,}.00",
                f"Summe: {_dots_thousands(str(a))},{_n(r, 2)} EUR",
                f"revenue of {r.randrange(10**9, 10**11)} USD",
                f"balance 1 {_n(r, 3)} {_n(r, 3)},{_n(r, 2)} zł",
            ]
        )

    def timestamp() -> str:
        t = r.randrange(1_500_000_000, 1_900_000_000)
        return r.choice(
            [
                f"created_at={t}",
                f'"ts": {t}{_n(r, 3)}',
                f"2026-03-1{r.randrange(10)}T08:1{r.randrange(10)}:00.{_n(r, 6)}Z request done",
                f"epoch_ms {t}{_n(r, 3)}",
                f"backup-{t}.tar.gz",
                f"2026{r.randrange(1, 13):02d}{r.randrange(1, 29):02d}{_n(r, 6)} job finished",
                f"log_20260304_{_n(r, 6)}.txt",
                f"Date: {r.randrange(1, 28):02d}.{r.randrange(1, 13):02d}.26 {r.randrange(24)}:15",
            ]
        )

    def version() -> str:
        return r.choice(
            [
                f"upgraded to v{r.randrange(1, 20)}.{r.randrange(40)}.{r.randrange(200)}",
                f"build 2026{r.randrange(1, 13):02d}{r.randrange(1, 29):02d}.{r.randrange(1, 9)}",
                f"pip install django=={r.randrange(3, 6)}.{r.randrange(3)}.{r.randrange(12)}",
                f"lodash@4.17.{r.randrange(22)}",
                f"Chrome/{r.randrange(100, 140)}.0.{_n(r, 4)}.{_n(r, 3)}",
                f"kernel 6.{r.randrange(12)}.0-{_n(r, 2)}-generic",
                f"@types/node@{r.randrange(18, 23)}.{r.randrange(20)}.{r.randrange(10)}",
            ]
        )

    def uuid_() -> str:
        return r.choice(
            [
                f"request_id={uuid.UUID(int=r.getrandbits(128), version=4)}",
                f'"id": "{uuid.UUID(int=r.getrandbits(128), version=4)}"',
                f"/subscriptions/{uuid.UUID(int=r.getrandbits(128))}/resourceGroups/rg-prod",
            ]
        )

    def git_sha() -> str:
        sha = _n(r, 40, HEXL)
        return r.choice(
            [
                f"commit {sha}\nAuthor: Ana Silva\nDate: Mon Mar 3 10:02:11 2026",
                f"fixed in {sha[:7]}",
                f"sha256:{_n(r, 64, HEXL)}",
                f"trace_id={_n(r, 32, HEXL)} span_id={_n(r, 16, HEXL)}",
                f"md5 {_n(r, 32, HEXL)}  file.iso",
                f'ETag: "{_n(r, 32, HEXL)}"',
                f"checksum: {_n(r, 40, HEXL)}",
            ]
        )

    def barcode() -> str:
        isbn = _ean13(r, "978")
        return r.choice(
            [
                f"ISBN {isbn[:3]}-{isbn[3]}-{isbn[4:7]}-{isbn[7:12]}-{isbn[12]}",
                f"EAN {_ean13(r, r.choice(['400', '590', '500', '871']))}",
                f"barcode: {_ean13(r)}",
                f"GTIN {_ean13(r, '0')}",
                f"UPC {_ean13(r, '0')[1:]}",
                f"ISBN {isbn}",
            ]
        )

    def measurement() -> str:
        return r.choice(
            [
                f"{r.randrange(10**8, 10**12)} bytes transferred",
                f"distance {r.randrange(10**6, 10**9):,} km",
                f"{r.randrange(10**7, 10**10)} rows scanned in {r.randrange(1, 900)} ms",
                f"population: {r.randrange(10**6, 10**9)}",
                f"{r.randrange(10**9, 10**11)} tokens processed",
                f"weight {r.randrange(100, 999)} 000 kg",
            ]
        )

    def bad_phone() -> str:
        return r.choice(
            [
                f"call +1 {_n(r, 3)} {_n(r, 2)}",
                f"tel. 0{_n(r, 3)}",
                f"+00 {_n(r, 9)}",
                f"ext. {_n(r, 4)}",
                f"phone: +999 {_n(r, 8)}",
                f"+44 {_n(r, 3)}",
                f"mobile 555-{_n(r, 2)}",
            ]
        )

    def lottery() -> str:
        nums = sorted(r.sample(range(1, 50), 6))
        return r.choice(
            [
                "Lotto draw: " + " ".join(f"{n:02d}" for n in nums),
                "winning numbers " + "-".join(map(str, nums)),
                "EuroMillions "
                + " ".join(f"{n:02d}" for n in nums[:5])
                + f" + {r.randrange(1, 12):02d} {r.randrange(1, 12):02d}",
            ]
        )

    def coords() -> str:
        return r.choice(
            [
                f"{r.uniform(-90, 90):.6f}, {r.uniform(-180, 180):.6f}",
                f"lat={r.uniform(-90, 90):.7f}&lon={r.uniform(-180, 180):.7f}",
                f"POINT({r.uniform(-180, 180):.8f} {r.uniform(-90, 90):.8f})",
            ]
        )

    def placeholder_key() -> str:
        return r.choice(
            [
                "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "HF_TOKEN=hf_" + "x" * 34,
                "OPENAI_API_KEY=sk-...",
                "api_key: <redacted>",
                "token: your-api-key-here",
                "GITHUB_TOKEN=ghp_" + "x" * 36,
                "export STRIPE_KEY=sk_live_XXXXXXXXXXXXXXXXXXXXXXXX",
                'password = "********"',
                "SLACK_BOT_TOKEN=xoxb-your-token",
                "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
                "DATABASE_URL=postgres://user:password@localhost:5432/app",
                "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app",
                "AZURE_CLIENT_SECRET=<your-client-secret>",
                "NPM_TOKEN=npm_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
                "api_key=YOUR_API_KEY",
                "TELEGRAM_BOT_TOKEN=123456789:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
                'secret: "{{ .Values.secret }}"',
                "SENDGRID_API_KEY=SG.xxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "DD_API_KEY=<DATADOG_API_KEY>",
                "password: changeme",
                "token=REPLACE_ME",
                "sk-ant-api03-...",
                "Authorization: Bearer <token>",
                "ANTHROPIC_API_KEY=sk-ant-xxxxxxxx",
                "PYPI_TOKEN=pypi-AgEI...",
            ]
        )

    def arn() -> str:
        acct = _n(r, 12)
        return r.choice(
            [
                f"arn:aws:iam::{acct}:role/deploy-{r.choice(['prod', 'ci'])}",
                f"arn:aws:s3:::acme-{_n(r, 4)}-logs",
                f"arn:aws:secretsmanager:eu-west-1:{acct}:secret:prod/db-AbCdEf",
                f"arn:aws:lambda:us-east-1:{acct}:function:resize",
                f"projects/acme-{_n(r, 6)}/secrets/api-key/versions/{r.randrange(1, 9)}",
                f"//container.googleapis.com/projects/p-{_n(r, 6)}/clusters/main",
                f'aws_account_id: "{acct}"',
            ]
        )

    def resource_name() -> str:
        return r.choice(
            [
                f"my-bucket-{_n(r, 8, HEXL)}",
                f"vm-prod-eu-{_n(r, 3)}",
                f"sg-{_n(r, 17, HEXL)}",
                f"i-{_n(r, 17, HEXL)}",
                f"vpc-{_n(r, 8, HEXL)}",
                f"channel C{_n(r, 10, UP + DIG)}",
                f"kv-acme-secrets-{_n(r, 3)}",
                f"key_id: {_n(r, 8, HEXL)}-{_n(r, 4, HEXL)}",
                f"docker pull acme/api:{_n(r, 12, HEXL)}",
            ]
        )

    def b64_blob() -> str:
        return r.choice(
            [
                f"data:image/png;base64,{_b64(r, 120)}",
                f'<img src="data:image/gif;base64,{_b64(r, 60)}">',
                f"Content-Transfer-Encoding: base64\n\n{_b64(r, 150)}",
                f'integrity="sha384-{_b64(r, 48)}"',
                f'"nonce": "{_b64(r, 16)}"',
            ]
        )

    def hex_colour() -> str:
        return r.choice(
            [
                f"color: #{_n(r, 6, HEXL)};",
                f"background:#{_n(r, 3, HEXL)}",
                f'fill="#{_n(r, 8, HEXL)}"',
                f"rgb({r.randrange(256)}, {r.randrange(256)}, {r.randrange(256)})",
            ]
        )

    def ip() -> str:
        return r.choice(
            [
                f"{r.randrange(1, 255)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}",
                f"listen 10.{r.randrange(256)}.{r.randrange(256)}.7:{r.randrange(1024, 65535)}",
                f"2001:db8:{_n(r, 4, HEXL)}::{_n(r, 4, HEXL)}",
                f"mac {':'.join(_n(r, 2, HEXL) for _ in range(6))}",
            ]
        )

    def emailish() -> str:
        return r.choice(
            [
                f"@app.route('/v{r.randrange(3)}/users')",
                f"npm i react@{r.randrange(16, 20)}.{r.randrange(3)}.0",
                "see setup.py and main.rs",
                f"git clone git@github.com:acme/repo-{_n(r, 3)}.git",
                "follow @acme_support for updates",
                "user@localhost",
                f"image@sha256:{_n(r, 64, HEXL)}",
            ]
        )

    return {
        "order_number": order,
        "invoice_total": total,
        "timestamp": timestamp,
        "version": version,
        "uuid": uuid_,
        "git_sha": git_sha,
        "barcode": barcode,
        "measurement": measurement,
        "invalid_phone": bad_phone,
        "lottery": lottery,
        "coordinates": coords,
        "placeholder_key": placeholder_key,
        "arn": arn,
        "resource_name": resource_name,
        "base64_blob": b64_blob,
        "hex_colour": hex_colour,
        "ip_address": ip,
        "email_lookalike": emailish,
        "bad_check_digit": lambda: _bad_id(r),
    }


def benign(seed: int = 41, per_category: int = 150) -> Iterator[Case]:
    """Look-alikes that no detector may fire on, ``per_category`` per category.

    Args:
        seed: Seed of the generator.
        per_category: Texts per category.

    Yields:
        Cases whose ``detector`` is None.
    """
    r = random.Random(seed)
    for category, make in _benign_makers(r).items():
        for _ in range(per_category):
            text = make()
            yield Case(text, None, category, text)
