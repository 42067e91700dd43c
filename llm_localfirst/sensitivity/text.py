"""What the detectors read around and inside a value: context words and character tests.

This module owns the label words that make a weak candidate count ("SSN", "phone",
"card") or not count ("order", "invoice"), and the small text helpers that several
detectors share. Its patterns are compiled on first use, never at import.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import NamedTuple

# A date, which no detector reports as a number: "2024-03-15", "15.03.24".
_DATE = (
    r"(?:19|20)[0-9]{2}([-./])[01]?[0-9]\1[0-3]?[0-9]"
    r"|[0-3]?[0-9]([-./])[01]?[0-9]\2(?:19|20)?[0-9]{2}"
)


class _Rx:
    """The shared patterns, compiled together the first time a detector needs one."""

    def __init__(self) -> None:
        self.word = re.compile(r"[^\W\d_]+")
        self.date = re.compile(_DATE)
        # The digit groups of a run; "2A" and "2B" are the Corsican départements.
        self.groups = re.compile(r"2[AB](?![0-9])|[0-9]+(?:(?<=2)[AB][0-9]+)?")


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


def _joins(char: str) -> bool:
    """Whether ``char`` joins a value to a word; CJK text has no spaces between them."""
    return char.isalnum() and char < "\u2e80"


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
