"""The detectors against a held-out corpus (`tests.corpus.heldout`), judged as issue 14 asks.

The corpus was written apart from the ones the detectors were built against. Each text
goes through the scanner the router uses (`scanner_for` with every detector, then
`scan`), and counts as found only if the expected detector fires. Thresholds: recall
at least 0.99 overall and 0.97 per kind, look-alikes firing at most 1% of the time.

Run ``python -m tests.test_sensitivity_heldout`` for the per-kind and per-category table.
"""

from __future__ import annotations

import functools
import importlib
from collections import Counter

from llm_localfirst.sensitivity import DETECTORS, Scanner, scanner_for
from llm_localfirst.sensitivity.national_ids import au_medicare, cn_ric, sg_nric
from tests.corpus import heldout
from tests.corpus.heldout import Case

RECALL_OVERALL = 0.99
RECALL_PER_KIND = 0.97
MAX_FALSE_POSITIVES = 0.01

# python-stdnum's validator of each id the corpus computes by its own code.
_STDNUM = {
    "kr_rrn": "stdnum.kr.rrn",
    "mx_curp": "stdnum.mx.curp",
    "ca_sin": "stdnum.ca.sin",
    "au_tfn": "stdnum.au.tfn",
    "pl_pesel": "stdnum.pl.pesel",
    "se_personnummer": "stdnum.se.personnummer",
    "be_nn": "stdnum.be.nn",
    "ch_ahv": "stdnum.ch.ssn",
    "dk_cpr": "stdnum.dk.cpr",
    "no_fodselsnummer": "stdnum.no.fodselsnummer",
    "pt_nif": "stdnum.pt.nif",
    "tr_tckimlik": "stdnum.tr.tckimlik",
    "za_idnr": "stdnum.za.idnr",
    "ar_cuit": "stdnum.ar.cuit",
    "cl_rut": "stdnum.cl.rut",
    "us_ssn": "stdnum.us.ssn",
    "us_itin": "stdnum.us.itin",
    "gb_nhs": "stdnum.gb.nhs",
    "fr_nir": "stdnum.fr.nir",
    "de_idnr": "stdnum.de.idnr",
    "es_dni": "stdnum.es.dni",
    "es_nie": "stdnum.es.nie",
    "it_codice_fiscale": "stdnum.it.codicefiscale",
    "nl_bsn": "stdnum.nl.bsn",
    "br_cpf": "stdnum.br.cpf",
    "br_cnpj": "stdnum.br.cnpj",
    "in_aadhaar": "stdnum.in_.aadhaar",
    "in_pan": "stdnum.in_.pan",
    "jp_my_number": "stdnum.jp.in_",
}


@functools.cache
def _scanner() -> Scanner:
    return scanner_for(DETECTORS)


@functools.cache
def _positives() -> tuple[Case, ...]:
    return tuple(heldout.positives(seed=140, per_kind=60))


@functools.cache
def _benign() -> tuple[Case, ...]:
    return tuple(heldout.benign(seed=141, per_category=150))


def _recall(detectors: frozenset[str]) -> tuple[dict[str, float], dict[str, list[str]], float]:
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    missed: dict[str, list[str]] = {}
    scan = _scanner().scan
    for case in _positives():
        if case.detector not in detectors:
            continue
        totals[case.kind] += 1
        if case.detector in scan(case.text):
            hits[case.kind] += 1
        else:
            missed.setdefault(case.kind, []).append(case.text)
    rates = {kind: hits[kind] / totals[kind] for kind in totals}
    return rates, missed, sum(hits.values()) / sum(totals.values())


_NUMBERS = frozenset({"national_id", "payment_card", "iban"})
_OTHERS = frozenset(DETECTORS) - _NUMBERS
# Kinds held to a lower bar while a known miss is being fixed, so that they cannot get
# worse unnoticed (none now: the eight-digit numbers of Singapore, Norway and Denmark
# under a field name or "Tel." were the last).
_OPEN: dict[str, float] = {}


def _false_positives() -> tuple[dict[str, float], dict[str, list[str]], float]:
    fired: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    scan = _scanner().scan
    for case in _benign():
        totals[case.kind] += 1
        found = scan(case.text)
        if found:
            fired[case.kind] += 1
            examples.setdefault(case.kind, []).append(f"{sorted(found)} {case.text!r}")
    rates = {kind: fired[kind] / totals[kind] for kind in totals}
    return rates, examples, sum(fired.values()) / sum(totals.values())


def _table(rates: dict[str, float], examples: dict[str, list[str]], worst_first: bool) -> str:
    ordered = sorted(rates.items(), key=lambda kv: kv[1], reverse=not worst_first)
    return "\n".join(
        f"{kind:>26}: {rate:.3f}  {examples.get(kind, [])[:2]!r}" for kind, rate in ordered
    )


def test_every_id_of_the_held_out_corpus_passes_python_stdnum() -> None:
    checks = {kind: importlib.import_module(path).is_valid for kind, path in _STDNUM.items()}
    own = {"cn_ric": cn_ric, "sg_nric": sg_nric, "au_medicare": au_medicare}
    for case in _positives():
        if case.detector != "national_id" or case.kind not in checks | own:
            continue
        value = "".join(c for c in case.value if c.isalnum()).upper()
        if case.kind == "se_personnummer" and len(value) == 12:
            value = value[2:]
        if case.kind == "es_dni":
            value = value.zfill(9)  # "6.758.319-E" drops the leading zero
        assert (checks | own)[case.kind](value), (case.kind, case.value)


def test_the_held_out_corpus_has_every_kind_the_issue_names() -> None:
    kinds = {case.kind for case in _positives()}
    assert set(heldout.ID_KINDS) <= kinds
    assert len(heldout.ID_KINDS) >= 27
    assert {case.detector for case in _positives()} == set(DETECTORS)
    assert len(_benign()) >= 2500


def test_recall_on_held_out_ids_cards_and_ibans_is_99_percent_overall_and_97_per_kind() -> None:
    rates, missed, overall = _recall(_NUMBERS)
    low = {kind: rate for kind, rate in rates.items() if rate < RECALL_PER_KIND}
    assert overall >= RECALL_OVERALL, _table(rates, missed, worst_first=True)
    assert not low, _table(low, missed, worst_first=True)


def test_recall_on_held_out_emails_phones_and_secrets_is_99_percent_overall_and_97_per_kind() -> (
    None
):
    rates, missed, overall = _recall(_OTHERS)
    low = {k: r for k, r in rates.items() if r < _OPEN.get(k, RECALL_PER_KIND)}
    assert overall >= RECALL_OVERALL, _table(rates, missed, worst_first=True)
    assert not low, _table(low, missed, worst_first=True)


def test_held_out_look_alikes_fire_on_at_most_1_percent_of_texts() -> None:
    rates, examples, overall = _false_positives()
    assert overall <= MAX_FALSE_POSITIVES, _table(rates, examples, worst_first=False)


# ----------------------------------------------------------------------------- spellings


def test_values_in_a_url_encoded_form_body_are_read_decoded_with_their_field_name() -> None:
    scanner = _scanner()
    body = "name=Ana+Silva&iban=DE89+3704+0044+0532+0130+00&nif=123+456+789&ok=1"
    findings = scanner.findings(body)
    assert {f.detector for f in findings} == {"iban", "national_id"}
    iban = next(f for f in findings if f.detector == "iban")
    assert body[iban.start : iban.end] == "DE89+3704+0044+0532+0130+00"
    assert scanner.scan(body) == {"iban", "national_id"}


def test_lettered_ids_typed_in_lower_case_are_found() -> None:
    scanner = _scanner()
    assert scanner.scan("my nric is s1234567d, thanks") == {"national_id"}
    assert scanner.scan("cf: rssmra85t10a562s") == {"national_id"}
    assert scanner.scan("NIE x1234567l") == {"national_id"}
    assert scanner.scan("NI number ab123456c") == {"national_id"}
    assert not scanner.scan("ref s1234567x and rssmra85t10a562q")  # wrong check letters
    assert not scanner.scan("job ab123456c done")  # no check character, no label


def test_an_id_label_in_a_camel_case_key_or_a_sql_column_list_counts() -> None:
    scanner = _scanner()
    assert scanner.scan('{"socialInsuranceNumber": "046 454 286"}') == {"national_id"}
    sql = "INSERT INTO people (name, city, pesel) VALUES ('Jan Kowalski', 'Kraków', '44051401359');"
    assert scanner.scan(sql) == {"national_id"}


def test_the_inner_groups_of_a_uuid_are_no_card() -> None:
    assert not _scanner().scan("request_id=4a543a3a-6639-4419-9616-eb6cda5921d9")
    assert _scanner().scan("REF-4111-1111-1111-1111") == {"payment_card"}


def test_no_scanned_text_is_kept_once_the_scan_returns() -> None:
    from llm_localfirst.sensitivity import text

    _scanner().findings("NHS number 943 476 5919, SIN 046 454 286")
    _scanner().scan("PESEL 44051401359")
    assert text._last_window is None
    assert text._last_labels is None


def main() -> None:
    """Print recall per kind and false positives per category."""
    for group in (_NUMBERS, _OTHERS):
        rates, missed, overall = _recall(group)
        total = sum(1 for case in _positives() if case.detector in group)
        print(f"recall of {', '.join(sorted(group))}: {overall:.4f} over {total} texts")
        print(_table(rates, missed, worst_first=True))
    rates, _, overall = _recall(frozenset(DETECTORS))
    print(f"\nrecall overall {overall:.4f}; per detector:")
    for detector in DETECTORS:
        print(f"{detector:>26}: {_recall(frozenset({detector}))[2]:.4f}")
    fp, examples, fp_overall = _false_positives()
    print(f"\nfalse positives overall {fp_overall:.4f} over {len(_benign())} texts")
    print(_table(fp, examples, worst_first=False))


if __name__ == "__main__":
    main()
