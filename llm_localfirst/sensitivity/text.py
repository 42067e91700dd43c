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
        # Words, split where the script changes: "RRN은", "的NIF是" hold the label.
        self.camel = re.compile(r"(?<=[a-z])(?=[A-Z])")
        self.word = re.compile(r"[A-Za-z\u00c0-\u024f]+|[^\W\d_A-Za-z\u00c0-\u024f]+")
        self.date = re.compile(_DATE)
        # The digit groups of a run; "2A" and "2B" are the Corsican départements.
        self.groups = re.compile(r"2[AB](?![0-9])|[0-9]+(?:(?<=2)[AB][0-9]+)?")
        # What may start the next line of a value broken across lines: quote marks
        # of e-mail replies ("> > "), a chat line's time and speaker ("[10:32] Ana: ").
        self.continuation = re.compile(
            r"[ \t]*\r?\n(?:[ \t]*>)*[ \t]*(?:\[[^\]\n]{1,32}\][ \t]*)?"
            r"(?:[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?[ \t]+)?(?:[^\s:>\[\]0-9][^\n:]{0,30}:[ \t]+)?"
            r"(?P<digits>[0-9]{1,6}(?:[ .\-][0-9]{1,6}){0,4})(?![0-9A-Za-z])"
        )
        self.alnum_continuation = re.compile(
            r"[ \t]*\r?\n(?:[ \t]*>)*[ \t]*(?:\[[^\]\n]{1,32}\][ \t]*)?"
            r"(?:[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?[ \t]+)?(?:[^\s:>\[\]0-9][^\n:]{0,30}:[ \t]+)?"
            r"(?P<groups>[0-9A-Za-z](?:[ .\-]?[0-9A-Za-z]){0,31})(?![0-9A-Za-z])"
        )
        self.line_prefix = re.compile(
            r"(?:[ \t]*>)*[ \t]*(?:\[[^\]\n]{1,32}\][ \t]*)?"
            r"(?:[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?[ \t]+)?(?:[^\s:>\[\]0-9][^\n:]{0,30}:[ \t]+)?"
        )
        self.line_tail = re.compile(
            r"(?<![0-9A-Za-z.,:/-])[0-9]{1,6}(?:[ .\-][0-9]{1,6}){0,3}[ \t]*\r?(?=\n)"
        )
        # Digit groups after a word ("order4111 1111 1111 1111"), and an IBAN's groups.
        self.card_run = re.compile(r"[0-9]{1,19}(?:[ .\-\u00a0][0-9]{1,6}){0,5}")
        # One way only to read each character (no nested counts): linear backtracking.
        self.iban_run = re.compile(r"[0-9]{2}(?:[ .\-]?[0-9A-Za-z]){11,32}(?![0-9A-Za-z])")


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
    "電話",
    "携帯",
    "☎",
    "📞",
    "📱",
)
_CTX_CARD = _words(
    "card cards carte karte kartennummer tarjeta carta cartão cartao visa mastercard amex cc"
    " credit debit cvv cvc expiry exp pan paid charge charged",
    "kreditkarte",
    "クレジット",
    "カード",
)
_CTX_ID_CARD = _words("perso", "ausweis", "id card", "identity card", "identity document")
# Labels of other identifiers: a number next to "NHS" or "SSN" is no phone number.
_CTX_ID = _words(
    "ssn itin nhs bsn sofinummer aadhaar aadhar uid cpf cnpj idnr iban nir insee dni nie"
    " nino pan pesel personnummer cpr fødselsnummer tckn kimlik curp cuit cuil tfn medicare ahv"
    " nric rrn pnr personnr nif rut sin nas fnr fødselsnr insz niss rijksregisternummer"
    " contribuinte tckimlik sozialversicherungsnummer avs",
    "s.i.n.",
    "ausweis",
    "assurance sociale",
    "social security",
    "national insurance",
    "steuer",
    "burgerservice",
    "my number",
    "マイナンバー",
    "個人番号",
    "sécurité sociale",
    "codice fiscale",
    # The ids of national_ids.py, by their unambiguous labels only ("sin", "run"
    # and "nas" are common words too).
    "身份证",
    "身份證",
    "주민등록",
    "social insurance",
    "tax file",
    "rijksregister",
    "registre national",
)
# Labels any national id may have, as whole words: " id number " is no "valid number".
_ANY_ID_PHRASES = (
    " national id ",
    " national identity ",
    " personal id ",
    " id number ",
    " id no ",
    " id nr ",
    " identity number ",
    " identity no ",
    " identification number ",
    " citizen id ",
    " documento de identidad ",
    " número de identificación ",
    " numero de identificacion ",
    " numéro d identité ",
    " numéro d identification ",
    " numero di identificazione ",
    " identiteitsnummer ",
    " identifikationsnummer ",
    " personennummer ",
    " numer identyfikacyjny ",
    " kimlik numarası ",
    " 身份证 ",
    " 证件号码 ",
)
# Words that make "ID number" some other thing's number: "customer ID number".
_NOT_PERSON_IDS = _words(
    "customer user account client order invoice transaction ticket session request employee"
    " member product device tracking reference case booking store vendor supplier item job"
    " task build app group message event trace span tax vat company business"
).words
_CTX_NOT_PERSONAL = _words(
    "order invoice inv tracking track ref reference ticket case sku isbn serial part po"
    " receipt confirmation booking transaction txn build version batch lot item product"
    " shipment parcel no nr total subtotal sum amount balance qty quantity population revenue"
    " checksum crc seed timestamp epoch lottery lotto draw jackpot ean upc gtin barcode"
    " euromillions powerball megamillions winning keno bingo loto pedido factura fatura commande"
    " facture rechnung bestellung bestellnummer ordine fattura zamówienie faktura sipariş",
    "#",
    "nº",
    "n°",
    "n.º",
    "订单",
    "注文",
)
# Barcodes, whose check digits some card and id numbers pass by chance.
_CTX_BARCODE = _words(
    "ean ean13 upc gtin barcode isbn issn sku asin",
    "code-barres",
    "code barre",
    "strichcode",
    "código de barras",
    "codice a barre",
)
# Units and counted things: "12345678901 bytes" is a measurement, not an id.
_UNITS = _words(
    "b kb mb gb tb pb kib mib gib bytes byte bits ms ns us µs s sec secs seconds min mins "
    "minutes h hrs hours days m km cm mm kg g mg lb lbs oz mi ft px dpi hz khz mhz ghz w kw "
    "kwh mah v usd eur gbp jpy cny inr brl chf sek nok dkk pln try zar sgd ars clp mxn cad "
    "aud krw units items rows records users views visits downloads requests tokens words "
    "chars characters times points votes steps calories kcal people pcs pieces copies hits "
    "impressions clicks sessions events lines files"
).words


def _lowered(text: str, lo: int, hi: int) -> str:
    """The window of ``text`` where words are looked for, "social_insurance_number" and
    "SocialInsuranceNumber" (keys of JSON, XML, code) as words too."""
    window = text[max(0, lo) : hi]
    if not window.islower():
        split = _rx().camel.sub(" ", window)
        if split != window:  # both readings: "IdNr" is "idnr", "nroDocumento" "nro documento"
            window = f"{window} | {split}"
    return window.lower().replace("_", " ")


# The window read last and its words: a value's readings ask about the same window
# for one context after another. One tuple, replaced whole (threads share scanners).
_last_window: tuple[str, int, int, str, frozenset[str]] | None = None


def _has_words(text: str, lo: int, hi: int, ctx: _Words) -> bool:
    global _last_window
    last = _last_window
    if last is not None and last[0] is text and last[1] == lo and last[2] == hi:
        window, words = last[3], last[4]
    else:
        window = _lowered(text, lo, hi)
        words = frozenset(_rx().word.findall(window))
        _last_window = (text, lo, hi, window, words)
    if not ctx.words.isdisjoint(words):
        return True
    return any(phrase in window for phrase in ctx.phrases)


def _near(text: str, start: int, end: int, ctx: _Words) -> bool:
    """Whether a context word occurs shortly before or just after a span."""
    return _has_words(text, start - 40, end + 20, ctx)


def _column_labelled(text: str, start: int, ctx: _Words) -> bool:
    """Whether the header of the CSV column a position is in holds a context word."""
    span = _csv_header(text, start)
    return span is not None and _has_words(text, span[0], span[1], ctx)


class _Labels:
    """The words around a value where an id's label may be: a wide window, a CSV header.

    Labels of ids are farther away than a phone's "Tel:": in SQL ("INSERT INTO p
    (name, ssn) VALUES ('Ana Silva', '...')") or in a CSV row under its header. Read
    once per value, however many ids are tried on it (`_labels_at`).
    """

    __slots__ = ("_any_id", "header", "header_words", "window", "words")

    def __init__(self, text: str, start: int, end: int) -> None:
        self.window = _lowered(text, start - 80, end + 24)
        self.words = frozenset(_rx().word.findall(self.window))
        span = _csv_header(text, start)
        self.header = _lowered(text, *span) if span else ""
        self.header_words = frozenset(_rx().word.findall(self.header)) if span else frozenset()
        self._any_id: bool | None = None

    def any_id(self) -> bool:
        """Whether a label any national id may have is near: "ID number", "national ID"."""
        if self._any_id is None:
            self._any_id = any(
                _any_id_label(" ".join(_rx().word.findall(part)))
                for part in (self.window, self.header)
                if "id" in part or "ident" in part or "身份" in part or "证件" in part
            )
        return self._any_id

    def has(self, label: _Words) -> bool:
        return (
            not label.words.isdisjoint(self.words)
            or any(p in self.window for p in label.phrases)
            or not label.words.isdisjoint(self.header_words)
            or any(p in self.header for p in label.phrases)
        )


# The labels of the value read last: a run's readings ask for them one after another.
# One tuple, replaced whole, so that threads sharing a scanner never mix two entries.
_last_labels: tuple[str, int, int, _Labels] | None = None


def _labels_at(text: str, start: int, end: int) -> _Labels:
    global _last_labels
    last = _last_labels
    if last is not None and last[0] is text and last[1] == start and last[2] == end:
        return last[3]
    labels = _Labels(text, start, end)
    _last_labels = (text, start, end, labels)
    return labels


def _any_id_label(words: str) -> bool:
    joined = f" {words} "
    for phrase in _ANY_ID_PHRASES:
        at = joined.find(phrase)
        if at >= 0:
            before = joined[:at].rsplit(" ", 1)[-1]
            if before not in _NOT_PERSON_IDS:
                return True
    return False


def _forget() -> None:
    """Drop the windows read last, so that no text outlives the scan that read it."""
    global _last_window, _last_labels
    _last_window = _last_labels = None


def _labelled_by(text: str, start: int, end: int, ctx: _Words) -> bool:
    """Whether an id's label is near, as far as a SQL column list, or heads its CSV column."""
    return _labels_at(text, start, end).has(ctx)


def _id_labelled_by(text: str, start: int, end: int, ctx: _Words) -> bool:
    """Whether an id's own label, or one any id may have ("ID number"), is near."""
    labels = _labels_at(text, start, end)
    return labels.has(ctx) or labels.any_id()


# A CSV row longer than this is no row; a header more than _HEADER_ROWS rows up is not
# looked for (the first rows under it have found the table sensitive already).
_MAX_ROW = 1000
_HEADER_ROWS = 50


def _csv_header(text: str, start: int) -> tuple[int, int] | None:
    """Span of the header line of the delimited block a position is in, if any.

    Bounded: it reads at most _HEADER_ROWS rows of at most _MAX_ROW characters.
    """
    newline = text.rfind("\n", max(0, start - _MAX_ROW), start)
    if newline < 0:
        return None  # the first line, or a line too long for a CSV row
    line_start = newline + 1
    line_end = text.find("\n", start, start + _MAX_ROW)
    line = text[line_start : line_end if line_end >= 0 else start + _MAX_ROW]
    delimiter = next((d for d in ",;\t|" if d in line), None)
    if delimiter is None:
        return None
    top = line_start
    for _ in range(_HEADER_ROWS):
        lo = top - 1 - _MAX_ROW
        newline = text.rfind("\n", max(0, lo), top - 1)
        if newline < 0 and lo > 0:
            break  # a row too long
        above = newline + 1
        if delimiter not in text[above : top - 1]:
            break
        top = above
        if top == 0:
            break
    if top == line_start:
        return None
    header_end = text.find("\n", top, top + 400)
    return top, header_end if header_end >= 0 else top + 400


def _unit_after(text: str, end: int) -> bool:
    """Whether a unit or counted noun follows a number: "12345678901 bytes"."""
    m = _rx().word.match(text, end + 1 if text[end : end + 1] == " " else end)
    return m is not None and m.start() <= end + 1 and m.group().lower() in _UNITS


def _not_personal(text: str, start: int) -> bool:
    """Whether a word such as "order" or "invoice" comes just before a span."""
    return _has_words(text, start - 24, start, _CTX_NOT_PERSONAL)


def _joins(char: str) -> bool:
    """Whether ``char`` joins a value to a word; CJK text has no spaces between them."""
    return char.isalnum() and char < "\u2e80"


def _char_classes(value: str) -> int:
    """How many of lower case, upper case, digits and symbols ``value`` mixes."""
    chars = set(value)
    return sum(
        (
            any(c.islower() for c in chars),
            any(c.isupper() for c in chars),
            any(c.isdigit() for c in chars),
            any(not c.isalnum() for c in chars),
        )
    )


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())
