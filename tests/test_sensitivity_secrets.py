"""Secrets in today's formats, e-mails under file-suffix domains, phones without "+".

The corpus (`tests.corpus.secrets`) holds thousands of generated values of every
kind, written in JSON, YAML, .env files, shell, code, logs and chat, and the
look-alikes that must stay quiet; the spot checks below pin single cases.
"""

from __future__ import annotations

import base64
import functools
import zlib
from collections import Counter

import pytest

from llm_localfirst.sensitivity import Scanner, secret_checks
from tests.corpus import pii
from tests.corpus import secrets as corpus
from tests.corpus.pii import Sample

RECALL_OVERALL = 0.99
RECALL_PER_KIND = 0.97
MAX_FALSE_POSITIVES = 0.01


@functools.cache
def _positives() -> tuple[Sample, ...]:
    return tuple(corpus.positives(seed=20251206, per_kind=120))


@functools.cache
def _benign() -> tuple[Sample, ...]:
    return tuple(corpus.benign(seed=20251207, per_kind=120))


@functools.cache
def _scanner() -> Scanner:
    return Scanner()


def _rates(
    samples: tuple[Sample, ...], fired: bool
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Per kind, the share of samples on which the scanner fires (as expected or not)."""
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for sample in samples:
        totals[sample.kind] += 1
        found = _scanner().scan(sample.text)
        ok = sample.detector in found if sample.detector else not found
        if ok:
            hits[sample.kind] += 1
        else:
            examples.setdefault(sample.kind, []).append(sample.text)
    rates = {kind: hits[kind] / totals[kind] for kind in totals}
    if not fired:
        rates = {kind: 1 - rate for kind, rate in rates.items()}
    return rates, examples


def _report(rates: dict[str, float], examples: dict[str, list[str]]) -> str:
    return "\n".join(
        f"{kind}: {rate:.3f} e.g. {examples.get(kind, [])[:2]!r}"
        for kind, rate in sorted(rates.items(), key=lambda kv: kv[1])
    )


# ----------------------------------------------------------------------------- corpus


def test_the_corpus_has_thousands_of_positives_over_every_kind_and_many_look_alikes() -> None:
    kinds = Counter(s.kind for s in _positives())
    assert len(_positives()) >= 4000
    assert len(kinds) >= 40
    assert min(kinds.values()) >= 100
    assert {s.detector for s in _positives()} == {"secret", "email", "phone"}
    assert len(_benign()) >= 1500


def test_the_corpus_is_reproducible_from_its_seed() -> None:
    assert list(corpus.positives(seed=5, per_kind=3)) == list(corpus.positives(seed=5, per_kind=3))
    assert list(corpus.benign(seed=5, per_kind=3)) == list(corpus.benign(seed=5, per_kind=3))


def test_recall_on_the_secrets_corpus_is_99_percent_overall_and_97_per_kind() -> None:
    rates, missed = _rates(_positives(), fired=True)
    total = Counter(s.kind for s in _positives())
    overall = sum(rates[k] * total[k] for k in rates) / sum(total.values())
    assert overall >= RECALL_OVERALL, _report(rates, missed)
    low = {kind: rate for kind, rate in rates.items() if rate < RECALL_PER_KIND}
    assert not low, _report(low, missed)


def test_look_alikes_of_secrets_fire_on_at_most_1_percent_of_texts() -> None:
    rates, fired = _rates(_benign(), fired=False)
    total = Counter(s.kind for s in _benign())
    overall = sum(rates[k] * total[k] for k in rates) / sum(total.values())
    assert overall <= MAX_FALSE_POSITIVES, _report(rates, fired)


def test_the_existing_corpus_keeps_its_secret_and_email_quality() -> None:
    # The kinds this change touches: every secret and e-mail kind of the older
    # corpus stays at 97% or more, and its look-alikes keep quiet.
    samples = tuple(
        s for s in pii.positives(seed=20240601, per_kind=100) if s.detector in ("secret", "email")
    )
    rates, missed = _rates(samples, fired=True)
    low = {kind: rate for kind, rate in rates.items() if rate < RECALL_PER_KIND}
    assert not low, _report(low, missed)
    quiet = tuple(
        s
        for s in pii.benign(seed=20240602, per_kind=100)
        if s.kind
        in (
            "placeholder_secret",
            "email_like",
            "code_assignment",
            "hash",
            "base64_blob",
            "uuid",
            "git_sha",
            "not_a_jwt",
        )
    )
    rates, fired = _rates(quiet, fired=False)
    assert max(rates.values()) <= MAX_FALSE_POSITIVES, _report(rates, fired)


# ----------------------------------------------------------------------------- spot checks


def _kinds(text: str) -> set[tuple[str, str]]:
    return {(f.detector, f.kind) for f in _scanner().findings(text)}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "DefaultEndpointsProtocol=https;AccountName=acmeprod;AccountKey="
            "k3Jf9Qm2Xr7Tz1Lp5Wn8Vb4Hc6Yd0Gs2Ae7Ru9Io1Pl3Kj5Mh7Ng9Bf2Dv4Cx6Zs8Wq0Et2Yr4Ui6Op8As0Df2Gh4J"
            "k6Lm8==;EndpointSuffix=core.windows.net",
            "azure_storage_key",
        ),
        (
            "AZURE_STORAGE_KEY=k3Jf9Qm2Xr7Tz1Lp5Wn8Vb4Hc6Yd0Gs2Ae7Ru9Io1Pl3Kj5Mh7Ng9Bf2Dv4Cx6Zs8Wq0Et2"
            "Yr4Ui6Op8As0Df2Gh4Jk6Lm8==",
            "azure_storage_key",
        ),
        ("client secret Xq17Q~aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3x", "azure_client_secret"),
        ("HF_TOKEN=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", "huggingface_token"),
        ("//registry.npmjs.org/:_authToken=npm_" + "a1B2c3D4e5" * 3 + "Zz9Yy8", "npm_token"),
        (
            "password = pypi-AgEIcHlwaS5vcmcCJDk4ZTJhNzQ0LWZhYmUtNDg3Ny05YzQ2LWE4OTljZDE0",
            "pypi_token",
        ),
        ("SK" + "3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e", "twilio_key"),
        ("TWILIO_AUTH_TOKEN=3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e", "twilio_auth_token"),
        ("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", "sendgrid_key"),
        ("mailgun: key-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e", "mailgun_key"),
        ("DD_API_KEY=3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e", "datadog_api_key"),
        ("DD_APP_KEY=3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e1b3d5f7a", "datadog_app_key"),
        (
            'curl -H "DD-API-KEY: 3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e" https://api.datadoghq.com',
            "datadog_api_key",
        ),
        ("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", "shopify_token"),
        ("MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs", "discord_bot_token"),
        (
            "https://discord.com/api/webhooks/123456789012345678/" + "aB3_dE5-fG7h" * 6,
            "discord_webhook",
        ),
        ("bot = Bot('5123456789:AAH3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3x')", "telegram_bot_token"),
        (
            "https://api.telegram.org/bot5123456789:AAH3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3x/getMe",
            "telegram_bot_token",
        ),
        ("<settings><password>Xk9#mP2$vL</password></settings>", "password_assignment"),
        ('log: payload="{\\"password\\": \\"Xk9#mP2$vL\\"}"', "password_assignment"),
        ("mysql -h db --user root --password Xk9#mP2$vL app", "password_assignment"),
        ("| contraseña | 66foOvFK62%C |", "password_assignment"),
        ("pwd: Wj*RX7sPh0T", "password_assignment"),
        ("Datadog API key 3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e, thanks", "datadog_api_key"),
        ("| Twilio auth token | 3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e |", "twilio_auth_token"),
        ("ya29.a0AfH6SMBx3kP9qL2mN8vR4tY7wZ1cE5gH0jK3lO6pS9uX2", "google_oauth_token"),
        ("VAULT_TOKEN=hvs.CAESIJlWh2k4g5Rq8sT3vX6yZ9bC2dF5gH8jK1mN4pQ7rS0uW3", "vault_token"),
        ("postgres://app:Xk9mP2vLq4@db.internal:5432/app", "url_credentials"),
        ("postgres://user:p@ssw0rd@db.example.com:5432/app", "url_credentials"),
        ("mysql://root:S3cr3t!x9@10.0.0.5/shop", "url_credentials"),
        ("mongodb+srv://svc:p%40ss9Xq2@cluster0.ab1cd.mongodb.net/db", "url_credentials"),
        ("redis://:Xk9mP2vLq4@cache:6379/0", "url_credentials"),
        ("amqp://deploy:Xk9mP2vLq4@rabbit.internal:5672/vhost", "url_credentials"),
        ("git clone https://alice:Xk9mP2vLq4@git.example.com/repo.git", "url_credentials"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\n"
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB"
            "\nAAAAMwAAAAtzc2gtZWQyNTUxOQAAACDk3j9f0aQ2Xq7\n-----END OPENSSH PRIVATE KEY-----",
            "private_key",
        ),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\nlQOYBGXk3j8BCADk3j9f0aQ2X"
            "q7Lm4Np\n=a1B2\n-----END PGP PRIVATE KEY BLOCK-----",
            "private_key",
        ),
        (
            '{"type": "service_account", "project_id": "p", "private_key": "-----BEGIN PRIVATE KEY'
            "-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
            "\\n-----END PRIVATE KEY-----"
            '\\n"}',
            "gcp_service_account",
        ),
        (
            "https://hooks.slack.com/services/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",
            "slack_webhook",
        ),
        (
            "https://hooks.slack.com/workflows/T0AB12CD3/A0CD34EF56/412345678901234567/aB3dE5fG7hI9j"
            "K1lM3nO5pQ7",
            "slack_webhook",
        ),
        (
            "https://hooks.slack.com/triggers/T0AB12CD3/4123456789012/3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e",
            "slack_webhook",
        ),
        ("xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAxMi0xMjM0NTY3ODkwMTIz", "slack_token"),
        ("xapp-1-A0AB12CD3EF-4123456789012-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e", "slack_token"),
        ("glsa_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW_3f9a1c7e", "grafana_token"),
        (
            "AGE-SECRET-KEY-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
            "QPZRY9X8GF",
            "age_key",
        ),
    ],
)
def test_each_secret_format_is_found_where_people_paste_it(text: str, kind: str) -> None:
    assert ("secret", kind) in _kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "npm_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "OPENAI_API_KEY=sk-...",
        "OPENAI_API_KEY=your-api-key-here",
        "api_key: <redacted>",
        "token: [REDACTED]",
        "xoxb-your-token-here",
        "SLACK_BOT_TOKEN=xoxb-xxxxxxxxxxxx-xxxxxxxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n<your key>\n-----END OPENSSH PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC...\n"
        "-----END PRIVATE KEY-----",
        "postgres://user:password@localhost:5432/app",
        "mongodb+srv://<username>:<password>@cluster0.mongodb.net/test",
        "amqp://guest:guest@localhost:5672/",
        "postgres://postgres:postgres@localhost:5432/postgres",
        "DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DB",
        "arn:aws:iam::689229634647:role/app",
        "REDIS_URL=redis://:${REDIS_PASSWORD}@redis:6379/0",
        "arn:aws:iam::123456789012:role/deploy",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
        "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg/providers/"
        "Microsoft.Storage/storageAccounts/stprod01",
        "AZURE_CLIENT_ID=0b1f6471-1bf0-4dda-aec3-cb9272f09590",
        '"integrity": "sha512-k3Jf9Qm2Xr7Tz1Lp5Wn8Vb4Hc6Yd0Gs2Ae7Ru9Io1Pl3Kj5Mh7Ng9Bf2'
        'Dv4Cx6Zs8Wq0Et2Yr4Ui6Op8As0Df2Gh4Jk6Lm8=="',
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhf",
        "commit 3f2a9c1b7e0d4c8a9b6f5e4d3c2b1a0f9e8d7c6b",
        "trace_id=3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJ"
        "PLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;",
        "https://user@example.com/path",
        "icon@2x.png, README.md, npm i lodash@4.17.21, build@1.2.sh, logo@2x.md",
        "```\nmongodb+srv://<username>:<password>@cluster0.mongodb.net/test\n```",
        "Authorization: Bearer <token>, then <token>abc</token>",
    ],
)
def test_documented_examples_placeholders_and_resource_names_stay_quiet(text: str) -> None:
    assert _scanner().findings(text) == []


def test_a_github_or_npm_token_whose_checksum_holds_is_a_secret_even_if_it_spells_a_word() -> None:
    body = "EXAMPLEaB3dE5fG7hI9jK1lM3nO5pQ"
    crc = zlib.crc32(body.encode())
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    check = ""
    while crc:
        crc, r = divmod(crc, 62)
        check = alphabet[r] + check
    token = "ghp_" + body + check.rjust(6, "0")
    assert secret_checks._crc32_token(token)
    assert ("secret", "github_token") in _kinds(f"GITHUB_TOKEN={token}")
    assert not secret_checks._crc32_token(token[:-1] + ("A" if token[-1] != "A" else "B"))


def test_a_discord_token_is_found_by_its_snowflake_id_or_its_randomness() -> None:
    first = base64.urlsafe_b64encode(b"198622483471925248").decode().rstrip("=")
    assert ("secret", "discord_bot_token") in _kinds(f"{first}.Cl2FMQ.{'ZnCjm1XVW7vRze4b7' * 2}")
    made_up = "MZx9_kQ2vL8pT4wR7yN1bC5d.Gh3-Jk.aB9_cD8eF7gH6iJ5kL4mN3oP2qR1sT0u"
    assert ("secret", "discord_bot_token") in _kinds(made_up)
    assert not _kinds("See docs.python.org/library/re.html and config.yaml.example_settings_here")


def test_a_secret_found_by_its_shape_gives_a_span_over_the_whole_token() -> None:
    text = "export TOKEN=5123456789:AAH3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3x # bot"
    spans = {
        text[f.start : f.end] for f in _scanner().findings(text) if f.kind == "telegram_bot_token"
    }
    assert spans == {"5123456789:AAH3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3x"}


# ----------------------------------------------------------------------------- e-mails


@pytest.mark.parametrize(
    "text",
    [
        "alice@example.md",
        "write to bob@company.py",
        "ana@firma.pl",
        "dev@studio.rs",
        "ops@acme.sh",
        "hi@notion.so",
        "Contact: marko.petrovic@mail.md.",
        "email=j.doe%40firma.md",
    ],
)
def test_an_address_under_a_country_domain_that_looks_like_a_file_suffix_is_an_email(
    text: str,
) -> None:
    assert _scanner().scan(text) == {"email"}


@pytest.mark.parametrize(
    "text",
    [
        "README.md",
        "image@2x.png",
        "see main.py and logo@3x.webp",
        "npm i lodash@4.17.21",
        "git@github.com:org/repo.git",
        "https://user@example.com/x",
        "pkg@1.2.sh",
    ],
)
def test_file_names_package_specs_and_url_users_are_not_emails(text: str) -> None:
    assert "email" not in _scanner().scan(text)


# ----------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    "text",
    [
        '{"phone": "447911123456"}',
        "tel=447911123456",
        "mobile: 5511987654321",
        '{"msisdn": "491711234567"}',
        "phoneNumber: 14155552671",
        "https://wa.me/447911123456",
        "https://wa.me/447911123456?text=hi",
        "phone=%2B447911123456&consent=1",
        "To=%2b14155552671&Body=hello",
        "phone=%2B44%207911%20123456",
    ],
)
def test_a_phone_in_e164_without_its_plus_is_found_where_a_field_or_link_says_so(
    text: str,
) -> None:
    assert "phone" in _scanner().scan(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"order_id": "447911123456"}',
        "user_id=447911123456",
        "ts=1714644862000",
        "https://example.com/447911123456",
        "q=%2B1%2B1",
    ],
)
def test_the_same_digits_in_other_fields_are_not_phones(text: str) -> None:
    assert "phone" not in _scanner().scan(text)
