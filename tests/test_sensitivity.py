"""The built-in sensitivity detectors: interface, recall, false positives, spans."""

from __future__ import annotations

import dataclasses
import functools
import random
import subprocess
import sys
from collections import Counter

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_localfirst import sensitivity
from llm_localfirst.sensitivity import DETECTORS, Finding, Scanner, checksums, phones, scanner_for
from tests.corpus.pii import Sample, benign, positives

RECALL_OVERALL = 0.99
RECALL_PER_KIND = 0.97
MAX_FALSE_POSITIVES = 0.01


@functools.cache
def _positives() -> tuple[Sample, ...]:
    return tuple(positives(seed=20240601, per_kind=200))


@functools.cache
def _benign() -> tuple[Sample, ...]:
    return tuple(benign(seed=20240602, per_kind=200))


@functools.cache
def _scanner() -> Scanner:
    return Scanner()


def _report(rates: dict[str, float], examples: dict[str, list[str]]) -> str:
    return "\n".join(
        f"{kind}: {rate:.3f}  e.g. {examples[kind][:3]!r}"
        for kind, rate in sorted(rates.items(), key=lambda kv: kv[1])
    )


# ----------------------------------------------------------------------------- interface


def test_detectors_are_the_six_documented_names() -> None:
    assert DETECTORS == ("email", "phone", "payment_card", "iban", "national_id", "secret")


def test_a_scanner_enables_all_detectors_by_default() -> None:
    assert Scanner().detectors == frozenset(DETECTORS)


def test_an_unknown_detector_name_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown detector") as caught:
        Scanner(["email", "passport"])
    message = str(caught.value)
    assert "passport" in message
    assert all(name in message for name in DETECTORS)


def test_a_single_name_is_one_detector_not_its_letters() -> None:
    assert Scanner("email").detectors == frozenset({"email"})


def test_scanner_for_returns_one_shared_scanner_per_set_of_names() -> None:
    first = scanner_for(["email", "phone"])
    assert scanner_for(("phone", "email")) is first
    assert scanner_for(["email"]) is not first
    with pytest.raises(ValueError, match="unknown detector"):
        scanner_for(["nope"])


def test_a_finding_holds_no_text_only_detector_kind_and_span() -> None:
    assert [f.name for f in dataclasses.fields(Finding)] == ["detector", "kind", "start", "end"]
    finding = Scanner().findings("mail me: jane.doe@example.com")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.kind = "x"  # type: ignore[misc]


def test_importing_the_module_compiles_nothing_and_loads_no_validator() -> None:
    code = (
        "import sys\n"
        "from llm_localfirst.sensitivity import scanner, secrets, text\n"
        "assert scanner._passes.cache_info().currsize == 0, 'passes built at import'\n"
        "assert not any(m._rx.cache_info().currsize for m in (secrets, text)), 'compiled'\n"
        "assert 'phonenumbers' not in sys.modules, 'phonenumbers imported'\n"
        "assert not any(m.startswith('stdnum') for m in sys.modules), 'stdnum imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_text_without_candidates_compiles_no_table_and_loads_no_validator() -> None:
    # `llm-localfirst route "hi"` builds a scanner and scans two letters: it must not
    # pay for phone metadata, python-stdnum or the patterns of passes it skips.
    code = (
        "import sys\n"
        "from llm_localfirst.sensitivity import Scanner, phones, scanner, secrets, text\n"
        "s = Scanner()\n"
        "assert s.findings('hi, see you at the meeting tomorrow') == []\n"
        "assert s.scan('hi') == frozenset()\n"
        "compiled = [p.needle for p in scanner._passes() if p.find != p._compile]\n"
        "assert compiled == [''], compiled  # only the pass over digits and capitals\n"
        "assert not any(m._rx.cache_info().currsize for m in (secrets, text)), 'compiled'\n"
        "assert phones._region.cache_info().currsize == 0, 'phone regions loaded'\n"
        "assert 'phonenumbers' not in sys.modules, 'phonenumbers imported'\n"
        "assert not any(m.startswith('stdnum') for m in sys.modules), 'stdnum imported'\n"
        "assert s.scan('call +44 20 7946 0958') == {'phone'}\n"
        "assert phones._region.cache_info().currsize == 1, 'regions besides GB loaded'\n"
        "assert not any(m.startswith('stdnum') for m in sys.modules), 'stdnum imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_disabled_detectors_never_fire() -> None:
    text = "card 4111 1111 1111 1111, mail a@example.com, call +44 20 7946 0958"
    only_email = Scanner(["email"])
    assert only_email.scan(text) == {"email"}
    assert {f.detector for f in only_email.findings(text)} == {"email"}
    assert Scanner([]).scan(text) == frozenset()


def test_scan_names_exactly_the_detectors_of_findings() -> None:
    scanner = _scanner()
    rng = random.Random(5)
    samples = rng.sample(_positives(), 800) + rng.sample(_benign(), 400)
    texts = [s.text for s in samples]
    texts += ["\n".join(rng.sample(texts, 6)) for _ in range(200)]  # several values per text
    for text in texts:
        assert scanner.scan(text) == {f.detector for f in scanner.findings(text)}, text


def test_a_scanner_of_some_detectors_finds_what_the_full_scanner_finds_for_them() -> None:
    full = _scanner()
    rng = random.Random(9)
    texts = [s.text for s in rng.sample(_positives(), 600)]
    texts += ["\n".join(rng.sample(texts, 5)) for _ in range(100)]
    for names in (["national_id"], ["phone"], ["payment_card", "iban"], ["secret", "email"]):
        partial = Scanner(names)
        for text in texts:
            expected = [f for f in full.findings(text) if f.detector in names]
            assert partial.findings(text) == expected, text


_PIECES = [
    *"0123456789 +-()./:=@_#AaBbXxZzKkIiéü\n\"'`[]{}<>",
    "eyJ",
    "-----BEGIN ",
    "PRIVATE KEY",
    "AKIA",
    "ghp_",
    "sk-",
    "password",
    "IBAN ",
    "DE89",
    "+44 ",
    "4111 ",
    "İ",
    "\u00a0",
    "電話",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=150).map("".join))
def test_any_text_is_scanned_without_error_and_scan_agrees_with_findings(text: str) -> None:
    scanner = _scanner()
    found = scanner.findings(text)
    assert all(0 <= f.start < f.end <= len(text) for f in found)
    assert scanner.scan(text) == {f.detector for f in found}


def test_findings_are_sorted_and_within_the_text() -> None:
    scanner = _scanner()
    for sample in _positives()[::7]:
        found = scanner.findings(sample.text)
        assert found == sorted(found, key=lambda f: (f.start, f.end, f.detector, f.kind))
        assert all(0 <= f.start < f.end <= len(sample.text) for f in found)
        assert all(f.detector in DETECTORS for f in found)


# ----------------------------------------------------------------------------- corpus


def test_recall_on_the_generated_corpus_is_99_percent_overall_and_97_per_kind() -> None:
    scanner = _scanner()
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    missed: dict[str, list[str]] = {}
    for sample in _positives():
        totals[sample.kind] += 1
        if sample.detector in scanner.scan(sample.text):
            hits[sample.kind] += 1
        else:
            missed.setdefault(sample.kind, []).append(sample.text)
    overall = sum(hits.values()) / sum(totals.values())
    rates = {kind: hits[kind] / totals[kind] for kind in totals}
    assert overall >= RECALL_OVERALL, _report(rates, missed)
    low = {kind: rate for kind, rate in rates.items() if rate < RECALL_PER_KIND}
    assert not low, _report(low, missed)


def test_the_corpus_covers_every_detector_and_many_kinds() -> None:
    detectors = {s.detector for s in _positives()}
    assert detectors == set(DETECTORS)
    assert len({s.kind for s in _positives()}) >= 60
    assert len(_positives()) >= 5000
    assert len(_benign()) >= 4000


def test_benign_look_alikes_fire_on_at_most_1_percent_of_texts() -> None:
    scanner = _scanner()
    fired: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for sample in _benign():
        totals[sample.kind] += 1
        if scanner.scan(sample.text):
            fired[sample.kind] += 1
            examples.setdefault(sample.kind, []).append(sample.text)
    rate = sum(fired.values()) / sum(totals.values())
    rates = {kind: fired[kind] / totals[kind] for kind in fired}
    assert rate <= MAX_FALSE_POSITIVES, _report(rates, examples)


def test_a_finding_of_the_expected_detector_covers_the_value() -> None:
    scanner = _scanner()
    off: list[str] = []
    for sample in _positives()[::3]:
        at = sample.text.find(sample.value)
        if at < 0 or any(c in sample.value for c in ";{\n"):
            continue  # re-encoded by the template (JSON), or a config snippet of parts
        spans = [
            (f.start, f.end) for f in scanner.findings(sample.text) if f.detector == sample.detector
        ]
        # Allow the span to drop a separator or take in a key name, but it must
        # overlap most of the value.
        if not any(
            min(e, at + len(sample.value)) - max(s, at) >= 0.6 * len(sample.value) for s, e in spans
        ):
            off.append(f"{sample.kind}: {sample.text!r} -> {spans}")
    assert len(off) <= len(_positives()) // 3 // 100, off[:10]


# ----------------------------------------------------------------------------- spot checks


@pytest.mark.parametrize(
    ("text", "detector", "kind"),
    [
        ("write to jane.doe+news@mail.example.co.uk today", "email", "email"),
        ("contact: josé.garcía@bücher.de", "email", "email"),
        ("Call +44 20 7946 0958 after 5", "phone", "gb"),
        ("ring +1-415-555-2671", "phone", "us"),
        ("0044 20 7946 0958", "phone", "gb"),
        ("Office (415) 555-2671, ext 4", "phone", "us"),
        ("Son numéro : 01 23 45 67 89.", "phone", "fr"),
        ("Berlin 030 12345678", "phone", "de"),
        ("bel 06-12345678", "phone", "nl"),
        ("móvil 612 345 678", "phone", "es"),
        ("cell 333 123 4567", "phone", "it"),
        ("WhatsApp (11) 91234-5678", "phone", "br"),
        ("mobile 98765 43210", "phone", "in"),
        ("電話 03-1234-5678", "phone", "jp"),
        ("090-1234-5678", "phone", "jp"),
        ("Visa 4111 1111 1111 1111 exp 12/26", "payment_card", "visa"),
        ("5555-5555-5555-4444", "payment_card", "mastercard"),
        ("2223003122003222", "payment_card", "mastercard"),
        ("Amex 3782 822463 10005", "payment_card", "amex"),
        ("carte 6011 1111 1111 1117", "payment_card", "discover"),
        ("3530111333300000", "payment_card", "jcb"),
        ("card 6759 6498 2643 8453", "payment_card", "maestro"),
        ("IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX", "iban", "de"),
        ("GB82 WEST 1234 5698 7654 32", "iban", "gb"),
        ("FR1420041010050500013M02606", "iban", "fr"),
        ("SSN 536-90-4399", "national_id", "us_ssn"),
        ("ssn: 536904399", "national_id", "us_ssn"),
        ("ITIN 912-78-1234", "national_id", "us_itin"),
        ("NI number AB 12 34 56 C", "national_id", "gb_nino"),
        ("NHS number 943 476 5919", "national_id", "gb_nhs"),
        ("n° sécu 2 69 05 49 588 157 80", "national_id", "fr_nir"),
        ("Steuer-IdNr. 86 095 742 719", "national_id", "de_idnr"),
        ("Personalausweis L01X00T471", "national_id", "de_id_card"),
        ("DNI 12345678Z", "national_id", "es_dni"),
        ("NIE X-1234567-L", "national_id", "es_nie"),
        ("CF RSSMRA85T10A562S", "national_id", "it_codice_fiscale"),
        ("BSN 111222333", "national_id", "nl_bsn"),
        ("CPF 390.533.447-05", "national_id", "br_cpf"),
        ("CNPJ 16.727.230/0001-97", "national_id", "br_cnpj"),
        ("Aadhaar 2341 2341 2346", "national_id", "in_aadhaar"),
        ("PAN AAAPL1234C", "national_id", "in_pan"),
        ("マイナンバー 1234 5678 9018", "national_id", "jp_my_number"),
        ("AKIAZ3MHQW7PL2XKD4RT", "secret", "aws_access_key"),  # AWS's "...EXAMPLE" is quiet
        ("key AIzaSyA1234567890abcdefghijklmnopqrstuv", "secret", "gcp_api_key"),
        ("ghp_0123456789abcdefghijklmnopqrstuvwxyz", "secret", "github_token"),
        ("glpat-abcdefghij0123456789", "secret", "gitlab_token"),
        ("xoxb-123456789012-1234567890123-abcdefghijABCDEFGHIJ1234", "secret", "slack_token"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "secret", "stripe_key"),
        ("sk-ant-api03-" + "a" * 40, "secret", "anthropic_key"),
        ("sk-proj-" + "Ab1_" * 12, "secret", "openai_key"),
        ("hf_" + "abcdEFGH" * 4 + "xy", "secret", "huggingface_token"),
        ("SG." + "a" * 22 + "." + "B" * 43, "secret", "sendgrid_key"),
        ("npm_" + "a1B2" * 9, "secret", "npm_token"),
        ("pypi-AgEIcHlwaS5vcmc" + "Ab3_dE9-Kq" * 6, "secret", "pypi_token"),
        ("shpat_" + "0123456789abcdef" * 2, "secret", "shopify_token"),
        ("key-" + "0123456789abcdef" * 2, "secret", "mailgun_key"),
        ("dop_v1_" + "0123456789abcdef" * 4, "secret", "digitalocean_token"),
        ("SK" + "0123456789abcdef" * 2, "secret", "twilio_key"),
        (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "secret",
            "jwt",
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
            "-----END OPENSSH PRIVATE KEY-----",
            "secret",
            "private_key",
        ),
        ('{"password": "Xk9#mP2$vL"}', "secret", "password_assignment"),
        (
            "DATABASE_URL=postgres://app:Sup3rS3cret@db.internal:5432/app",
            "secret",
            "url_credentials",
        ),
        ("AccountKey=" + "aB3+" * 22 + "==", "secret", "azure_storage_key"),
    ],
)
def test_each_kind_is_detected_in_a_typical_sentence(text: str, detector: str, kind: str) -> None:
    found = {(f.detector, f.kind) for f in Scanner().findings(text)}
    if detector == "phone":
        # A phone number's kind is the first region, in a fixed order of preference,
        # whose plan admits it; "030 12345678" is valid in Germany and in Italy.
        assert any(d == "phone" for d, _ in found), found
    else:
        assert (detector, kind) in found, found


@pytest.mark.parametrize(
    "text",
    [
        "Order #112-3456789-1234567 shipped",
        "invoice INV-2024-00123",
        "tracking 1Z999AA10123456784",
        "card 4111 1111 1111 1112 was declined",  # fails Luhn
        "id 550e8400-e29b-41d4-a716-446655440000",
        "commit 3f2a9c1b7e0d4c8a9b6f5e4d3c2b1a0f9e8d7c6b, short 3f2a9c1",
        "upgrade to v2.14.3 or 10.0.19045.2006",
        "host 192.168.100.254:8080",
        "meeting 2024-03-15 14:22:01, due 15/03/2024, ts 1710512521 and 1710512521000",
        "ISBN 978-3-16-148410-0 and 0-306-40615-2",
        "total $1,234,567.89 or € 2.499,00",
        "ZIP 94103-1234, SW1A 1AA",
        "color: #1a2b3c;",
        "blob Zm9vYmFyYmF6cXV4IGxvcmVtIGlwc3VtIGRvbG9yIHNpdCBhbWV0",
        "(555) 123-4567 is fictional",
        "password: ********",
        "api_key=YOUR_API_KEY",
        "icon@2x.png and npm i @types/node@20.11.5",
        "pi is 3.14159265358979",
        "SSN 000-12-3456 is invalid",
        "IBAN DE00 3704 0044 0532 0130 00 has a bad check",
    ],
)
def test_a_benign_look_alike_fires_nothing(text: str) -> None:
    assert Scanner().findings(text) == []


def test_digit_runs_that_fail_luhn_are_never_cards() -> None:
    rng = random.Random(3)
    scanner = Scanner(["payment_card"])
    for _ in range(2000):
        digits = rng.choice("3456") + "".join(rng.choices("0123456789", k=rng.randint(11, 18)))
        if checksums._luhn(digits):
            digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
        assert scanner.scan(f"card {digits}") == frozenset(), digits


def test_a_secret_is_found_wherever_it_sits_in_a_large_text() -> None:
    filler = "The weekly report covers 12 items and 3 risks. " * 2000
    key = "ghp_0123456789abcdefghijklmnopqrstuvwxyz"
    for at in (0, len(filler) // 2, len(filler)):
        text = filler[:at] + f" {key} " + filler[at:]
        assert _scanner().scan(text) == {"secret"}


@pytest.mark.parametrize(
    "text",
    [
        "1 " * 100_000,
        "-" * 200_000,
        "A" * 200_000,
        "a@" * 100_000,
        "=" * 100_000,
        "4" * 200_000,
        "(1) " * 50_000,
        "eyJ" * 50_000,
        "AKIA" * 50_000,
        "ghp_" * 50_000,
    ],
)
def test_pathological_inputs_are_scanned_to_the_end(text: str) -> None:
    scanner = _scanner()
    assert isinstance(scanner.findings(text), list)
    assert scanner.scan(text) <= frozenset(DETECTORS)


# ----------------------------------------------------------------------------- phones


def test_fast_phone_validation_agrees_with_phonenumbers() -> None:
    rng = random.Random(11)
    regions = [
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
        "MX",
        "CN",
        "CH",
        "SE",
        "PL",
        "ZA",
        "KR",
        "RU",
        "SG",
        "AR",
    ]
    sensitivity.Scanner()
    disagreements = []
    for _ in range(3000):
        region = rng.choice(regions)
        example = phonenumbers.example_number_for_type(
            region,
            rng.choice(
                [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
            ),
        )
        assert example is not None
        nsn = phonenumbers.national_significant_number(example)
        keep = rng.randint(1, 3)
        nsn = nsn[:keep] + "".join(rng.choices("0123456789", k=len(nsn) - keep))
        digits = f"{example.country_code}{nsn}"
        expected = phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
        if (phones._international_region(digits) is not None) != expected:
            disagreements.append(digits)
    assert len(disagreements) <= 30, disagreements[:10]  # 1%: trunk-prefix edge cases
