"""Phone numbers: eight-digit national numbers under a label, registry numbers, "+00"."""

from __future__ import annotations

import functools

import pytest

from llm_localfirst.sensitivity import DETECTORS, Scanner, scanner_for
from llm_localfirst.sensitivity.phones import _EIGHT_DIGIT_REGIONS


@functools.cache
def _scanner() -> Scanner:
    return scanner_for(DETECTORS)


def _phones(text: str) -> list[tuple[str, str]]:
    return [
        (f.kind, text[f.start : f.end]) for f in _scanner().findings(text) if f.detector == "phone"
    ]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("phone: 21 02 56 75", "21 02 56 75"),
        ("Tel. 40 52 37 62", "40 52 37 62"),
        ('{"mobile": "32 95 45 68"}', "32 95 45 68"),
        ('telefono: "34 42 91 03"', "34 42 91 03"),
        ("tlf. 32 12 34 56", "32 12 34 56"),
        ("my 電話 is 34 62 35 25", "34 62 35 25"),
        ("Hi team, my Tel. is 6135 3098", "6135 3098"),
        ("Handy 6128-5736", "6128-5736"),
        ("INSERT INTO c (name, phone) VALUES ('Kim', '8123 8145');", "8123 8145"),
        ("name,mobile,city\nAna Silva,40 60 73 44,Lisboa", "40 60 73 44"),
        ("name=Ana+Silva&phone=6123+6790&submit=Send", "6123+6790"),
        ("2026-04-08T10:15:07Z INFO kyc client=8812 mobile=40 30 79 19 ok", "40 30 79 19"),
    ],
)
def test_eight_digit_national_numbers_under_a_phone_label_are_found(text: str, number: str) -> None:
    assert [n for _, n in _phones(text)] == [number]


def test_an_eight_digit_number_is_read_in_the_region_that_writes_it_so() -> None:
    assert _phones("Tel. 6123 4567") == [("sg", "6123 4567")]
    assert _phones("Tel. 32 12 34 56") == [("dk", "32 12 34 56")]
    assert not _phones("Tel. 6123 45 67")  # no region writes 8 digits as 4-2-2


@pytest.mark.parametrize(
    "text",
    [
        "ref 32 12 34 56",
        "6123 4567",
        "text me the code 6123 4567",  # a verb, not a name for the number
        "PIN 3212 3456 sent by SMS",
        "Order 6123 4567, phone us with questions",
        "Invoice no. 32 12 34 56 - contact billing",
    ],
)
def test_eight_digit_numbers_without_a_phone_label_stay_quiet(text: str) -> None:
    assert not _phones(text)


def test_a_plus_followed_by_zero_is_no_country_code() -> None:
    assert not _phones("+00 298623636")
    assert not _phones("call +0 298 623 636")
    assert _phones("call 00 298 62 36 36") == [("fo", "00 298 62 36 36")]


@pytest.mark.parametrize(
    "text",
    [
        "SIREN 732 829 320",
        "SIRET: 732 829 320 00074",
        "KvK-nummer 6123 4567",
        "Company reg. no 06 12 34 56",
        "EIN 12-3456789",
        "VAT 612 345 678",
        "INSERT INTO companies (name, siren) VALUES ('Acme SAS', '732 829 320');",
    ],
)
def test_a_company_or_tax_register_label_rules_out_a_phone_reading(text: str) -> None:
    assert not _phones(text)


def test_a_phone_number_next_to_a_register_number_is_still_found() -> None:
    text = "Tél. 01 23 45 67 89, SIRET 732 829 320 00074"
    assert _phones(text) == [("fr", "01 23 45 67 89")]
    assert _phones("phone 6123 4567 (UEN 201912345K)") == [("sg", "6123 4567")]
    assert _phones("VAT FR40303265045 +33 1 23 45 67 89") == [("fr", "+33 1 23 45 67 89")]


def test_mexican_numbers_under_a_phone_column_are_found() -> None:
    sql = "INSERT INTO clients (name, telefono) VALUES ('Sofía Pérez', '{}');"
    for number in ("222 123 8595", "(222) 123 8595", "55 1234 5678", "222-123-8595"):
        assert "phone" in _scanner().scan(sql.format(number)), number


def test_a_mexican_three_digit_area_code_counts_without_a_label_only_in_brackets() -> None:
    assert _phones("Puebla (222) 123 8595") == [("mx", "(222) 123 8595")]
    assert not _phones("Puebla 222 123 8595")


def test_the_eight_digit_regions_are_those_of_phonenumbers_metadata() -> None:
    from phonenumbers import SUPPORTED_REGIONS, PhoneMetadata

    expected = set()
    for code in SUPPORTED_REGIONS:
        md = PhoneMetadata.metadata_for_region(code)
        lengths = md.general_desc.possible_length or () if md is not None else ()
        if md is not None and 8 in lengths and not md.national_prefix:
            expected.add(code)
    assert len(_EIGHT_DIGIT_REGIONS) == len(set(_EIGHT_DIGIT_REGIONS))
    assert set(_EIGHT_DIGIT_REGIONS) == expected
