"""Tokens that start with a capital: IBANs, lettered national ids, cloud provider keys.

This module owns the capitals half of the pass over digits and capitals: IBANs
(mod-97, then python-stdnum's country structure; also in lower case, right after
a word, with dots or dashes, or broken across lines), UK National Insurance
numbers, Italian codici fiscali, Indian PANs, Spanish NIEs, Mexican CURPs,
Singapore NRIC/FINs, German identity cards (whose weak check digit needs a label
nearby), and keys with a fixed capitalised prefix
(AWS, Google Cloud, SendGrid, Twilio, Azure).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .checksums import _icao_check, _stdnum
from .finding import Finding
from .ibans import _iban
from .national_ids import mx_curp, sg_nric
from .secrets import _on_caps_secret
from .text import _CTX_ID_CARD, _id_labelled_by, _joins, _words

_CAPS = (
    r"(?=[A-Z0-9.-]|ccountKey|haredAccess|Iza)(?:"
    r"[A-Z][0-9]{2}(?:[ .\-]?[A-Z0-9]{4}){2,8}(?:[ .\-]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])(?P<iban>)"
    r"|(?:(?<=[A-CEGHJ-PR-TW-Z])[A-CEGHJ-NPR-TW-Z]|(?<=Q)Q)"  # QQ: HMRC's example prefix
    r"[ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[A-D](?![A-Za-z0-9])(?P<gb_nino>)"
    r"|[A-Z]{5}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]"
    r"(?![A-Za-z0-9])(?P<it_codice_fiscale>)"
    r"|[A-Z]{2}[ABCFGHLJPTK][A-Z][0-9]{4}[A-Z](?![A-Za-z0-9])(?P<in_pan>)"
    r"|[A-Z]{3}[0-9]{6}[HMX][A-Z]{5}[0-9A-Z][0-9](?![A-Za-z0-9])(?P<mx_curp>)"
    r"|(?<=[STFGM])[0-9]{7}[A-Z](?![A-Za-z0-9])(?P<sg_nric>)"
    r"|(?<=P)T[0-9]{9}(?![A-Za-z0-9])(?P<pt_nif>)"
    r"|(?<=[XYZ])[- ]?[0-9]{7}[- ]?[A-Z](?![A-Za-z0-9])(?P<es_nie>)"
    r"|(?<=[CFGHJKLMNPRTVWXYZ])[CFGHJKLMNPRTVWXYZ0-9]{8}[ ]?[0-9](?![A-Za-z0-9])"
    r"(?P<de_id_card>)"
    r"|[A-Z][0-9]{2}[ .\-]?[A-Z0-9]{4}(?=[ \t]*\r?\n)(?P<iban_head>)"  # wrapped after 1 group
    r"|(?<=A)(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|PKA|ROA|SCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"(?P<aws_access_key>)"
    r"|(?<=A)Iza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])(?P<gcp_api_key>)"
    r"|(?<=S)G\.[\w-]{16,32}\.[\w-]{16,64}(?P<sendgrid_key>)"
    r"|(?:(?<=A)C|(?<=S)K)[0-9a-f]{32}(?![A-Za-z0-9])(?P<twilio_key>)"
    r"|(?<=A)ccountKey=[A-Za-z0-9+/]{40,100}={0,2}(?P<azure_storage_key>)"
    r"|(?<=S)haredAccess(?:Key|Signature)=[A-Za-z0-9+/%=&:.-]{20,256}(?P<azure_shared_key>)"
    r")"
)
# Lettered ids in lower case, as typed in chat ("s1234567d", "rssmra85t10a562s"): found
# by the digit pass at their first digit after a letter, so no pass starts at every letter.
_LOWER_IDS = (
    r"(?<=[stfgmxyz][0-9])(?<![A-Za-z0-9_][a-z][0-9])[0-9]{6}[a-z](?![A-Za-z0-9])"  # NRIC, NIE
    r"|(?<=[a-z]{2}[0-9])(?<![A-Za-z0-9_][a-z]{2}[0-9])[0-9]{5}[a-d](?![A-Za-z0-9])"  # NINO
    r"|(?<=[a-z]{4}[0-9])(?<![A-Za-z0-9_][a-z]{4}[0-9])"
    r"[0-9]{5}[hmx][a-z]{5}[0-9a-z][0-9](?![A-Za-z0-9])"  # CURP
    r"|(?<=[a-z]{5}[0-9])(?<![A-Za-z0-9_][a-z]{5}[0-9])[0-9]{3}[a-z](?![A-Za-z0-9])"  # PAN
    r"|(?<=[a-z]{6}[0-9])(?<![A-Za-z0-9_][a-z]{6}[0-9])"
    r"[0-9lmnpqrstuv][abcdehlmprst][0-9lmnpqrstuv]{2}[a-z][0-9lmnpqrstuv]{3}[a-z](?![A-Za-z0-9])"
)
_LOWER_ID_RUN = re.compile(r"[a-z]+[0-9][0-9a-z]*")
# The kinds a lower-case run may be, by its length; each checked as in capitals.
_LOWER_ID_SHAPES = {
    9: (
        ("sg_nric", re.compile(r"[STFGM][0-9]{7}[A-Z]")),
        ("es_nie", re.compile(r"[XYZ][0-9]{7}[A-Z]")),
        ("gb_nino", re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]")),
    ),
    10: (("in_pan", re.compile(r"[A-Z]{3}[ABCFGHLJPTK][A-Z][0-9]{4}[A-Z]")),),
    16: (
        (
            "it_codice_fiscale",
            re.compile(
                r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z]"
                r"[0-9LMNPQRSTUV]{3}[A-Z]"
            ),
        ),
    ),
    18: (("mx_curp", re.compile(r"[A-Z]{4}[0-9]{6}[HMX][A-Z]{5}[0-9A-Z][0-9]")),),
}
_LOWER_ID_LABELS = {
    "gb_nino": _words("nino", "ni number", "ni no", "ni-number", "national insurance"),
    "in_pan": _words("pan", "permanent account number"),
}
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _on_caps(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start, end = m.span()
    kind = m.lastgroup or ""
    if start and (_joins(text[start - 1]) or text[start - 1] == "_"):
        return
    value = m.group()
    if kind in ("iban", "iban_head"):
        if "iban" in wanted:
            yield from _iban(text, value, start)
    elif kind in (
        "gb_nino",
        "it_codice_fiscale",
        "in_pan",
        "es_nie",
        "mx_curp",
        "sg_nric",
        "pt_nif",
    ):
        if "national_id" in wanted and _valid_caps_id(kind, value):
            yield Finding("national_id", kind, start, end)
    elif kind == "de_id_card":
        # The ICAO 9303 check digit passes one random value in ten: ask for a label.
        if (
            "national_id" in wanted
            and _icao_check(value.replace(" ", ""))
            and _id_labelled_by(text, start, end, _CTX_ID_CARD)
        ):
            yield Finding("national_id", kind, start, end)
    elif "secret" in wanted:
        # Placeholders and documented example keys are told apart in `secrets`.
        yield from _on_caps_secret(text, kind, start, end)


def _on_lower_id(text: str, at: int, wanted: frozenset[str]) -> Iterator[Finding]:
    """A lettered id in lower case (NRIC, NIE, NINO, PAN, CURP, codice fiscale), from its
    first digit."""
    if "national_id" not in wanted:
        return
    start = at - 1
    while start > max(0, at - 7) and text[start - 1].isalpha():  # six letters at most
        start -= 1
    m = _LOWER_ID_RUN.match(text, start)
    if m is None or m.start() != start:
        return
    value = m.group().upper()
    for kind, shape in _LOWER_ID_SHAPES.get(len(value), ()):
        if shape.fullmatch(value) and _valid_caps_id(kind, value):
            # Without a check character, a lower-case token needs a label: "ab123456c"
            # may as well be an identifier in a log line.
            label = _LOWER_ID_LABELS.get(kind)
            if label is not None and not _id_labelled_by(text, start, m.end(), label):
                return
            yield Finding("national_id", kind, start, m.end())
            return


def _valid_caps_id(kind: str, value: str) -> bool:
    compact = value.replace(" ", "").replace("-", "")
    v = _stdnum()
    if kind == "gb_nino":
        return compact[:2] not in _NINO_BAD_PREFIXES
    if kind == "it_codice_fiscale":
        return v.codice_fiscale(compact)
    if kind == "in_pan":
        return v.pan(compact)
    if kind == "mx_curp":
        return mx_curp(compact)
    if kind == "pt_nif":
        return v.nif(compact)
    if kind == "sg_nric":
        return sg_nric(compact)
    return v.nie(compact)
