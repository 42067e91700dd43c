"""Check digits: Luhn, mod-97, ICAO 9303, and python-stdnum's validators.

The detectors run these on candidates only, never over the whole text. Each
python-stdnum module is imported the first time its check is needed (together
they cost ~15 ms), so a text with no candidate imports none of them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

# Where each validator of `_StdNum` lives in python-stdnum.
_STDNUM_MODULES = {
    "ssn": "stdnum.us.ssn",
    "itin": "stdnum.us.itin",
    "nhs": "stdnum.gb.nhs",
    "nir": "stdnum.fr.nir",
    "idnr": "stdnum.de.idnr",
    "dni": "stdnum.es.dni",
    "nie": "stdnum.es.nie",
    "codice_fiscale": "stdnum.it.codicefiscale",
    "bsn": "stdnum.nl.bsn",
    "cpf": "stdnum.br.cpf",
    "cnpj": "stdnum.br.cnpj",
    "aadhaar": "stdnum.in_.aadhaar",
    "pan": "stdnum.in_.pan",
    "my_number": "stdnum.jp.in_",
    "iban": "stdnum.iban",
    "sin": "stdnum.ca.sin",
    "tfn": "stdnum.au.tfn",
    "nif": "stdnum.pt.nif",
    "cpr": "stdnum.dk.cpr",
    "personnummer": "stdnum.se.personnummer",
    "cuit": "stdnum.ar.cuit",
    "nn": "stdnum.be.nn",
    "fodselsnummer": "stdnum.no.fodselsnummer",
    "pesel": "stdnum.pl.pesel",
    "tckimlik": "stdnum.tr.tckimlik",
    "ahv": "stdnum.ch.ssn",
    "rrn": "stdnum.kr.rrn",
    "za_idnr": "stdnum.za.idnr",
}


class _StdNum:
    """python-stdnum's ``is_valid`` functions by name, each imported on first use.

    A validator's slot is empty until then; `__getattr__`, which Python calls only
    for an empty slot, imports its module and fills the slot, so every later call
    costs what a plain attribute does.
    """

    __slots__ = (
        "aadhaar",
        "ahv",
        "bsn",
        "cnpj",
        "codice_fiscale",
        "cpf",
        "cpr",
        "cuit",
        "dni",
        "fodselsnummer",
        "iban",
        "idnr",
        "itin",
        "my_number",
        "nhs",
        "nie",
        "nif",
        "nir",
        "nn",
        "pan",
        "personnummer",
        "pesel",
        "rrn",
        "sin",
        "ssn",
        "tckimlik",
        "tfn",
        "za_idnr",
    )

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
    sin: Callable[[str], bool]
    tfn: Callable[[str], bool]
    nif: Callable[[str], bool]
    cpr: Callable[[str], bool]
    personnummer: Callable[[str], bool]
    cuit: Callable[[str], bool]
    nn: Callable[[str], bool]
    fodselsnummer: Callable[[str], bool]
    pesel: Callable[[str], bool]
    tckimlik: Callable[[str], bool]
    ahv: Callable[[str], bool]
    rrn: Callable[[str], bool]
    za_idnr: Callable[[str], bool]

    def __getattr__(self, name: str) -> Callable[[str], bool]:
        path = _STDNUM_MODULES.get(name)
        if path is None:
            raise AttributeError(name)
        module = importlib.import_module(path)
        is_valid: Callable[[str], bool] = module.is_valid
        if name == "iban":
            # Mod-97 and the country's length and structure; not the national bank
            # registries of some countries, which lag behind real accounts.
            is_valid = functools.partial(module.is_valid, check_country=False)
        setattr(self, name, is_valid)
        return is_valid


@functools.cache
def _stdnum() -> _StdNum:
    return _StdNum()


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Letters as their mod-97 values, "A" -> "10" ... "Z" -> "35"; digits stay themselves.
_MOD97_DIGITS = {ord(c): str(10 + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")} | {
    ord(c): str(10 + i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")
}


def _mod97(value: str) -> int:
    rearranged = value[4:] + value[:4]
    return int(rearranged.translate(_MOD97_DIGITS)) % 97


def _icao_check(value: str) -> bool:
    """The ICAO 9303 check digit of a German identity card number."""
    total = sum(int(c, 36) * (7, 3, 1)[i % 3] for i, c in enumerate(value[:-1]))
    return total % 10 == int(value[-1])
