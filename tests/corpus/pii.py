"""A seeded generator of labelled texts for the sensitivity detectors.

`positives()` yields texts that each hold exactly one sensitive value of a known
detector and kind; every value is valid by its own rules (Luhn, mod-97, check
digits and letters computed with the published algorithms or python-stdnum's
helpers, phone numbers that `phonenumbers` accepts) and is written in one of the
formats people use, inside sentences in several languages and in structured text
(JSON, YAML, env files, CSV, logs, e-mail signatures).

`benign()` yields look-alikes that must not fire: order and invoice numbers,
tracking numbers, digit runs that fail Luhn, UUIDs, git SHAs, versions, IP
addresses, dates and timestamps, ISBNs, prices, postcodes, colours, base64 blobs,
phone-shaped numbers that `phonenumbers` calls invalid, placeholders for secrets.

Everything is generated from a `random.Random(seed)`, so a run is reproducible.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from stdnum import iban as std_iban
from stdnum import verhoeff
from stdnum.fr import nir as std_nir
from stdnum.iso7064 import mod_11_10
from stdnum.it import codicefiscale
from stdnum.jp import in_ as jp_in

DIGITS = string.digits
UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled text.

    Attributes:
        text: The text to scan.
        detector: The detector that must fire, or None for a benign text.
        kind: The kind of value (``"visa"``, ``"us_ssn"``, ``"uuid"``...).
        value: The embedded value, for debugging failed samples.
    """

    text: str
    detector: str | None
    kind: str
    value: str


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(DIGITS, k=n))


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


# ------------------------------------------------------------------------------ e-mail

_FIRST = [
    "john",
    "maria",
    "li",
    "aisha",
    "jean-luc",
    "søren",
    "olga",
    "kenji",
    "fatima",
    "joão",
    "anna",
    "mohammed",
    "chloé",
    "pieter",
    "giulia",
    "raj",
    "yuki",
    "hans",
    "lucía",
    "wei",
]
_LAST = [
    "smith",
    "garcia",
    "wang",
    "khan",
    "dupont",
    "müller",
    "rossi",
    "tanaka",
    "silva",
    "novak",
    "jansen",
    "kowalski",
    "o'neil",
    "nguyen",
    "patel",
    "schmidt",
    "martin",
]
_DOMAINS = [
    "gmail.com",
    "example.com",
    "mail.example.co.uk",
    "outlook.fr",
    "web.de",
    "uni-heidelberg.de",
    "company.com.br",
    "dept.agency.gov",
    "corp.example.io",
    "startup.ai",
    "bücher.de",
    "xn--bcher-kva.de",
    "example.photography",
    "yahoo.co.jp",
    "mail.ru",
    "posteo.net",
    "example.technology",
    "sub.domain.example.org",
    "例え.jp",
    "proton.me",
    "student.univ-lyon1.fr",
    "kpn.nl",
    "libero.it",
]


def _email(rng: random.Random) -> str:
    first = rng.choice(_FIRST).replace("'", "")
    last = rng.choice(_LAST).replace("'", "")
    if rng.random() < 0.5:
        first = first.encode("ascii", "ignore").decode() or "x"
        last = last.encode("ascii", "ignore").decode() or "y"
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first}{last}",
            f"{first[0]}{last}",
            f"{first}_{last}",
            f"{first}.{last}{rng.randint(1, 99)}",
            f"{first}+{rng.choice(['news', 'work', 'x1'])}",
            f"{last}-{first}",
            f"{first}{rng.randint(1970, 2005)}",
        ]
    )
    return f"{local}@{rng.choice(_DOMAINS)}"


# ------------------------------------------------------------------------------ phones

# Regions whose numbers appear in national format too; the others only in
# international format (a bare Polish "12 316 49 99" is not recognisable as a phone).
_NATIONAL_PHONE_REGIONS = [
    "US",
    "GB",
    "FR",
    "DE",
    "ES",
    "IT",
    "NL",
    "BR",
    "IN",
    "JP",
    "CA",
    "AU",
    "CN",
]
_PHONE_REGIONS = [
    *_NATIONAL_PHONE_REGIONS,
    "MX",
    "CH",
    "SE",
    "PL",
    "ZA",
    "BE",
    "AT",
    "IE",
    "PT",
    "KR",
    "SG",
    "AR",
    "NG",
    "EG",
    "RU",
    "TR",
    "IL",
]


def _valid_number(rng: random.Random, region: str) -> phonenumbers.PhoneNumber:
    ntype = rng.choice([PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE])
    example = phonenumbers.example_number_for_type(region, ntype)
    assert example is not None
    nsn = phonenumbers.national_significant_number(example)
    for _ in range(500):
        keep = rng.randint(1, 3)
        candidate = nsn[:keep] + _digits(rng, len(nsn) - keep)
        number = phonenumbers.parse("+" + str(example.country_code) + candidate)
        if phonenumbers.is_valid_number(number):
            return number
    return example


def _phone(rng: random.Random) -> tuple[str, str]:
    region = rng.choice(_PHONE_REGIONS)
    number = _valid_number(rng, region)
    intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    cc = str(number.country_code)
    choices = [intl, intl, e164, "00" + intl[1:], intl.replace(" ", "-"), intl.replace("-", " ")]
    if region in _NATIONAL_PHONE_REGIONS:
        choices += [national] * 4
    if region in ("US", "CA"):
        digits = phonenumbers.national_significant_number(number)
        a, b, c = digits[:3], digits[3:6], digits[6:]
        choices += [
            f"{a}-{b}-{c}",
            f"{a}.{b}.{c}",
            f"1-{a}-{b}-{c}",
            f"+1 ({a}) {b}-{c}",
            f"+1.{a}.{b}.{c}",
            f"({a}) {b}-{c}",
        ]
    if region == "GB":
        choices.append(intl.replace(f"+{cc} ", f"+{cc} (0)"))
    if region == "FR":
        choices.append(national.replace(" ", "."))
    if region == "NL":
        choices.append(national.replace(" ", "-", 1))
    if region == "ES":
        digits = phonenumbers.national_significant_number(number)
        choices.append(f"{digits[:3]} {digits[3:6]} {digits[6:]}")
    if region == "IN":
        choices.append(national.lstrip("0"))
    if region == "DE":
        choices.append(national.replace(" ", "/", 1))
    return rng.choice(choices), region.lower()


# ------------------------------------------------------------------------------ cards

# network -> (prefixes, lengths)
_CARD_NETWORKS: dict[str, tuple[list[str], list[int]]] = {
    "visa": (["4"], [16, 16, 16, 13, 19]),
    "mastercard": (["51", "52", "53", "54", "55", "2221", "2300", "2500", "2720"], [16]),
    "amex": (["34", "37"], [15]),
    "discover": (["6011", "644", "649", "65", "622126", "622925"], [16, 19]),
    "diners": (["300", "305", "36", "38", "39"], [14, 16]),
    "jcb": (["3528", "3550", "3589"], [16, 19]),
    "unionpay": (["62", "620", "621", "623", "625"], [16, 17, 18, 19]),
    "maestro": (
        ["5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763"],
        [12, 13, 16, 18, 19],
    ),
    "mir": (["2200", "2201", "2202", "2203", "2204"], [16]),
}


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str(-total % 10)


def _group(digits: str, sizes: list[int], sep: str) -> str:
    out, pos = [], 0
    for size in sizes:
        if pos >= len(digits):
            break
        out.append(digits[pos : pos + size])
        pos += size
    if pos < len(digits):
        out.append(digits[pos:])
    return sep.join(out)


def _card(rng: random.Random) -> tuple[str, str]:
    network = rng.choice(list(_CARD_NETWORKS))
    prefixes, lengths = _CARD_NETWORKS[network]
    prefix, length = rng.choice(prefixes), rng.choice(lengths)
    number = _luhn_complete(prefix + _digits(rng, length - len(prefix) - 1))
    sep = rng.choice([" ", " ", "-", ""])
    if network == "amex" or (network == "diners" and length == 14):
        sizes = [4, 6, 5] if length == 15 else [4, 6, 4]
    else:
        sizes = [4] * 5
    return _group(number, sizes, sep), network


# ------------------------------------------------------------------------------ IBAN

_IBAN_COUNTRIES = [
    "DE",
    "GB",
    "FR",
    "ES",
    "IT",
    "NL",
    "BE",
    "AT",
    "CH",
    "PL",
    "PT",
    "IE",
    "SE",
    "DK",
    "FI",
    "NO",
    "LU",
    "CZ",
    "GR",
    "RO",
    "HU",
    "TR",
    "SA",
    "AE",
    "BR",
    "HR",
    "SI",
    "SK",
    "LT",
    "LV",
    "EE",
    "MT",
    "CY",
    "BG",
    "IS",
    "LI",
    "MC",
]


def _load_iban_structure() -> dict[str, str]:
    from stdnum import numdb

    db = numdb.get("iban")
    out = {}
    for cc in _IBAN_COUNTRIES:
        info = db.info(cc + "00")
        out[cc] = info[0][1]["bban"]
    return out


_IBAN_STRUCTURE = _load_iban_structure()


def _iban(rng: random.Random, structure: dict[str, str]) -> tuple[str, str]:
    import re

    for _ in range(200):
        cc = rng.choice(_IBAN_COUNTRIES)
        bban = ""
        for count, kind in re.findall(r"(\d+)!([nac])", structure[cc]):
            alphabet = {"n": DIGITS, "a": UPPER, "c": UPPER + DIGITS}[kind]
            bban += _chars(rng, alphabet, int(count))
        number = cc + std_iban.calc_check_digits(cc + "00" + bban) + bban
        if std_iban.is_valid(number):
            text = number if rng.random() < 0.35 else std_iban.format(number)
            return text, "iban"
    raise AssertionError("no valid IBAN generated")


# ------------------------------------------------------------------------------ national ids


def _ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def _itin(rng: random.Random) -> str:
    group = rng.choice([g for g in range(70, 100) if g not in (89, 93)])
    return f"9{_digits(rng, 2)}{group}{_digits(rng, 4)}"


_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"


def _nino(rng: random.Random) -> str:
    while True:
        prefix = rng.choice(_NINO_FIRST) + rng.choice(_NINO_SECOND)
        if prefix not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            return prefix + _digits(rng, 6) + rng.choice("ABCD")


def _nhs(rng: random.Random) -> str:
    while True:
        body = _digits(rng, 9)
        check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return body + str(check)


def _nir(rng: random.Random) -> str:
    dept = rng.choice([f"{rng.randint(1, 95):02d}", "2A", "2B", "75", "69", "13"])
    body = (
        rng.choice("12")
        + f"{rng.randint(0, 99):02d}"
        + f"{rng.randint(1, 12):02d}"
        + dept
        + f"{rng.randint(1, 990):03d}"
        + f"{rng.randint(1, 999):03d}"
    )
    return body + std_nir.calc_check_digits(body)


def _idnr(rng: random.Random) -> str:
    while True:
        digits = rng.sample(range(10), 9)
        if digits[0] == 0:
            continue
        repeated = rng.choice(digits)
        body = [*digits, repeated]
        rng.shuffle(body)
        if body[0] == 0:
            continue
        text = "".join(map(str, body))
        return text + mod_11_10.calc_check_digit(text)


def _dni(rng: random.Random) -> str:
    number = _digits(rng, 8)
    return number + "TRWAGMYFPDXBNJZSQVHLCKE"[int(number) % 23]


def _nie(rng: random.Random) -> str:
    first = rng.choice("XYZ")
    number = _digits(rng, 7)
    return first + number + "TRWAGMYFPDXBNJZSQVHLCKE"[int(str("XYZ".index(first)) + number) % 23]


def _codice_fiscale(rng: random.Random) -> str:
    consonants = "BCDFGHJKLMNPQRSTVWXYZ"
    body = (
        _chars(rng, consonants, 3)
        + _chars(rng, consonants, 3)
        + f"{rng.randint(0, 99):02d}"
        + rng.choice("ABCDEHLMPRST")
        + f"{rng.randint(1, 28) + rng.choice([0, 40]):02d}"
        + rng.choice(UPPER)
        + _digits(rng, 3)
    )
    return body + codicefiscale.calc_check_digit(body)


def _bsn(rng: random.Random) -> str:
    while True:
        body = rng.choice("123456789") + _digits(rng, 7)
        check = sum(int(d) * w for d, w in zip(body, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return body + str(check)


def _cpf(rng: random.Random) -> str:
    body = [int(d) for d in _digits(rng, 9)]
    for n in (10, 11):
        total = sum(d * w for d, w in zip(body, range(n, 1, -1), strict=False))
        body.append((total * 10) % 11 % 10)
    return "".join(map(str, body))


def _cnpj(rng: random.Random) -> str:
    body = [int(d) for d in _digits(rng, 8)] + [0, 0, 0, rng.randint(1, 9)]
    for weights in ([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]):
        d = (11 - sum(w * v for w, v in zip(weights, body, strict=True))) % 11 % 10
        body.append(d)
    return "".join(map(str, body))


def _aadhaar(rng: random.Random) -> str:
    while True:
        body = rng.choice("23456789") + _digits(rng, 10)
        number = body + verhoeff.calc_check_digit(body)
        if number != number[::-1]:
            return number


def _pan(rng: random.Random) -> str:
    return (
        _chars(rng, UPPER, 3)
        + rng.choice("PCHFATBLJG")
        + rng.choice(UPPER)
        + f"{rng.randint(1, 9999):04d}"
        + rng.choice(UPPER)
    )


def _id_card(rng: random.Random) -> str:
    """A German identity card (Personalausweis) number with its ICAO 9303 check digit."""
    alphabet = "CFGHJKLMNPRTVWXYZ0123456789"
    body = rng.choice("CFGHJKLMNPRTVWXYZ") + _chars(rng, alphabet, 8)
    total = sum(int(c, 36) * (7, 3, 1)[i % 3] for i, c in enumerate(body))
    return body + str(total % 10)


def _my_number(rng: random.Random) -> str:
    body = _digits(rng, 11)
    return body + jp_in.calc_check_digit(body)


# (value generator, formatters, labels). A formatter turns the compact value into the
# written form; labels are what people put before it.
_Formats = list[Callable[[str], str]]
_NATIONAL: dict[str, tuple[Callable[[random.Random], str], _Formats, list[str]]] = {
    "us_ssn": (
        _ssn,
        [
            lambda v: f"{v[:3]}-{v[3:5]}-{v[5:]}",
            lambda v: f"{v[:3]} {v[3:5]} {v[5:]}",
            lambda v: f"{v[:3]}-{v[3:5]}-{v[5:]}",
            lambda v: v,
        ],
        ["SSN", "Social Security Number", "social security no.", "SSN#", "my SSN is"],
    ),
    "us_itin": (_itin, [lambda v: f"{v[:3]}-{v[3:5]}-{v[5:]}"], ["ITIN", "taxpayer ID (ITIN)"]),
    "gb_nino": (
        _nino,
        [lambda v: v, lambda v: f"{v[:2]} {v[2:4]} {v[4:6]} {v[6:8]} {v[8]}"],
        ["National Insurance number", "NI number", "NINO", "NI No."],
    ),
    "gb_nhs": (
        _nhs,
        [lambda v: f"{v[:3]} {v[3:6]} {v[6:]}", lambda v: v],
        ["NHS number", "NHS No.", "NHS no:", "my NHS number is"],
    ),
    "fr_nir": (
        _nir,
        [
            lambda v: v,
            lambda v: " ".join((v[0], v[1:3], v[3:5], v[5:7], v[7:10], v[10:13], v[13:])),
        ],
        ["numéro de sécurité sociale", "NIR", "n° INSEE", "numéro de sécu", "Sécu"],
    ),
    "de_idnr": (
        _idnr,
        [lambda v: v, lambda v: f"{v[:2]} {v[2:5]} {v[5:8]} {v[8:]}"],
        ["Steuer-IdNr.", "Steueridentifikationsnummer", "IdNr", "Steuer-ID"],
    ),
    "es_dni": (
        _dni,
        [lambda v: v, lambda v: f"{v[:8]}-{v[8]}", lambda v: f"{v[:2]}.{v[2:5]}.{v[5:8]}-{v[8]}"],
        ["DNI", "NIF", "mi DNI es"],
    ),
    "es_nie": (_nie, [lambda v: v, lambda v: f"{v[0]}-{v[1:8]}-{v[8]}"], ["NIE", "mi NIE es"]),
    "it_codice_fiscale": (
        _codice_fiscale,
        [lambda v: v],
        ["codice fiscale", "C.F.", "CF", "il mio codice fiscale è"],
    ),
    "nl_bsn": (
        _bsn,
        [lambda v: v, lambda v: f"{v[:4]}.{v[4:6]}.{v[6:]}"],
        ["BSN", "burgerservicenummer", "mijn BSN is", "BSN-nummer"],
    ),
    "br_cpf": (
        _cpf,
        [lambda v: f"{v[:3]}.{v[3:6]}.{v[6:9]}-{v[9:]}", lambda v: v],
        ["CPF", "meu CPF é", "CPF nº"],
    ),
    "br_cnpj": (
        _cnpj,
        [lambda v: f"{v[:2]}.{v[2:5]}.{v[5:8]}/{v[8:12]}-{v[12:]}", lambda v: v],
        ["CNPJ", "CNPJ da empresa"],
    ),
    "in_aadhaar": (
        _aadhaar,
        [lambda v: f"{v[:4]} {v[4:8]} {v[8:]}", lambda v: v, lambda v: f"{v[:4]}-{v[4:8]}-{v[8:]}"],
        ["Aadhaar", "Aadhaar number", "aadhar no", "UID"],
    ),
    "in_pan": (_pan, [lambda v: v], ["PAN", "PAN card", "PAN number"]),
    "de_id_card": (
        _id_card,
        [lambda v: v],
        ["Personalausweis", "Ausweisnummer", "Personalausweisnummer", "ID card no."],
    ),
    "jp_my_number": (
        _my_number,
        [lambda v: f"{v[:4]} {v[4:8]} {v[8:]}", lambda v: v, lambda v: f"{v[:4]}-{v[4:8]}-{v[8:]}"],
        ["マイナンバー", "My Number", "個人番号", "my number card"],
    ),
}


# Indexes of the formats (in _NATIONAL) that are recognisable without a label;
# the others (a bare nine-digit SSN, any NHS number...) are written with one.
_SELF_EVIDENT: dict[str, tuple[int, ...]] = {
    "us_ssn": (0, 1, 2),
    "us_itin": (0,),
    "gb_nino": (0, 1),
    "fr_nir": (0, 1),
    "es_dni": (0, 1, 2),
    "es_nie": (0, 1),
    "it_codice_fiscale": (0,),
    "nl_bsn": (1,),
    "br_cpf": (0,),
    "br_cnpj": (0,),
    "in_aadhaar": (0, 2),
    "in_pan": (0,),
}


# ------------------------------------------------------------------------------ secrets


def _b64(rng: random.Random, n: int) -> str:
    return base64.b64encode(rng.randbytes(n)).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(rng: random.Random) -> str:
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    if rng.random() < 0.3:
        header["kid"] = _chars(rng, HEX, 16)
    payload = {
        "sub": _digits(rng, 10),
        "name": rng.choice(_FIRST),
        "iat": 1700000000 + rng.randint(0, 10**7),
    }
    return ".".join(
        (
            _b64url(json.dumps(header, separators=(",", ":")).encode()),
            _b64url(json.dumps(payload).encode()),
            _b64url(rng.randbytes(32)),
        )
    )


def _pem(rng: random.Random) -> str:
    label = rng.choice(
        [
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
            "DSA PRIVATE KEY",
        ]
    )
    body = _b64(rng, rng.randint(120, 600))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


def _password(rng: random.Random) -> str:
    alphabet = ALNUM + "!@#$%^&*_-+?"
    while True:
        pw = _chars(rng, alphabet, rng.randint(10, 24))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


_SECRETS: dict[str, Callable[[random.Random], str]] = {
    "aws_access_key": lambda r: r.choice(["AKIA", "ASIA"]) + _chars(r, UPPER + "234567", 16),
    "aws_secret_key": lambda r: (
        f"aws_access_key_id = AKIA{_chars(r, UPPER + DIGITS, 16)}\n"
        f"aws_secret_access_key = {_chars(r, ALNUM + '/+', 40)}"
    ),
    "gcp_api_key": lambda r: "AIza" + _chars(r, ALNUM + "_-", 35),
    "gcp_service_account": lambda r: json.dumps(
        {
            "type": "service_account",
            "project_id": f"proj-{_digits(r, 6)}",
            "private_key_id": _chars(r, HEX, 40),
            "private_key": _pem(r)
            .replace("RSA PRIVATE KEY", "PRIVATE KEY")
            .replace("EC PRIVATE KEY", "PRIVATE KEY")
            + "\n",
            "client_email": f"svc@proj-{_digits(r, 6)}.iam.gserviceaccount.com",
        },
        indent=2,
    ),
    "azure_storage": lambda r: (
        f"DefaultEndpointsProtocol=https;AccountName=acct{_digits(r, 4)};"
        f"AccountKey={_b64(r, 64)};EndpointSuffix=core.windows.net"
    ),
    "github_token": lambda r: (
        r.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + _chars(r, ALNUM, 36)
    ),
    "github_pat": lambda r: "github_pat_" + _chars(r, ALNUM, 22) + "_" + _chars(r, ALNUM, 59),
    "gitlab_token": lambda r: "glpat-" + _chars(r, ALNUM + "_-", 20),
    "slack_token": lambda r: (
        r.choice(["xoxb-", "xoxp-", "xoxa-", "xoxr-"])
        + _digits(r, 12)
        + "-"
        + _digits(r, 13)
        + "-"
        + _chars(r, ALNUM, 24)
    ),
    "slack_webhook": lambda r: (
        f"https://hooks.slack.com/services/T{_chars(r, UPPER + DIGITS, 8)}"
        f"/B{_chars(r, UPPER + DIGITS, 10)}/{_chars(r, ALNUM, 24)}"
    ),
    "stripe_key": lambda r: r.choice(["sk_live_", "rk_live_", "sk_test_"]) + _chars(r, ALNUM, 24),
    "openai_key": lambda r: r.choice(
        [
            "sk-proj-" + _chars(r, ALNUM + "_-", 120),
            "sk-" + _chars(r, ALNUM, 20) + "T3BlbkFJ" + _chars(r, ALNUM, 20),
            "sk-svcacct-" + _chars(r, ALNUM + "_-", 80),
        ]
    ),
    "anthropic_key": lambda r: "sk-ant-api03-" + _chars(r, ALNUM + "_-", 93) + "AA",
    "huggingface_token": lambda r: "hf_" + _chars(r, string.ascii_letters, 34),
    "twilio_key": lambda r: r.choice(["SK", "AC"]) + _chars(r, HEX, 32),
    "sendgrid_key": lambda r: (
        "SG." + _chars(r, ALNUM + "_-", 22) + "." + _chars(r, ALNUM + "_-", 43)
    ),
    "npm_token": lambda r: "npm_" + _chars(r, ALNUM, 36),
    "pypi_token": lambda r: "pypi-AgEIcHlwaS5vcmc" + _chars(r, ALNUM + "_-", 70),
    "shopify_token": lambda r: r.choice(["shpat_", "shpss_", "shpca_"]) + _chars(r, HEX, 32),
    "mailgun_key": lambda r: "key-" + _chars(r, HEX, 32),
    "digitalocean_token": lambda r: "dop_v1_" + _chars(r, HEX, 64),
    "jwt": _jwt,
    "private_key": _pem,
    "password_assignment": _password,
    "authorization_header": lambda r: r.choice(
        [
            "Authorization: Basic "
            + base64.b64encode(f"{r.choice(_FIRST)}:{_password(r)}".encode()).decode(),
            "Authorization: Bearer " + _chars(r, ALNUM + "-._~", r.randint(24, 64)),
            "authorization: token " + _chars(r, HEX, 40),
        ]
    ),
    "url_credentials": lambda r: (
        f"{r.choice(['postgres', 'postgresql', 'mysql', 'mongodb+srv', 'redis', 'amqp'])}://"
        f"{r.choice(['admin', 'app', 'root', 'svc_user'])}:{_password(r).replace('@', 'a')}"
        f"@{r.choice(['db.internal', 'localhost', '10.0.3.7', 'cluster0.ab1cd.mongodb.net'])}"
        f":{r.choice(['5432', '3306', '27017', '6379'])}/{r.choice(['app', 'prod', 'main'])}"
    ),
}

_PASSWORD_FORMS = [
    'password = "{v}"',
    "PASSWORD={v}",
    "db_password: {v}",
    '"password": "{v}"',
    "api_key={v}",
    "API_KEY: {v}",
    "secret_key = '{v}'",
    "client_secret={v}",
    "Passwort: {v}",
    "contraseña: {v}",
    "mot de passe : {v}",
    "senha={v}",
    "token: {v}",
    "export DB_PASS={v}",
    "--password={v}",
    "auth_token => '{v}'",
    "wachtwoord = {v}",
]


# ------------------------------------------------------------------------------ templates

_SENTENCES = [
    "{label} {v}",
    "Here is my {label}: {v}",
    "Please update the record, {label} {v}, before Friday.",
    "Hi team, the customer's {label} is {v}. Thanks!",
    "Bonjour, voici mon {label} : {v}. Merci.",
    "Hallo, meine {label} lautet {v}, viele Grüße",
    "Hola, mi {label} es {v}, gracias.",
    "Ciao, il {label} è {v}.",
    "Olá, segue o {label}: {v}.",
    "Hallo, hierbij mijn {label}: {v}.",
    "{label}：{v}",
    '{{"{label}": "{v}", "verified": true}}',
    "{label},{v},active",
    "| {label} | {v} |",
    "2024-05-02 10:14:22 INFO user updated {label}={v}",
    "- {label}: {v}\n- status: pending",
    "Can you check this for me? {label} {v}",
    "> {label}: {v}\n> Sent from my phone",
]
_NEUTRAL = [
    "{v}",
    "Please use {v} for this.",
    "It is {v}, I think.",
    "Value: {v}",
    "Note to self — {v}",
    "<td>{v}</td>",
    "Summarise this: the details are {v} and nothing else.",
    "Ticket notes: the customer sent {v} in the chat.",
]
_PHONE_LABELS = [
    "Tel:",
    "Phone",
    "call me at",
    "mobile:",
    "Tél. :",
    "Telefon:",
    "móvil",
    "cellulare",
    "WhatsApp",
    "電話番号",
    "Fax:",
    "reach me on",
    "ring",
]
_EMAIL_LABELS = ["email", "e-mail", "contact", "courriel", "E-Mail-Adresse", "correo", "mail"]
_CARD_LABELS = [
    "card number",
    "credit card",
    "Visa",
    "numéro de carte",
    "Kartennummer",
    "tarjeta",
    "carta",
    "cartão",
    "card",
]
_IBAN_LABELS = ["IBAN", "bank account", "IBAN :", "Kontonummer (IBAN)", "cuenta", "conto"]


def _sentence(rng: random.Random, label: str, value: str, neutral: float = 0.3) -> str:
    if rng.random() < neutral:
        return rng.choice(_NEUTRAL).format(v=value)
    return rng.choice(_SENTENCES).format(label=label, v=value)


def positives(seed: int = 1234, per_kind: int = 200) -> Iterator[Sample]:
    """Yield labelled texts that each hold one sensitive value.

    Args:
        seed: Seed of the random generator.
        per_kind: How many texts to make for each kind of value.

    Yields:
        Samples whose ``detector`` must fire on ``text``.
    """
    rng = random.Random(seed)
    for _ in range(per_kind * 2):
        v = _email(rng)
        yield Sample(_sentence(rng, rng.choice(_EMAIL_LABELS), v, 0.4), "email", "email", v)
    for _ in range(per_kind * 8):  # 31 regions
        v, region = _phone(rng)
        yield Sample(
            _sentence(rng, rng.choice(_PHONE_LABELS), v, 0.4), "phone", f"phone_{region}", v
        )
    for _ in range(per_kind * 4):
        v, network = _card(rng)
        yield Sample(_sentence(rng, rng.choice(_CARD_LABELS), v, 0.4), "payment_card", network, v)
    structure = _IBAN_STRUCTURE
    for _ in range(per_kind * 2):
        v, kind = _iban(rng, structure)
        yield Sample(_sentence(rng, rng.choice(_IBAN_LABELS), v, 0.4), "iban", kind, v)
    for kind, (make, formats, labels) in _NATIONAL.items():
        for _ in range(per_kind):
            fmt = rng.choice(formats)
            v = fmt(make(rng))
            # A quarter of the values that are recognisable without a label get none.
            neutral = 0.25 if formats.index(fmt) in _SELF_EVIDENT.get(kind, ()) else 0.0
            yield Sample(_sentence(rng, rng.choice(labels), v, neutral), "national_id", kind, v)
    for kind, make in _SECRETS.items():
        for _ in range(per_kind // 2):
            v = make(rng)
            if kind == "authorization_header":
                text = rng.choice(
                    [
                        "{v}",
                        "curl -H '{v}' https://api.example.com/v1/items",
                        "headers:\n  {v}\n",
                        "GET /v1/me HTTP/1.1\n{v}\n",
                    ]
                )
                text = text.format(v=v)
            elif kind == "password_assignment":
                text = rng.choice(["{f}", "Config:\n{f}\n", "I set {f} in .env", "```\n{f}\n```"])
                text = text.format(f=rng.choice(_PASSWORD_FORMS).format(v=v))
            else:
                text = rng.choice(
                    [
                        "{v}",
                        "Here is the key: {v}",
                        "export TOKEN={v}",
                        "config:\n  key: {v}\n",
                        "Why does this fail? curl -H 'Authorization: Bearer {v}' https://api.x",
                        "```\n{v}\n```",
                        "Peux-tu vérifier cette clé {v} ?",
                        'token = "{v}"',
                    ]
                ).format(v=v)
            yield Sample(text, "secret", kind, v)


# ------------------------------------------------------------------------------ benign


def _isbn13(rng: random.Random) -> str:
    body = rng.choice(["978", "979"]) + _digits(rng, 9)
    check = -sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10
    return body + str(check)


def _isbn10(rng: random.Random) -> str:
    body = _digits(rng, 9)
    check = sum((10 - i) * int(d) for i, d in enumerate(body)) % 11
    c = (11 - check) % 11
    return body + ("X" if c == 10 else str(c))


def _failed_luhn(rng: random.Random) -> str:
    network = rng.choice(list(_CARD_NETWORKS))
    prefixes, lengths = _CARD_NETWORKS[network]
    good = _luhn_complete(rng.choice(prefixes) + _digits(rng, rng.choice(lengths) - 3))
    bad = good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)
    return _group(bad, [4] * 5, rng.choice([" ", "-", ""]))


def _invalid_phone(rng: random.Random) -> str:
    region = rng.choice(["US", "GB", "FR", "DE", "ES", "IT", "NL", "BR", "IN", "JP"])
    number = _valid_number(rng, region)
    text = phonenumbers.format_number(
        number, rng.choice([PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL])
    )
    for _ in range(200):
        mutated = "".join(
            rng.choice(DIGITS) if c.isdigit() and rng.random() < 0.5 else c for c in text
        )
        try:
            parsed = phonenumbers.parse(mutated, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(parsed):
            return mutated
    return "555-0100"


def _invalid_iban(rng: random.Random) -> str:
    number = _iban(rng, _IBAN_STRUCTURE)[0].replace(" ", "")
    check = int(number[2:4])
    bad = f"{(check + rng.randint(1, 96)) % 97:02d}"
    number = number[:2] + bad + number[4:]
    return number if rng.random() < 0.3 else std_iban.format(number)


def _bad_check_digits(rng: random.Random) -> str:
    """A national id or card written correctly except for its check digit(s)."""
    kind = rng.choice(
        [
            "br_cpf",
            "es_dni",
            "fr_nir",
            "nl_bsn",
            "in_aadhaar",
            "it_codice_fiscale",
            "gb_nhs",
            "de_idnr",
        ]
    )
    make, formats, labels = _NATIONAL[kind]
    good = make(rng)
    last = good[-1]
    alphabet = UPPER if last.isalpha() else DIGITS
    bad = good[:-1] + rng.choice([c for c in alphabet if c != last])
    if kind == "fr_nir":
        bad = good[:-2] + f"{(int(good[-2:]) + rng.randint(1, 90)) % 100:02d}"
    return f"{rng.choice(labels)} {formats[0](bad)}"


def _benign_values(rng: random.Random) -> dict[str, Callable[[], str]]:
    r = rng
    return {
        "order_number": lambda: r.choice(
            [
                f"Order #{_digits(r, 3)}-{_digits(r, 7)}-{_digits(r, 7)}",
                f"order no. {_digits(r, r.randint(6, 12))}",
                f"Order ID: ORD-{_digits(r, 8)}",
                f"PO {r.choice(['45', '47'])}{_digits(r, 8)}",
                f"Bestellnummer {_digits(r, 10)}",
                f"commande n° {_digits(r, 9)}",
                f"pedido {_digits(r, 8)}",
            ]
        ),
        "invoice_number": lambda: r.choice(
            [
                f"Invoice INV-{r.randint(2019, 2025)}-{_digits(r, 5)}",
                f"invoice {_digits(r, r.randint(7, 11))}",
                f"Rechnung Nr. {_digits(r, 8)}",
                f"facture F{_digits(r, 9)}",
                f"Invoice #{_digits(r, 4)} {_digits(r, 4)} {_digits(r, 4)}",
            ]
        ),
        "tracking_number": lambda: r.choice(
            [
                f"1Z{_chars(r, UPPER + DIGITS, 6)}{_digits(r, 10)}",
                f"tracking {_digits(r, 12)}",
                f"FedEx tracking {_group(_digits(r, 12), [4, 4, 4], ' ')}",
                f"USPS {_group('9400' + _digits(r, 18), [4] * 6, ' ')}",
                f"DHL waybill {_digits(r, 10)}",
                f"parcel {_chars(r, UPPER, 2)}{_digits(r, 9)}GB",
            ]
        ),
        "failed_luhn": lambda: _failed_luhn(r),
        "uuid": lambda: str(uuid.UUID(int=r.getrandbits(128))),
        "git_sha": lambda: r.choice(
            [
                _chars(r, HEX, 40),
                _chars(r, HEX, 7),
                f"commit {_chars(r, HEX, 40)}",
                f"fixed in {_chars(r, HEX, 7)}",
            ]
        ),
        "version": lambda: r.choice(
            [
                f"v{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 200)}",
                f"{r.randint(1, 5)}.{r.randint(0, 30)}.{r.randint(0, 20)}-rc.{r.randint(1, 9)}",
                f"build {r.randint(10, 11)}.0.{r.randint(10000, 26000)}.{r.randint(1000, 6000)}",
                f"Python 3.{r.randint(6, 13)}.{r.randint(0, 15)}",
            ]
        ),
        "ip_address": lambda: r.choice(
            [
                f"{r.randint(1, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)}",
                f"2001:db8:{r.randint(0, 65535):x}::{r.randint(0, 65535):x}",
                f"{r.randint(10, 192)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}:"
                f"{r.randint(1024, 65535)}",
            ]
        ),
        "date_time": lambda: r.choice(
            [
                f"{r.randint(1990, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(1990, 2030)}",
                f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(1990, 2030)}",
                f"{r.randint(1990, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
                f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
                f"{r.randint(1990, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T"
                f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z",
                f"{r.randint(1990, 2030)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
                f"{r.randint(0, 23):02d}{r.randint(0, 59):02d}{r.randint(0, 59):02d}",
                str(r.randint(1_000_000_000, 1_900_000_000)),
                str(r.randint(1_000_000_000_000, 1_900_000_000_000)),
                f"{r.randint(1, 12):02d}/{r.randint(1, 28):02d}/{r.randint(90, 130) % 100:02d} "
                f"{r.randint(1, 12)}:{r.randint(0, 59):02d} PM",
            ]
        ),
        "isbn": lambda: r.choice(
            [
                _isbn13(r),
                _isbn10(r),
                "ISBN " + _isbn13(r),
                (lambda v: f"ISBN {v[:3]}-{v[3]}-{v[4:7]}-{v[7:12]}-{v[12]}")(_isbn13(r)),
                (lambda v: f"ISBN {v[0]}-{v[1:4]}-{v[4:9]}-{v[9]}")(_isbn10(r)),
            ]
        ),
        "price": lambda: r.choice(
            [
                f"${r.randint(1, 99999):,}.{r.randint(0, 99):02d}",
                f"€ {r.randint(1, 9999)},{r.randint(0, 99):02d}",
                f"{r.randint(1, 999)} {r.randint(100, 999)},00 zł",
                f"USD {r.randint(100000, 9999999):,}",
                f"{r.randint(1, 99)}.{r.randint(100, 999)}.{r.randint(100, 999)} VND",
            ]
        ),
        "zip_code": lambda: r.choice(
            [
                f"{r.randint(10000, 99999)}",
                f"{r.randint(10000, 99999)}-{r.randint(1000, 9999)}",
                f"SW1A {r.randint(1, 9)}AA",
                f"{r.randint(75001, 75020)} Paris",
                f"{r.randint(10115, 14199)} Berlin",
                f"{r.randint(1000, 9999)} AB Amsterdam",
                f"CEP {r.randint(10000, 99999)}-{r.randint(100, 999)}",
                f"〒{r.randint(100, 999)}-{r.randint(1000, 9999)}",
            ]
        ),
        "hex_colour": lambda: r.choice(
            [
                f"#{_chars(r, HEX, 6)}",
                f"#{_chars(r, HEX, 3)}",
                f"color: #{_chars(r, HEX.upper(), 6)};",
            ]
        ),
        "base64_blob": lambda: r.choice(
            [
                _b64(r, r.randint(16, 96)),
                f"data:image/png;base64,{_b64(r, 60)}",
                f"sha256-{_b64(r, 32)}",
            ]
        ),
        "invalid_phone": lambda: _invalid_phone(r),
        "placeholder_secret": lambda: r.choice(
            [
                "password: ********",
                "api_key=YOUR_API_KEY",
                "token: <your-token-here>",
                "PASSWORD=${DB_PASSWORD}",
                'password = os.environ["DB_PASSWORD"]',
                "secret: changeme",
                "API_KEY: xxxxxxxxxxxxxxxx",
                "password: required",
                "max_tokens: 4096",
                "token_count=12345678",
                "Password: incorrect",
                "password_reset_url: https://example.com/reset",
                "AKIA (the prefix of AWS key ids)",
                "keys start with sk- or ghp_",
                "set OPENAI_API_KEY in your shell",
                "postgres://localhost:5432/app",
                "https://example.com:8443/path?q=1",
            ]
        ),
        "email_like": lambda: r.choice(
            [
                f"@{rng.choice(_FIRST)}",
                "icon@2x.png",
                "npm i @types/node@20.11.5",
                f"{rng.choice(_FIRST)}@localhost",
                "@app.route('/users')",
                "user at example dot com",
                f"git tag v{r.randint(1, 9)}.{r.randint(0, 9)} -m 'release@{r.randint(1, 99)}'",
            ]
        ),
        "invalid_iban": lambda: _invalid_iban(r),
        "invalid_ssn": lambda: r.choice(
            [
                f"000-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
                f"666-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
                f"{r.randint(100, 899)}-00-{r.randint(1000, 9999)}",
                f"{r.randint(100, 899)}-{r.randint(10, 99)}-0000",
                f"9{r.randint(10, 99)}-{r.choice([12, 34, 45, 66, 69])}-{r.randint(1000, 9999)}",
            ]
        ),
        "bad_check_digits": lambda: _bad_check_digits(r),
        "hash": lambda: r.choice(
            [
                f"md5 {_chars(r, HEX, 32)}",
                f"sha256:{_chars(r, HEX, 64)}",
                f'etag "{_chars(r, HEX, 32)}"',
                f"request id {_chars(r, HEX, 24)}",
            ]
        ),
        "coordinates": lambda: r.choice(
            [
                f"{r.uniform(-90, 90):.4f}, {r.uniform(-180, 180):.4f}",
                f"{r.uniform(0, 90):.6f}° N, {r.uniform(0, 180):.6f}° W",
                f"lat={r.uniform(-90, 90):.7f} lon={r.uniform(-180, 180):.7f}",
            ]
        ),
        "code": lambda: r.choice(
            [
                f"for (int i = 0; i < {r.randint(10, 100000)}; i++) "
                f"{{ s += i * {r.randint(2, 99)}; }}",
                f"x = {r.randint(10**6, 10**12)}  # seed",
                f"assert len(buf) == {r.randint(1000, 99999)}",
                f"SELECT * FROM orders WHERE id = {r.randint(10**5, 10**9)};",
                f'Traceback: File "app.py", line {r.randint(1, 999)}, in handler',
                f"0x{_chars(r, HEX, 8)} 0x{_chars(r, HEX, 16)}",
                f"np.random.seed({r.randint(0, 10**9)})",
            ]
        ),
        "measurement": lambda: r.choice(
            [
                f"{r.choice([1920, 2560, 3840])}x{r.choice([1080, 1440, 2160])}",
                f"{r.randint(1, 999)}.{r.randint(0, 99)} kg",
                f"{r.randint(100, 99999)} km",
                f"{r.randint(1, 64)} GB RAM, {r.randint(1, 8)} TB disk",
                f"{r.randint(1, 9)}.{r.randint(100, 999)}.{r.randint(100, 999)} bytes",
            ]
        ),
        "not_a_jwt": lambda: r.choice(
            [
                _b64url(json.dumps({"user": r.choice(_FIRST), "n": r.randint(1, 99)}).encode()),
                _b64url(json.dumps({"typ": "x", "v": r.randint(1, 9)}).encode())
                + "."
                + _b64url(b"payload")
                + "."
                + _b64url(r.randbytes(8)),
            ]
        ),
        "code_assignment": lambda: r.choice(
            [
                "self.tokens_in = tokens_in",
                "password = getpass.getpass()",
                "api_key = os.environ['API_KEY']",
                "token = request.headers.get('Authorization')",
                "secret_name: db-credentials",
                "keyboard: qwerty",
                "max_tokens=max_tokens",
                "password_hash = hash_password(password)",
                "const token = await getToken();",
                "if password == confirm_password:",
                "API_KEY: ${{ secrets.API_KEY }}",
                "-H 'Authorization: Bearer YOUR_TOKEN'",
                "passwordless: true",
                f"key: value{r.randint(1, 9)}",
                f"tokens: {r.randint(1, 10**6)}",
                "Secret Santa: Friday",
                "Password: see vault",
            ]
        ),
        "plain_numbers": lambda: r.choice(
            [
                f"{r.randint(2, 999)} units shipped in Q{r.randint(1, 4)} {r.randint(2015, 2025)}",
                f"room {r.randint(1, 9)}.{r.randint(10, 99)}",
                f"pi is {r.random() * 3 + 1:.14f}",
                f"{r.randint(1, 100)}% of {r.randint(1000, 100000)} users",
                f"between {r.randint(1, 500)} and {r.randint(500, 5000)} ms",
                " ".join(str(r.randint(1, 10**k)) for k in (2, 2, 3, 4)),
            ]
        ),
    }


_BENIGN_SENTENCES = [
    "{v}",
    "Please check {v} and let me know.",
    "See {v} for details.",
    "The reference is {v}.",
    "Merci de vérifier {v} avant lundi.",
    "Bitte prüfen Sie {v}.",
    "Referencia: {v}",
    "log: {v} processed in 12ms",
    '{{"ref": "{v}", "ok": true}}',
    "| {v} | done |",
    "Can you summarise the ticket about {v}?",
    "Why does {v} show up in the output?",
]


def benign(seed: int = 4321, per_kind: int = 200) -> Iterator[Sample]:
    """Yield look-alike texts that hold no sensitive value.

    Args:
        seed: Seed of the random generator.
        per_kind: How many texts to make for each kind of look-alike.

    Yields:
        Samples with ``detector`` None.
    """
    rng = random.Random(seed)
    for kind, make in _benign_values(rng).items():
        for _ in range(per_kind):
            v = make()
            yield Sample(rng.choice(_BENIGN_SENTENCES).format(v=v), None, kind, v)


_PROSE_WORDS = [
    "the",
    "team",
    "report",
    "project",
    "budget",
    "review",
    "meeting",
    "release",
    "customer",
    "support",
    "latency",
    "cache",
    "server",
    "model",
    "prompt",
    "summary",
    "draft",
    "policy",
    "update",
    "schedule",
    "quarter",
    "revenue",
    "hiring",
    "roadmap",
    "feature",
    "request",
    "bug",
    "fix",
    "deploy",
    "staging",
    "production",
    "metrics",
    "dashboard",
    "weekly",
    "notes",
    "agenda",
    "decision",
    "owner",
    "deadline",
    "risk",
    "plan",
    "vendor",
    "contract",
    "proposal",
    "feedback",
    "design",
    "le",
    "projet",
    "équipe",
    "réunion",
    "rapport",
    "die",
    "Ergebnisse",
    "Besprechung",
    "Kunden",
    "el",
    "equipo",
    "informe",
    "reunión",
    "il",
    "progetto",
    "riunione",
    "o",
    "relatório",
    "reunião",
]
_PROSE_TEMPLATES = [
    "{w} {w} {w} {w} {w} {w}.",
    "We moved the {w} to {day} and agreed on {pct}% more {w}.",
    "Latency dropped from {ms} ms to {ms2} ms after the {w} change in v{ver}.",
    "The {w} {w} is due on {date}; {w} {w} owns it.",
    "Revenue was ${price} in Q{q} {year}, up {pct}% on {w} {w}.",
    "Please read the {w} notes before the {w} at {hh}:{mm}.",
    "{w} {w}, {w} {w} {w} {w} {w} {w} {w}?",
    "Section {q}.{q2} covers the {w} and {w} {w}.",
    "About {n} {w} {w} were processed in {ms} ms.",
]


def _prose(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(3, 8)):
        template = rng.choice(_PROSE_TEMPLATES)
        while "{w}" in template:
            template = template.replace("{w}", rng.choice(_PROSE_WORDS), 1)
        out.append(
            template.format(
                day=rng.choice(["Monday", "Friday", "June 12", "next week"]),
                pct=rng.randint(1, 60),
                ms=rng.randint(100, 900),
                ms2=rng.randint(20, 99),
                ver=f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
                date=f"{rng.randint(2023, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                price=f"{rng.randint(1, 999)},{rng.randint(100, 999)}",
                q=rng.randint(1, 4),
                q2=rng.randint(1, 9),
                year=rng.randint(2020, 2026),
                hh=rng.randint(8, 18),
                mm=rng.choice(["00", "15", "30", "45"]),
                n=rng.randint(2, 5000),
            )
        )
    return " ".join(s[0].upper() + s[1:] for s in out)


def mixed_text(size: int, seed: int = 7) -> str:
    """Return about ``size`` characters of prose with a few sensitive values in it.

    Paragraphs of generated prose (with the dates, versions, prices and counts that
    prose has) make up most of it; about one paragraph in twelve is a benign
    look-alike and one in thirty a text with a sensitive value.

    Args:
        size: Target length in characters.
        seed: Seed of the random generator.

    Returns:
        The text.
    """
    rng = random.Random(seed)
    pos = list(positives(seed, per_kind=2))
    neg = list(benign(seed, per_kind=3))
    parts: list[str] = []
    length = 0
    while length < size:
        roll = rng.random()
        piece = (
            rng.choice(pos).text
            if roll < 1 / 30
            else rng.choice(neg).text
            if roll < 1 / 30 + 1 / 12
            else _prose(rng)
        )
        parts.append(piece)
        length += len(piece) + 2
    return "\n\n".join(parts)[:size]
