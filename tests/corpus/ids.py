"""A seeded generator of national ids of eighteen more countries, and of cards and
IBANs written the way people write them, with look-alikes that must stay quiet.

`positives()` yields texts that each hold one value of a known detector and kind.
Every id is valid by its own rules (check digits computed with the published
algorithms or python-stdnum's ``calc_check_digit`` helpers, real birth dates,
real region and state codes) and written in one of its country's usual formats,
with or without a label (label-only shapes always get one), in sentences of the
country's languages and in structured text: JSON, YAML, CSV under a header, SQL,
XML, log lines, Markdown tables, e-mail replies and chat history.

`benign()` yields look-alikes: measurements, totals, lottery draws, barcodes
(EAN-13, UPC-A, GTIN-14, ISBN), phone-like numbers, dates and timestamps, version
strings, UUIDs, hashes, order and invoice numbers, and ids with a wrong check digit
next to their label.

Everything comes from a `random.Random(seed)`, so a run is reproducible.
"""

from __future__ import annotations

import datetime
import random
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stdnum import iban as std_iban
from stdnum.ar import cuit as ar_cuit
from stdnum.cl import rut as cl_rut
from stdnum.kr import rrn as kr_rrn
from stdnum.mx import curp as mx_curp
from stdnum.no import fodselsnummer as no_fnr
from stdnum.pl import pesel as pl_pesel
from stdnum.pt import nif as pt_nif
from stdnum.tr import tckimlik as tr_kimlik

from tests.corpus.pii import _CARD_NETWORKS, _IBAN_STRUCTURE, _iban, _luhn_complete

DIGITS = string.digits
UPPER = string.ascii_uppercase
HEX = "0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled text: ``detector`` is None for a look-alike."""

    text: str
    detector: str | None
    kind: str
    value: str


def _d(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(DIGITS, k=n))


def _birth(rng: random.Random, lo: int = 1935, hi: int = 2012) -> datetime.date:
    return datetime.date(rng.randint(lo, hi), 1, 1) + datetime.timedelta(days=rng.randint(0, 364))


def _luhn_digit(body: str) -> str:
    return _luhn_complete(body)[-1]


# ----------------------------------------------------------------------------- ids

_CN_AREAS = [
    "110105",
    "310104",
    "440305",
    "510107",
    "330106",
    "320102",
    "420106",
    "610113",
    "370202",
    "210102",
    "230103",
    "500103",
    "120101",
    "130102",
    "140105",
    "150102",
    "220102",
    "340102",
    "350102",
    "360102",
    "410105",
    "430102",
    "450103",
    "460105",
    "520102",
    "530102",
    "540102",
    "620102",
    "630102",
    "640104",
    "650102",
    "440106",
]


def _cn(rng: random.Random) -> str:
    body = rng.choice(_CN_AREAS) + _birth(rng).strftime("%Y%m%d") + _d(rng, 3)
    check = (1 - 2 * int(body, 13)) % 11
    return body + ("X" if check == 10 else str(check))


def _kr(rng: random.Random) -> str:
    born = _birth(rng, 1940, 2019)
    sex = rng.choice("12") if born.year < 2000 else rng.choice("34")
    body = born.strftime("%y%m%d") + sex + f"{rng.randint(0, 96):02d}" + _d(rng, 3)
    return body + kr_rrn.calc_check_digit(body)


def _curp(rng: random.Random) -> str:
    while True:
        born = _birth(rng, 1940, 2015)
        body = (
            rng.choice("BCDFGHJLMNPRSTVZ")
            + rng.choice("AEIOU")
            + rng.choice(UPPER)
            + rng.choice(UPPER)
            + born.strftime("%y%m%d")
            + rng.choice("HM")
            + rng.choice(sorted(mx_curp._valid_states))
            + "".join(rng.choices("BCDFGHJKLMNPRSTVXZ", k=3))
            + (rng.choice(DIGITS) if born.year < 2000 else rng.choice(UPPER))
        )
        value = body + mx_curp.calc_check_digit(body + "0")
        if mx_curp.is_valid(value):
            return value


def _sin(rng: random.Random) -> str:
    body = rng.choice("0123456789") + _d(rng, 7)  # 0 and 8 are unassigned, but written
    return body + _luhn_digit(body)


def _tfn(rng: random.Random) -> str:
    weights = (1, 4, 3, 7, 5, 8, 6, 9, 10)
    while True:
        body = _d(rng, 8)
        total = sum(w * int(c) for w, c in zip(weights, body, strict=False))
        for last in DIGITS:
            if (total + 10 * int(last)) % 11 == 0:
                return body + last


def _medicare(rng: random.Random) -> str:
    body = rng.choice("23456") + _d(rng, 7)
    check = sum(w * int(c) for w, c in zip((1, 3, 7, 9, 1, 3, 7, 9), body, strict=True)) % 10
    value = body + str(check) + rng.choice("123456789")
    return value + rng.choice("12345") if rng.random() < 0.3 else value


def _pesel(rng: random.Random) -> str:
    born = _birth(rng, 1930, 2015)
    month = born.month + (20 if born.year >= 2000 else 0)
    body = f"{born.year % 100:02d}{month:02d}{born.day:02d}" + _d(rng, 4)
    return body + pl_pesel.calc_check_digit(body)


def _personnummer(rng: random.Random) -> str:
    """Twelve digits, YYYYMMDDNNNC; the check is Luhn over the last ten but one."""
    born = _birth(rng, 1930, 2015)
    body = born.strftime("%Y%m%d") + _d(rng, 3)
    return body + _luhn_digit(body[2:])


def _be_nn(rng: random.Random) -> str:
    born = _birth(rng, 1930, 2015)
    body = born.strftime("%y%m%d") + f"{rng.randint(1, 997):03d}"
    base = int(("2" if born.year >= 2000 else "") + body)
    return body + f"{97 - base % 97:02d}"


def _ahv(rng: random.Random) -> str:
    body = "756" + _d(rng, 9)
    check = -sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10
    return body + str(check)


def _cpr(rng: random.Random) -> str:
    born = _birth(rng, 1937, 2015)
    seventh = rng.choice("0123") if born.year < 2000 else rng.choice("4")
    return born.strftime("%d%m%y") + seventh + _d(rng, 3)


def _fnr(rng: random.Random) -> str:
    while True:
        born = _birth(rng, 1930, 1999)
        body = born.strftime("%d%m%y") + f"{rng.randint(0, 499):03d}"
        c1 = no_fnr.calc_check_digit1(body)
        if c1 == "10":
            continue
        c2 = no_fnr.calc_check_digit2(body + c1)
        if c2 != "10":
            return body + c1 + c2


def _nif(rng: random.Random) -> str:
    body = rng.choice("1235689") + _d(rng, 7)
    return body + pt_nif.calc_check_digit(body)


def _tc(rng: random.Random) -> str:
    body = rng.choice("123456789") + _d(rng, 8)
    return body + tr_kimlik.calc_check_digits(body)


def _za(rng: random.Random) -> str:
    body = _birth(rng, 1930, 2015).strftime("%y%m%d") + _d(rng, 4) + rng.choice("01") + "8"
    return body + _luhn_digit(body)


def _nric(rng: random.Random) -> str:
    prefix = rng.choice("STFGM")
    digits = _d(rng, 7)
    total = sum(w * int(d) for w, d in zip((2, 7, 6, 5, 4, 3, 2), digits, strict=True))
    total += {"T": 4, "G": 4, "M": 3}.get(prefix, 0)
    table = {
        "S": "JZIHGFEDCBA",
        "T": "JZIHGFEDCBA",
        "F": "XWUTRQPNMLK",
        "G": "XWUTRQPNMLK",
        "M": "XWUTRQPNJLK",
    }[prefix]
    return prefix + digits + table[total % 11]


def _dni_ar(rng: random.Random) -> str:
    return str(rng.randint(5_000_000, 46_000_000))


def _cuit(rng: random.Random) -> str:
    while True:
        body = (
            rng.choice(["20", "23", "27", "30", "33"]) + f"{rng.randint(5_000_000, 46_000_000):08d}"
        )
        value = body + ar_cuit.calc_check_digit(body)
        if ar_cuit.is_valid(value):
            return value


def _rut(rng: random.Random) -> str:
    body = str(rng.randint(3_000_000, 26_000_000))
    return body + cl_rut.calc_check_digit(body)


def _dotted(body: str) -> str:
    """12345678 -> 12.345.678"""
    out = ""
    while len(body) > 3:
        out = "." + body[-3:] + out
        body = body[:-3]
    return body + out


_Fmt = Callable[[str], str]
# kind -> (make, [(format, evident)], labels, json keys)
_IDS: dict[
    str, tuple[Callable[[random.Random], str], list[tuple[_Fmt, bool]], list[str], list[str]]
] = {
    "cn_ric": (
        _cn,
        [
            (lambda v: v, True),
            (lambda v: f"{v[:6]} {v[6:14]} {v[14:]}", True),
            (lambda v: v.lower(), True),
        ],
        [
            "身份证号码",
            "身份证号",
            "公民身份号码",
            "居民身份证",
            "Chinese ID number",
            "resident ID",
        ],
        ["id_card", "sfzh", "shenfenzheng", "resident_id"],
    ),
    "kr_rrn": (
        _kr,
        [
            (lambda v: f"{v[:6]}-{v[6:]}", True),
            (lambda v: f"{v[:6]} {v[6:]}", True),
            (lambda v: v, False),
        ],
        ["주민등록번호", "주민번호", "RRN", "resident registration number"],
        ["rrn", "jumin_no", "resident_registration_number"],
    ),
    "mx_curp": (
        _curp,
        [(lambda v: v, True)],
        ["CURP", "Clave Única de Registro de Población", "mi CURP"],
        ["curp"],
    ),
    "ca_sin": (
        _sin,
        [
            (lambda v: f"{v[:3]} {v[3:6]} {v[6:]}", False),
            (lambda v: f"{v[:3]}-{v[3:6]}-{v[6:]}", False),
            (lambda v: v, False),
        ],
        ["SIN", "Social Insurance Number", "NAS", "numéro d'assurance sociale", "S.I.N."],
        ["sin", "social_insurance_number", "nas"],
    ),
    "au_tfn": (
        _tfn,
        [(lambda v: f"{v[:3]} {v[3:6]} {v[6:]}", False), (lambda v: v, False)],
        ["TFN", "tax file number", "Tax File No."],
        ["tfn", "tax_file_number"],
    ),
    "au_medicare": (
        _medicare,
        [(lambda v: f"{v[:4]} {v[4:9]} {v[9:]}", False), (lambda v: v, False)],
        ["Medicare", "Medicare number", "Medicare card no."],
        ["medicare", "medicare_number"],
    ),
    "pl_pesel": (_pesel, [(lambda v: v, True)], ["PESEL", "nr PESEL", "numer PESEL"], ["pesel"]),
    "se_personnummer": (
        _personnummer,
        [
            (lambda v: f"{v[2:8]}-{v[8:]}", True),
            (lambda v: f"{v[:8]}-{v[8:]}", True),
            (lambda v: v[2:], False),
            (lambda v: v, False),
        ],
        ["personnummer", "Personnummer:", "personnr", "pnr"],
        ["personnummer", "pnr"],
    ),
    "be_nn": (
        _be_nn,
        [
            (lambda v: f"{v[:2]}.{v[2:4]}.{v[4:6]}-{v[6:9]}.{v[9:]}", True),
            (lambda v: v, True),
            (lambda v: f"{v[:6]}-{v[6:9]}-{v[9:]}", True),
        ],
        ["rijksregisternummer", "numéro de registre national", "INSZ", "NISS", "national number"],
        ["rijksregisternummer", "niss", "insz", "national_number"],
    ),
    "ch_ahv": (
        _ahv,
        [
            (lambda v: f"{v[:3]}.{v[3:7]}.{v[7:11]}.{v[11:]}", True),
            (lambda v: v, True),
            (lambda v: f"{v[:3]} {v[3:7]} {v[7:11]} {v[11:]}", True),
        ],
        ["AHV-Nr.", "AHV-Nummer", "numéro AVS", "AVS", "Sozialversicherungsnummer"],
        ["ahv", "avs", "ahv_nr"],
    ),
    "dk_cpr": (
        _cpr,
        [(lambda v: f"{v[:6]}-{v[6:]}", False), (lambda v: v, False)],
        ["CPR", "CPR-nr.", "CPR-nummer", "personnummer"],
        ["cpr", "cpr_nr"],
    ),
    "no_fodselsnummer": (
        _fnr,
        [(lambda v: v, True), (lambda v: f"{v[:6]} {v[6:]}", True)],
        ["fødselsnummer", "fnr", "fødselsnr."],
        ["fodselsnummer", "fnr"],
    ),
    "pt_nif": (
        _nif,
        [
            (lambda v: v, False),
            (lambda v: f"{v[:3]} {v[3:6]} {v[6:]}", False),
            (lambda v: f"PT{v}", True),
        ],
        ["NIF", "nº de contribuinte", "número de identificação fiscal", "NIF/NIPC"],
        ["nif", "contribuinte"],
    ),
    "tr_tckimlik": (
        _tc,
        [(lambda v: v, True)],
        ["T.C. Kimlik No", "TC Kimlik", "TCKN", "kimlik numarası"],
        ["tckn", "tc_kimlik_no"],
    ),
    "za_idnr": (
        _za,
        [(lambda v: v, True), (lambda v: f"{v[:6]} {v[6:10]} {v[10:12]} {v[12]}", True)],
        ["ID number", "SA ID", "RSA ID no", "identity number"],
        ["id_number", "sa_id"],
    ),
    "sg_nric": (
        _nric,
        [(lambda v: v, True)],
        ["NRIC", "FIN", "NRIC/FIN", "NRIC no."],
        ["nric", "fin"],
    ),
    "ar_dni": (
        _dni_ar,
        [(_dotted, False), (lambda v: v, False)],
        ["DNI", "D.N.I.", "DNI N°", "documento nacional de identidad"],
        ["dni"],
    ),
    "ar_cuit": (
        _cuit,
        [(lambda v: f"{v[:2]}-{v[2:10]}-{v[10]}", True), (lambda v: v, False)],
        ["CUIT", "CUIL", "CUIT/CUIL", "C.U.I.T."],
        ["cuit", "cuil"],
    ),
    "cl_rut": (
        _rut,
        [
            (lambda v: f"{_dotted(v[:-1])}-{v[-1]}", True),
            (lambda v: f"{_dotted(v[:-1])}-{v[-1].lower()}", True),
            (lambda v: f"{v[:-1]}-{v[-1]}", False),
            (lambda v: v, False),
        ],
        ["RUT", "RUN", "R.U.T.", "Rol Único Tributario"],
        ["rut", "run"],
    ),
}
KINDS = tuple(_IDS)

# ----------------------------------------------------------------------------- contexts

_LABELLED = [
    "{label}: {v}",
    "{label} {v}",
    "My {label} is {v}, please update the file.",
    "Mi {label} es {v}, gracias.",
    "Meu {label} é {v}.",
    "Mój {label} to {v}.",
    "Mitt {label} är {v}.",
    "Mit {label} er {v}.",
    "Mitt {label} er {v}, takk.",
    "Mon {label} est le {v}.",
    "Meine {label} lautet {v}.",
    "Benim {label} {v}, teşekkürler.",
    "我的{label}是{v}，谢谢。",
    "{label}：{v}",
    "제 {label}은 {v}입니다.",
    "Hi team — customer's {label} = {v}. Thanks!",
    "> {label}: {v}\n> Sent from my phone",
    "[10:32] ana: my {label} is {v}",
    "- {label}: {v}\n- status: pending",
    "2024-05-02 10:14:22 INFO kyc.verify {label}={v} result=ok",
]
_STRUCTURED = [
    '{{"name": "Ana Silva", "{key}": "{v}", "verified": true}}',
    '{{"customer": {{"{key}": "{v}"}}}}',
    'person:\n  name: Ana Silva\n  {key}: "{v}"\n  city: Lima\n',
    "person:\n  {key}: {v}\n",
    "name,{key},city\nAna Silva,{v},Lima\n",
    "name;{key};city;status\nJan Kowalski;{w};Kraków;ok\nAna Silva;{v};Lima;ok\n",
    "INSERT INTO customers (name, {key}) VALUES ('Ana Silva', '{v}');",
    "UPDATE people SET {key} = '{v}' WHERE id = 42;",
    "<customer><name>Ana Silva</name><{key}>{v}</{key}></customer>",
    '<field name="{key}" value="{v}"/>',
    "ts=2024-05-02T10:14:22Z level=info msg=verified {key}={v}",
    "| name | {label} |\n|---|---|\n| Ana Silva | {v} |",
    "{key}={v}",
]
_NEUTRAL = [
    "{v}",
    "Please check {v} before Friday.",
    "It is {v}, I think.",
    "Value: {v}",
    "<td>{v}</td>",
    '{{"value": "{v}"}}',
    "Summarise this: the customer sent {v} in the chat.",
    "Ana Silva, {v}, Lima",
    "> {v}\n> Sent from my phone",
    "王伟 {v}",
]


def _context(rng: random.Random, label: str, key: str, v: str, w: str, labelled: bool) -> str:
    if not labelled:
        return rng.choice(_NEUTRAL).format(v=v)
    template = rng.choice(_LABELLED + _STRUCTURED)
    return template.format(label=label, key=key, v=v, w=w)


# ----------------------------------------------------------------------------- cards, IBANs

_MAJOR = ["visa", "mastercard", "amex", "discover", "jcb", "unionpay"]


def _major_card(rng: random.Random) -> tuple[str, str]:
    network = rng.choice(_MAJOR)
    prefixes, _ = _CARD_NETWORKS[network]
    length = 15 if network == "amex" else 16
    prefix = rng.choice(prefixes)
    return _luhn_complete(prefix + _d(rng, length - len(prefix) - 1)), network


def _groups(v: str, sep: str) -> str:
    sizes = [4, 6, 5] if len(v) == 15 else [4, 4, 4, 4]
    out, pos = [], 0
    for n in sizes:
        out.append(v[pos : pos + n])
        pos += n
    return sep.join(out)


def _card_spelling(rng: random.Random, kind: str, v: str) -> str:
    spaced = _groups(v, " ")
    if kind == "card_dots":
        return rng.choice(["card {x}", "{x}", "Visa: {x}", "Kartennummer {x}"]).format(
            x=_groups(v, ".")
        )
    if kind == "card_compact":
        return rng.choice(["{x}", "cc={x}", '"pan": "{x}"', "paid with {x} yesterday"]).format(x=v)
    if kind == "card_dashes":
        return rng.choice(["{x}", "tarjeta {x}", "card: {x}"]).format(x=_groups(v, "-"))
    if kind == "card_after_word":
        word = rng.choice(["order", "ref", "card", "cc", "pago", "visa", "num", "Order", "REF"])
        return rng.choice(["{w}{x}", "see {w}{x} please", "{w}{y}"]).format(
            w=word, x=v, y=_groups(v, "-")
        )
    if kind == "card_after_ref":
        word = rng.choice(
            ["order", "ref", "Ref.", "order #", "Order no.", "reference", "invoice", "booking ref"]
        )
        return rng.choice(["{w} {x}", "{w}: {x}", "Re: {w} {x}"]).format(
            w=word, x=rng.choice([v, spaced, _groups(v, "-")])
        )
    head, tail = _split(rng, spaced)
    if kind == "card_wrapped":
        return rng.choice(
            ["my card is {h}\n{t} thanks", "card number {h}\n{t}", "{h}\r\n{t}"]
        ).format(h=head, t=tail)
    if kind == "card_quoted_wrap":
        quote = rng.choice(["> ", ">> ", "> > ", ">"])
        return f"{quote}my card is {head}\n{quote}{tail} exp 12/27\n\nThanks, noted."
    # card_chat_wrap
    who = rng.choice(["ana", "Bob Smith", "user", "customer"])
    stamp = rng.choice(["[10:32] ", "10:32 ", "", "[2024-05-02 10:32] "])
    return f"{stamp}{who}: the card is {head}\n{stamp}{who}: {tail}\n{stamp}agent: thanks"


def _split(rng: random.Random, spaced: str) -> tuple[str, str]:
    groups = spaced.split(" ")
    cut = rng.randint(1, len(groups) - 1)
    return " ".join(groups[:cut]), " ".join(groups[cut:])


def _iban_spelling(rng: random.Random, kind: str, compact: str) -> str:
    spaced = std_iban.format(compact)
    if kind == "iban_lower":
        x = rng.choice([spaced, compact]).lower()
        return rng.choice(["iban {x}", "{x}", "konto: {x}", '"iban": "{x}"']).format(x=x)
    if kind == "iban_dots":
        return rng.choice(["IBAN {x}", "{x}"]).format(x=spaced.replace(" ", "."))
    if kind == "iban_dashes":
        return rng.choice(["IBAN {x}", "{x}", "cuenta {x}"]).format(x=spaced.replace(" ", "-"))
    if kind == "iban_after_word":
        word = rng.choice(["IBAN", "iban", "Konto", "ref", "acct"])
        return rng.choice(["{w}{x}", "pay to {w}{x} today"]).format(w=word, x=compact)
    groups = spaced.split(" ")
    cut = rng.randint(2, len(groups) - 1)
    head, tail = " ".join(groups[:cut]), " ".join(groups[cut:])
    if kind == "iban_wrapped":
        return f"IBAN {head}\n{tail}\nBIC COBADEFFXXX"
    quote = rng.choice(["> ", ">> ", "> > "])
    return f"{quote}please pay to IBAN {head}\n{quote}{tail}\n\nDone."


CARD_KINDS = (
    "card_dots",
    "card_compact",
    "card_dashes",
    "card_after_word",
    "card_after_ref",
    "card_wrapped",
    "card_quoted_wrap",
    "card_chat_wrap",
)
IBAN_KINDS = (
    "iban_lower",
    "iban_dots",
    "iban_dashes",
    "iban_after_word",
    "iban_wrapped",
    "iban_quoted_wrap",
)


def positives(seed: int = 1234, per_kind: int = 200) -> Iterator[Sample]:
    """Yield texts that each hold one national id, card or IBAN.

    Args:
        seed: Seed of the random generator.
        per_kind: How many texts to make for each kind.

    Yields:
        Samples whose ``detector`` must fire on ``text``.
    """
    rng = random.Random(seed)
    for kind, (make, formats, labels, keys) in _IDS.items():
        for _ in range(per_kind):
            fmt, evident = rng.choice(formats)
            v = fmt(make(rng))
            w = fmt(make(rng))
            labelled = not evident or rng.random() < 0.6
            text = _context(rng, rng.choice(labels), rng.choice(keys), v, w, labelled)
            yield Sample(text, "national_id", kind, v)
    for kind in CARD_KINDS:
        for _ in range(per_kind):
            v, _network = _major_card(rng)
            yield Sample(_card_spelling(rng, kind, v), "payment_card", kind, v)
    for kind in IBAN_KINDS:
        for _ in range(per_kind):
            v = _iban(rng, _IBAN_STRUCTURE)[0].replace(" ", "")
            yield Sample(_iban_spelling(rng, kind, v), "iban", kind, v)


# ----------------------------------------------------------------------------- benign


def _gtin(rng: random.Random, n: int, prefix: str = "") -> str:
    body = prefix + _d(rng, n - 1 - len(prefix))
    check = -sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body))) % 10
    return body + str(check)


def _bad(rng: random.Random) -> str:
    """An id of this corpus next to its label, with a wrong check digit."""
    # No check digit to get wrong: a DNI, a CPR, a Korean RRN issued since 2020.
    kind = rng.choice([k for k in KINDS if k not in ("ar_dni", "dk_cpr", "kr_rrn")])
    make, formats, labels, _keys = _IDS[kind]
    good = make(rng)
    last = good[-1]
    alphabet = UPPER if last.isalpha() else DIGITS
    bad = good[:-1] + rng.choice([c for c in alphabet if c != last])
    if kind == "au_medicare":  # the check digit is the ninth
        bad = good[:8] + str((int(good[8]) + rng.randint(1, 9)) % 10) + good[9:]
    fmt, _ = formats[0]
    return f"{rng.choice(labels)} {fmt(bad)}"


def _benign_values(r: random.Random) -> dict[str, Callable[[], str]]:
    return {
        "measurement": lambda: r.choice(
            [
                f"{r.randint(10**6, 10**12)} bytes",
                f"{r.randint(10**8, 10**11)} ms",
                f"transferred {r.randint(10**9, 10**11)} B in {r.randint(2, 99)} s",
                f"{r.randint(10**6, 10**9)} km",
                f"{r.randint(1, 9)}.{_d(r, 3)}.{_d(r, 3)} bytes",
                f"distance: {r.randint(10**8, 10**10)} m",
                f"{r.randint(10**7, 10**11)} tokens",
                f"{r.randint(10**8, 10**12)} rows scanned",
            ]
        ),
        "total": lambda: r.choice(
            [
                f"Total: {r.randint(10**8, 10**12)}",
                f"Grand total {r.randint(10**8, 10**12)}",
                f"sum = {r.randint(10**8, 10**12)}",
                f"balance {r.randint(10**8, 10**12)}",
                f"Subtotal: {r.randint(10**6, 10**9):,}.{r.randint(0, 99):02d}",
                f"population {r.randint(10**6, 10**10):,}",
                f"revenue {r.randint(10**9, 10**12)}",
            ]
        ),
        "lottery": lambda: r.choice(
            [
                "Winning numbers: "
                + " ".join(f"{n:02d}" for n in sorted(r.sample(range(1, 50), 6))),
                "Powerball "
                + "-".join(f"{n:02d}" for n in sorted(r.sample(range(1, 70), 5)))
                + f" ({r.randint(1, 26):02d})",
                "Lotto 6/49: " + ", ".join(str(n) for n in sorted(r.sample(range(1, 50), 6))),
                "EuroMillions "
                + " ".join(f"{n:02d}" for n in sorted(r.sample(range(1, 51), 5)))
                + " + "
                + " ".join(f"{n:02d}" for n in sorted(r.sample(range(1, 13), 2))),
            ]
        ),
        "barcode": lambda: r.choice(
            [
                f"EAN {_gtin(r, 13, r.choice(['40', '50', '76', '80', '69', '35']))}",
                _gtin(r, 13, r.choice(["400", "401", "500", "690", "880", "600", "789", "590"])),
                f"UPC {_gtin(r, 12, '0')}",
                _gtin(r, 12, r.choice(["0", "6", "5"])),
                f"GTIN-14: {_gtin(r, 14, r.choice(['1', '3', '5']))}",
                f"barcode {_gtin(r, 13, '4')}",
                f"ISBN {_gtin(r, 13, '978')}",
                f"item,ean\nwidget,{_gtin(r, 13, '4')}\n",
            ]
        ),
        "phone_like": lambda: r.choice(
            [
                f"ext. {r.randint(1000, 9999)}",
                f"room {r.randint(100, 999)}-{r.randint(10, 99)}",
                f"flight LH{r.randint(100, 9999)}",
                f"PIN {r.randint(1000, 9999)}",
                f"port {r.randint(1024, 65535)}",
            ]
        ),
        "date": lambda: r.choice(
            [
                f"{r.randint(1990, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(1990, 2030)}",
                f"{r.randint(1990, 2030)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}",
                f"{r.randint(1990, 2030)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
                f"{r.randint(0, 23):02d}{r.randint(0, 59):02d}",
                f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(1990, 2030)} 14:22",
                f"ts {r.randint(1_600_000_000_000, 1_800_000_000_000)}",
                f"epoch {r.randint(1_500_000_000, 1_900_000_000)}",
                f"backup {r.randint(2015, 2026)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}-"
                f"{r.randint(0, 23):02d}{r.randint(0, 59):02d}",
                f"run {r.randint(15, 26)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}-"
                f"{r.randint(0, 23):02d}{r.randint(0, 59):02d} done",
            ]
        ),
        "version": lambda: r.choice(
            [
                f"v{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 200)}",
                f"{r.randint(1, 20)}.{r.randint(0, 99)}.{r.randint(0, 9999)}.{r.randint(0, 99999)}",
                f"build {r.randint(10, 11)}.0.{r.randint(10000, 26000)}.{r.randint(1000, 6000)}",
                f"release-{r.randint(2019, 2026)}.{r.randint(1, 12):02d}.{r.randint(1, 9)}",
            ]
        ),
        "uuid": lambda: str(uuid.UUID(int=r.getrandbits(128))),
        "hash": lambda: r.choice(
            [
                f"sha256:{''.join(r.choices(HEX, k=64))}",
                f"commit {''.join(r.choices(HEX, k=40))}",
                f"md5 {''.join(r.choices(HEX, k=32))}",
                f"blob {''.join(r.choices(DIGITS + 'ab', k=40))}",
            ]
        ),
        "order_number": lambda: r.choice(
            [
                f"Order #{r.randint(10**8, 10**13)}",
                f"invoice {r.randint(10**8, 10**12)}",
                f"order no. {_d(r, 11)}",
                f"ticket {_d(r, 9)}",
                f"Bestellnummer {_d(r, 12)}",
                f"tracking {_d(r, 13)}",
                f"ref {_d(r, 10)}",
                f"pedido nº {_d(r, 11)}",
            ]
        ),
        "bare_number": lambda: r.choice(
            [
                f"job {_d(r, 9)} finished",
                f"user id {r.randint(10**8, 10**9)}",
                f"batch {_d(r, 10)}",
                f"shard {_d(r, 7)}",
                f"{_d(r, 8)} views",
                f"row {r.randint(10**6, 10**9)}",
                f"account 10-{_d(r, 6)}",
            ]
        ),
        "bad_check_digit": lambda: _bad(r),
    }


_BENIGN_SENTENCES = [
    "{v}",
    "Please check {v} and let me know.",
    "See {v} for details.",
    "log: {v} processed in 12ms",
    '{{"note": "{v}", "ok": true}}',
    "| {v} | done |",
    "Merci de vérifier {v}.",
    "Por favor revise {v}.",
    "请检查 {v}",
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
