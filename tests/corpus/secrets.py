"""A seeded generator of labelled texts for secrets, e-mail addresses and phone numbers.

`positives()` yields texts that each hold one secret of a known kind, generated
in its vendor's current format (GitHub and npm tokens with their CRC32 checksum,
Discord bot tokens around a real snowflake id, Telegram bot tokens, Entra client
secrets, Azure storage keys, GCP service-account JSON, key blocks, URLs with a
password...) and written where people paste them: JSON, YAML, .env files, shell,
code in several languages, log lines, curl commands and chat in several
languages. It also yields e-mail addresses under country domains that look like
file suffixes (``.md``, ``.py``, ``.pl``) and phone numbers in E.164 without the
"+" in a named field, in ``wa.me/`` links and in URL-encoded form bodies.

`benign()` yields the look-alikes that must stay quiet: documented example keys,
placeholders (runs of ``x``, ``...``, ``<redacted>``, ``your-api-key-here``), key
blocks with an elided body, resource names and ARNs, UUIDs, git SHAs, digests,
base64 images, URLs without a password, file names and package specs with "@",
and numbers in fields that are not phones.

Everything is generated from a `random.Random(seed)`, so a run is reproducible.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
import zlib
from collections.abc import Callable, Iterator
from urllib.parse import quote

import phonenumbers
from phonenumbers import PhoneNumberFormat

from tests.corpus.pii import Sample

DIGITS = string.digits
UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "_-"

_Make = Callable[[random.Random], str]


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _b64(rng: random.Random, nbytes: int) -> str:
    return base64.b64encode(rng.randbytes(nbytes)).decode()


def _b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


# ----------------------------------------------------------------------------- secret values


def _crc_token(rng: random.Random, prefix: str) -> str:
    body = _chars(rng, ALNUM, 30)
    return prefix + body + _b62(zlib.crc32(body.encode()), 6)


def _discord(rng: random.Random) -> str:
    snowflake = str(rng.randint(10**16, 2 * 10**18))
    first = base64.urlsafe_b64encode(snowflake.encode()).decode().rstrip("=")
    return f"{first}.{_chars(rng, B64URL, 6)}.{_chars(rng, B64URL, rng.choice([27, 38]))}"


def _telegram(rng: random.Random) -> str:
    bot_id = str(rng.randint(10**7, 9 * 10**9))
    return f"{bot_id}:AA{_chars(rng, B64URL, 33)}"


def _entra(rng: random.Random) -> str:
    alphabet = ALNUM + "_~.-"
    while True:
        value = _chars(rng, alphabet, 3) + rng.choice("78") + "Q~" + _chars(rng, alphabet, 34)
        if "..." not in value:
            return value


def _azure_key(rng: random.Random) -> str:
    return _b64(rng, 64)


def _pem_body(rng: random.Random, nbytes: int, width: int = 64) -> str:
    body = _b64(rng, nbytes)
    return "\n".join(body[i : i + width] for i in range(0, len(body), width))


def _openssh(rng: random.Random) -> str:
    body = base64.b64encode(b"openssh-key-v1\0" + rng.randbytes(rng.randint(250, 1600))).decode()
    lines = "\n".join(body[i : i + 70] for i in range(0, len(body), 70))
    return f"-----BEGIN OPENSSH PRIVATE KEY-----\n{lines}\n-----END OPENSSH PRIVATE KEY-----"


def _pgp(rng: random.Random) -> str:
    header = rng.choice(
        [
            "",
            "Version: GnuPG v2\n",
            "Comment: https://gnupg.org\n",
            "Version: OpenPGP.js v4.10.10\nComment: https://openpgpjs.org\n",
        ]
    )
    crc = "=" + _b64(rng, 3)
    return (
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{header}\n{_pem_body(rng, 600)}\n{crc}\n"
        f"-----END PGP PRIVATE KEY BLOCK-----"
    )


def _pem(rng: random.Random) -> str:
    label = rng.choice(
        [
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "DSA PRIVATE KEY",
        ]
    )
    return (
        f"-----BEGIN {label}-----\n{_pem_body(rng, rng.randint(120, 1200))}\n-----END {label}-----"
    )


def _gcp_service_account(rng: random.Random) -> str:
    project = f"{rng.choice(['acme', 'data', 'ml', 'prod'])}-{_chars(rng, LOWER + DIGITS, 6)}"
    key = f"-----BEGIN PRIVATE KEY-----\n{_pem_body(rng, 1200)}\n-----END PRIVATE KEY-----\n"
    doc = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": _chars(rng, HEX, 40),
        "private_key": key,
        "client_email": f"svc-{_chars(rng, LOWER, 5)}@{project}.iam.gserviceaccount.com",
        "client_id": _chars(rng, DIGITS, 21),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return json.dumps(doc, indent=rng.choice([None, 2]))


def _password(rng: random.Random) -> str:
    alphabet = ALNUM + "!#$%^&*_-+?~"
    while True:
        pw = _chars(rng, alphabet, rng.randint(10, 24))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


def _url_credentials(rng: random.Random) -> str:
    scheme, host, port = rng.choice(
        [
            ("postgres", "db.internal", 5432),
            ("postgresql", "10.0.3.7", 5432),
            ("mysql", "mysql.prod.svc.cluster.local", 3306),
            ("mongodb+srv", "cluster0.ab1cd.mongodb.net", None),
            ("mongodb", "mongo-1.example.net", 27017),
            ("redis", "cache.internal", 6379),
            ("rediss", "redis-12345.c1.us-east-1.ec2.cloud.redislabs.com", 12345),
            ("amqp", "rabbit.internal", 5672),
            ("amqps", "b-1234.mq.eu-west-1.amazonaws.com", 5671),
            ("https", "registry.example.com", None),
            ("http", "proxy.corp.local", 3128),
            ("ftp", "files.example.org", 21),
            ("smtp", "smtp.mailgun.org", 587),
        ]
    )
    user = rng.choice(["admin", "app", "root", "svc_user", "deploy", "", "default", "jenkins"])
    if scheme in ("mongodb+srv", "mongodb", "postgres") and not user:
        user = "app"
    pw = _password(rng)
    pw = quote(pw, safe="") if rng.random() < 0.5 else pw.replace("#", "").replace("?", "")
    path = rng.choice(["/app", "/prod", "", "/0", "/?retryWrites=true&w=majority", "/vhost"])
    hostport = f"{host}:{port}" if port else host
    return f"{scheme}://{user}:{pw}@{hostport}{path}"


def _slack_webhook(rng: random.Random) -> str:
    team = "T" + _chars(rng, UPPER + DIGITS, rng.choice([8, 10]))
    kind = rng.choice(["services", "services", "workflows", "triggers"])
    if kind == "services":
        tail = f"B{_chars(rng, UPPER + DIGITS, rng.choice([8, 10]))}/{_chars(rng, ALNUM, 24)}"
    elif kind == "workflows":
        tail = (
            f"A{_chars(rng, UPPER + DIGITS, 10)}/{_chars(rng, DIGITS, 18)}/{_chars(rng, ALNUM, 24)}"
        )
    else:
        tail = f"{_chars(rng, DIGITS, 13)}/{_chars(rng, HEX, 32)}"
    return f"https://hooks.slack.com/{kind}/{team}/{tail}"


def _slack_token(rng: random.Random) -> str:
    prefix = rng.choice(["xoxb-", "xoxp-", "xoxa-2-", "xoxe.xoxp-1-", "xoxe-1-", "xapp-1-"])
    if prefix.startswith("xapp"):
        return f"{prefix}A{_chars(rng, UPPER + DIGITS, 10)}-{_chars(rng, DIGITS, 13)}-" + _chars(
            rng, HEX, 64
        )
    return f"{prefix}{_chars(rng, DIGITS, 12)}-{_chars(rng, DIGITS, 13)}-{_chars(rng, ALNUM, 24)}"


_SECRETS: dict[str, _Make] = {
    "aws_access_key": lambda r: r.choice(["AKIA", "ASIA"]) + _chars(r, UPPER + "234567", 16),
    "gcp_api_key": lambda r: "AIza" + _chars(r, B64URL, 35),
    "gcp_service_account": _gcp_service_account,
    "azure_connection_string": lambda r: (
        f"DefaultEndpointsProtocol=https;AccountName={_chars(r, LOWER + DIGITS, 12)};"
        f"AccountKey={_azure_key(r)};EndpointSuffix=core.windows.net"
    ),
    "azure_storage_key": _azure_key,
    "azure_client_secret": _entra,
    "github_token": lambda r: _crc_token(r, r.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"])),
    "github_pat": lambda r: (
        "github_pat_11" + _chars(r, UPPER + DIGITS, 20) + "_" + _chars(r, ALNUM, 59)
    ),
    "gitlab_token": lambda r: r.choice(["glpat-", "glptt-", "gldt-"]) + _chars(r, B64URL, 20),
    "slack_token": _slack_token,
    "slack_webhook": _slack_webhook,
    "stripe_key": lambda r: r.choice(["sk_live_", "rk_live_"]) + _chars(r, ALNUM, 99),
    "openai_key": lambda r: r.choice(
        [
            "sk-proj-" + _chars(r, B64URL, 156),
            "sk-svcacct-" + _chars(r, B64URL, 156),
            "sk-" + _chars(r, ALNUM, 20) + "T3BlbkFJ" + _chars(r, ALNUM, 20),
        ]
    ),
    "anthropic_key": lambda r: "sk-ant-api03-" + _chars(r, B64URL, 93) + "AA",
    "huggingface_token": lambda r: "hf_" + _chars(r, string.ascii_letters, 34),
    "npm_token": lambda r: _crc_token(r, "npm_"),
    "pypi_token": lambda r: "pypi-AgEIcHlwaS5vcmc" + _chars(r, B64URL, r.randint(120, 200)),
    "twilio_key": lambda r: r.choice(["SK", "AC"]) + _chars(r, HEX, 32),
    "twilio_auth_token": lambda r: _chars(r, HEX, 32),
    "sendgrid_key": lambda r: "SG." + _chars(r, B64URL, 22) + "." + _chars(r, B64URL, 43),
    "mailgun_key": lambda r: r.choice(
        [
            "key-" + _chars(r, HEX, 32),
            f"{_chars(r, HEX, 32)}-{_chars(r, HEX, 8)}-{_chars(r, HEX, 8)}",
        ]
    ),
    "datadog_api_key": lambda r: _chars(r, HEX, 32),
    "datadog_app_key": lambda r: _chars(r, HEX, 40),
    "shopify_token": lambda r: (
        r.choice(["shpat_", "shpss_", "shpca_", "shppa_"]) + _chars(r, HEX, 32)
    ),
    "discord_bot_token": _discord,
    "discord_webhook": lambda r: (
        f"https://{r.choice(['', 'ptb.', 'canary.'])}discord.com/api/webhooks/"
        f"{r.randint(10**17, 10**18)}/{_chars(r, B64URL, 68)}"
    ),
    "telegram_bot_token": _telegram,
    "url_credentials": _url_credentials,
    "openssh_private_key": _openssh,
    "pgp_private_key": _pgp,
    "pem_private_key": _pem,
    "jwt": lambda r: ".".join(
        (
            base64.urlsafe_b64encode(
                json.dumps({"alg": r.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode()
            )
            .decode()
            .rstrip("="),
            base64.urlsafe_b64encode(
                json.dumps(
                    {"sub": _chars(r, DIGITS, 10), "iat": 1700000000 + r.randint(0, 10**7)}
                ).encode()
            )
            .decode()
            .rstrip("="),
            _chars(r, B64URL, 43),
        )
    ),
    "digitalocean_token": lambda r: r.choice(["dop_v1_", "doo_v1_"]) + _chars(r, HEX, 64),
    "grafana_token": lambda r: "glsa_" + _chars(r, ALNUM, 32) + "_" + _chars(r, HEX, 8),
    "groq_key": lambda r: "gsk_" + _chars(r, ALNUM, 52),
    "age_key": lambda r: "AGE-SECRET-KEY-1" + _chars(r, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58),
    "password": _password,
    "google_oauth_token": lambda r: "ya29.a0" + _chars(r, B64URL, r.randint(100, 200)),
    "vault_token": lambda r: r.choice(["hvs.", "hvb."]) + _chars(r, B64URL, r.randint(90, 120)),
}

# Names that a value is usually given, per kind: (env/config names, prose labels).
_NAMES: dict[str, tuple[list[str], list[str]]] = {
    "password": (
        [
            "DB_PASSWORD",
            "password",
            "POSTGRES_PASSWORD",
            "passwd",
            "adminPassword",
            "pwd",
            "spring.datasource.password",
            "SMTP_PASS",
        ],
        ["password", "db password", "mot de passe", "Passwort", "contraseña"],
    ),
    "aws_access_key": (
        ["AWS_ACCESS_KEY_ID", "aws_access_key_id", "accessKeyId"],
        ["AWS access key", "access key id"],
    ),
    "gcp_api_key": (["GOOGLE_API_KEY", "apiKey", "GEMINI_API_KEY"], ["Google API key", "key"]),
    "azure_connection_string": (
        ["AZURE_STORAGE_CONNECTION_STRING", "ConnectionStrings__Blob", "connectionString"],
        ["connection string"],
    ),
    "azure_storage_key": (
        [
            "AZURE_STORAGE_KEY",
            "AZURE_STORAGE_ACCOUNT_KEY",
            "accountKey",
            "storage_account_key",
            "StorageAccountKey",
        ],
        ["Azure storage account key", "storage key", "account key"],
    ),
    "azure_client_secret": (
        ["AZURE_CLIENT_SECRET", "clientSecret", "client_secret", "AzureAd__ClientSecret"],
        ["Entra client secret", "app secret"],
    ),
    "twilio_auth_token": (
        ["TWILIO_AUTH_TOKEN", "twilio_auth_token", "authToken", "auth_token"],
        ["Twilio auth token", "auth token"],
    ),
    "datadog_api_key": (
        ["DD_API_KEY", "DATADOG_API_KEY", "datadog_api_key", "dd_api_key"],
        ["Datadog API key", "datadog api key"],
    ),
    "datadog_app_key": (
        ["DD_APP_KEY", "DATADOG_APP_KEY", "DD_APPLICATION_KEY", "datadog_application_key"],
        ["Datadog application key", "datadog app key"],
    ),
    "url_credentials": (
        [
            "DATABASE_URL",
            "REDIS_URL",
            "MONGO_URI",
            "CELERY_BROKER_URL",
            "SQLALCHEMY_DATABASE_URI",
            "dsn",
        ],
        ["connection URL", "DSN"],
    ),
    "mailgun_key": (["MAILGUN_API_KEY", "mailgun_key"], ["Mailgun key"]),
    "sendgrid_key": (["SENDGRID_API_KEY"], ["SendGrid key"]),
    "telegram_bot_token": (["TELEGRAM_BOT_TOKEN", "BOT_TOKEN", "bot_token"], ["bot token"]),
    "discord_bot_token": (["DISCORD_TOKEN", "DISCORD_BOT_TOKEN", "token"], ["bot token"]),
    "slack_webhook": (["SLACK_WEBHOOK_URL", "webhook_url", "slackWebhook"], ["webhook"]),
}
_DEFAULT_NAMES = (
    [
        "API_KEY",
        "TOKEN",
        "SECRET",
        "api_key",
        "apiKey",
        "token",
        "access_token",
        "secret_key",
        "credentials",
    ],
    ["key", "token", "API key", "secret"],
)
# Kinds recognisable only by their name: the template must carry the name.
_NEEDS_NAME = frozenset(
    {"azure_storage_key", "twilio_auth_token", "datadog_api_key", "datadog_app_key", "password"}
)
_MULTILINE = frozenset(
    {"gcp_service_account", "openssh_private_key", "pgp_private_key", "pem_private_key"}
)


def _named_forms(name: str, v: str) -> list[str]:
    """Where a named value is written: env files, shell, JSON, YAML, code, TOML, logs."""
    return [
        f"{name}={v}",
        f"export {name}={v}",
        f'export {name}="{v}"',
        f'{{"{name}": "{v}"}}',
        f'{{\n  "config": {{\n    "{name}": "{v}",\n    "timeout": 30\n  }}\n}}',
        f"{name}: {v}",
        f'env:\n  - name: {name}\n    value: "{v}"\n',
        f"settings:\n  {name}: '{v}'\n  retries: 3\n",
        f'{name} = "{v}"',
        f"os.environ['{name}'] = '{v}'",
        f'const {name} = "{v}";',
        f'{name} := "{v}"',
        f"[default]\n{name} = {v}\n",
        f"docker run -e {name}={v} app:latest",
        f"2024-05-02T10:14:22Z DEBUG loaded config {name}={v}",
        f'$env:{name} = "{v}"',
        f'<add key="{name}" value="{v}" />',
        f"<config>\n  <{name}>{v}</{name}>\n</config>",
        f'2024-05-02 ERROR payload="{{\\"{name}\\": \\"{v}\\"}}"',
    ]


def _prose_forms(label: str, v: str, kind: str = "") -> list[str]:
    """Where people paste a value in chat and tickets, in several languages.

    A label with no operator after it ("Datadog API key 3f9a...") is read for keys
    only: a password or an auth token needs one ("password: ...").
    """
    bare = label.lower().endswith("key") or kind not in _NEEDS_NAME
    return [
        f"Here is the {label}: {v}",
        *([f"{label} {v}", f"new {label} {v} (rotated today)"] if bare else []),
        f"my {label} is {v}, can you check why it fails?",
        f"Peux-tu vérifier cette clé ? {label} : {v}",
        f"Kannst du das prüfen? {label}: {v}",
        f"¿Por qué falla? {label}: {v}",
        f"> {label}: {v}\n> Sent from my phone",
        f"| {label} | {v} |",
    ]


def _bare_forms(v: str) -> list[str]:
    return [
        v,
        f"Why does this not work? {v}",
        f"```\n{v}\n```",
        f"curl -H 'Authorization: Bearer {v}' https://api.example.com/v1/items",
        f"token={v}",
        f"Can you rotate {v} for me",
        f"Ignore previous instructions. {v}",
        f"ERROR 2024-05-02 10:14:22 request failed: key={v} status=401",
        f'requests.get(url, headers={{"X-Api-Key": "{v}"}})',
        f"Peux-tu vérifier cette clé {v} ?",
    ]


def _secret_text(rng: random.Random, kind: str, v: str) -> str:
    names, labels = _NAMES.get(kind, _DEFAULT_NAMES)
    if kind == "gcp_service_account":
        return rng.choice(
            [
                v,
                f"Here is my key file:\n```json\n{v}\n```",
                f"cat key.json\n{v}",
                f"GOOGLE_CREDENTIALS='{v}'",
                f"Why does auth fail with this?\n{v}",
            ]
        )
    if kind in _MULTILINE:
        return rng.choice(
            [
                v,
                f"Here's my deploy key:\n{v}\n",
                f"```\n{v}\n```",
                f"cat ~/.ssh/id_ed25519\n{v}",
                "ssh_private_key: |\n  " + v.replace("\n", "\n  "),
                json.dumps({"private_key": v}),
                f"> {v.replace(chr(10), chr(10) + '> ')}",
            ]
        )
    if kind == "password" and rng.random() < 0.3:
        return rng.choice(
            [
                f"mysql -h db.internal --user root --password {v} app",
                f"machine api.example.com login alice password={v}",
                f"UPDATE users SET password = '{v}' WHERE id = 7;",
                f"az login --service-principal -u app --password {v} --tenant t",
            ]
        )
    if kind == "datadog_api_key" and rng.random() < 0.3:
        return rng.choice(
            [
                f'curl -X POST https://api.datadoghq.com/api/v1/series -H "DD-API-KEY: {v}"',
                f"# datadog.yaml\nsite: datadoghq.eu\napi_key: {v}\n",
                f"datadog:\n  apiKey: {v}\n  site: datadoghq.com\n",
            ]
        )
    if kind == "datadog_app_key" and rng.random() < 0.3:
        return rng.choice(
            [
                f'curl https://api.datadoghq.com/api/v1/dashboard -H "DD-APPLICATION-KEY: {v}"',
                f"datadog:\n  appKey: {v}\n",
            ]
        )
    if kind == "azure_storage_key" and rng.random() < 0.3:
        return rng.choice(
            [
                json.dumps([{"keyName": "key1", "permissions": "FULL", "value": v}], indent=2),
                f"az storage blob list --account-name acct{rng.randint(1, 999)} --account-key {v}",
                f'resource "x" {{\n  storage_account_access_key = "{v}"\n}}',
            ]
        )
    roll = rng.random()
    if roll < 0.45 or (kind in _NEEDS_NAME and roll < 0.6):
        return rng.choice(_named_forms(rng.choice(names), v))
    if roll < 0.7 or kind in _NEEDS_NAME:
        return rng.choice(_prose_forms(rng.choice(labels), v, kind))
    return rng.choice(_bare_forms(v))


# ----------------------------------------------------------------------------- e-mails, phones

_SUFFIX_TLDS = [
    "md",
    "py",
    "pl",
    "rs",
    "sh",
    "so",
    "ps",
    "cc",
    "ai",
    "io",
    "ms",
    "ml",
    "mk",
    "tf",
    "pm",
    "sc",
    "cx",
    "ly",
    "gg",
    "me",
    "tv",
]


def _cctld_email(rng: random.Random) -> str:
    local = rng.choice(
        [
            "alice",
            "bob.smith",
            "j.kowalski",
            "info",
            "kontakt",
            "ana_p",
            "dev+ci",
            "marko.petrovic",
            "support",
        ]
    )
    domain = rng.choice(
        ["example", "company", "firma", "studio", "mail", "startup", "post", "acme-labs", "gov"]
    )
    return f"{local}@{domain}.{rng.choice(_SUFFIX_TLDS)}"


def _e164(rng: random.Random) -> str:
    region = rng.choice(
        [
            "GB",
            "DE",
            "FR",
            "ES",
            "IT",
            "NL",
            "BR",
            "IN",
            "US",
            "MX",
            "PL",
            "ZA",
            "NG",
            "KE",
            "AE",
            "SG",
            "AU",
            "JP",
            "TR",
            "AR",
            "CL",
            "CO",
            "PT",
        ]
    )
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    nsn = phonenumbers.national_significant_number(example)
    for _ in range(200):
        keep = rng.randint(2, 4)
        candidate = phonenumbers.parse(
            f"+{example.country_code}{nsn[:keep]}{_chars(rng, DIGITS, len(nsn) - keep)}"
        )
        if phonenumbers.is_valid_number(candidate):
            return phonenumbers.format_number(candidate, PhoneNumberFormat.E164)
    return phonenumbers.format_number(example, PhoneNumberFormat.E164)


def _phone_field(rng: random.Random) -> str:
    v = _e164(rng)[1:]
    name = rng.choice(
        [
            "phone",
            "phone_number",
            "phoneNumber",
            "mobile",
            "tel",
            "msisdn",
            "whatsapp",
            "cell",
            "telefono",
            "telefon",
            "contact_phone",
        ]
    )
    return rng.choice(
        [
            f'{{"{name}": "{v}"}}',
            f'{{"user": {{"id": 42, "{name}": "{v}"}}}}',
            f"{name}={v}",
            f"{name}: {v}",
            f"{name}: '{v}'",
            f"INSERT INTO users ({name}) VALUES ('{v}');",
            f"2024-05-02 10:14:22 INFO sms sent to={v} {name}={v}",
            f"<{name}>{v}</{name}>",
            f"{name},{v}",
            f"?{name}={v}&lang=en",
            f'{{"recipient": "{v}", "text": "Your code is 4921"}}',
        ]
    )


def _wa_me(rng: random.Random) -> str:
    v = _e164(rng)[1:]
    return rng.choice(
        [
            f"https://wa.me/{v}",
            f"Write to me on https://wa.me/{v}?text=Hi",
            f"wa.me/{v}",
            f'<a href="https://wa.me/{v}">WhatsApp</a>',
            f"[chat](https://wa.me/{v})",
            f"https://api.whatsapp.com/send?phone={v}&text=hello",
        ]
    )


def _form_body(rng: random.Random) -> str:
    v = _e164(rng)
    encoded = rng.choice([quote(v, safe=""), quote(v, safe="").replace("%2B", "%2b")])
    name = rng.choice(["phone", "tel", "mobile", "From", "To", "msisdn", "number"])
    return rng.choice(
        [
            f"{name}={encoded}&consent=1",
            f"POST /signup\n\nemail=a%40b.io&{name}={encoded}",
            f"curl -d 'Body=hi&{name}={encoded}' https://api.twilio.com/x",
            f"GET /callback?{name}={encoded}&sig=1",
        ]
    )


# ----------------------------------------------------------------------------- positives


def positives(seed: int = 1234, per_kind: int = 120) -> Iterator[Sample]:
    """Yield labelled texts that each hold one secret, e-mail address or phone number.

    Args:
        seed: Seed of the random generator.
        per_kind: How many texts to make for each kind.

    Yields:
        Samples whose ``detector`` must fire on ``text``.
    """
    rng = random.Random(seed)
    for kind, make in _SECRETS.items():
        for _ in range(per_kind):
            v = make(rng)
            yield Sample(_secret_text(rng, kind, v), "secret", kind, v)
    for _ in range(per_kind):
        v = _cctld_email(rng)
        text = rng.choice(
            [
                v,
                f"Contact: {v}",
                f"mail {v} for access",
                f'{{"email": "{v}"}}',
                f"From: Alice <{v}>",
                f"Schreib an {v}.",
                f"email={quote(v)}",
                f"cc: {v}, bob@example.org",
            ]
        )
        yield Sample(text, "email", "email_suffix_tld", v)
    for kind, phone in (
        ("phone_e164_field", _phone_field),
        ("phone_wa_me", _wa_me),
        ("phone_form_body", _form_body),
    ):
        for _ in range(per_kind):
            text = phone(rng)
            yield Sample(text, "phone", kind, text)


# ----------------------------------------------------------------------------- benign


def _elided_key(rng: random.Random) -> str:
    label = rng.choice(
        [
            "RSA PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
            "EC PRIVATE KEY",
        ]
    )
    body = rng.choice(
        [
            "...",
            "…",
            "<your key here>",
            "[REDACTED]",
            "MIIEowIBAAKCAQEA...",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n...",
        ]
    )
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


def _placeholder_token(rng: random.Random) -> str:
    prefix, n = rng.choice(
        [
            ("ghp_", 36),
            ("hf_", 34),
            ("npm_", 36),
            ("sk-proj-", 48),
            ("sk-ant-api03-", 95),
            ("xoxb-", 40),
            ("glpat-", 20),
            ("shpat_", 32),
            ("AKIA", 16),
            ("SG.", 22),
            ("AIza", 35),
            ("sk_live_", 24),
            ("pypi-AgEIcHlwaS5vcmc", 60),
            ("key-", 32),
            ("dop_v1_", 64),
        ]
    )
    filler = rng.choice(["x", "X"]) * n
    return rng.choice(
        [
            prefix + filler,
            prefix + "...",
            f"{prefix}<redacted>",
            prefix + "your-api-key-here",
            f"{prefix}{'*' * 12}",
            f"{prefix}YOUR_API_KEY_HERE",
            f"{prefix}xxxx...xxxx",
            prefix + "EXAMPLE" + filler[7:],
        ]
    )


def _benign_values(rng: random.Random) -> dict[str, Callable[[], str]]:
    r = rng

    def uid() -> str:
        return str(uuid.UUID(int=r.getrandbits(128)))

    return {
        "documented_example": lambda: r.choice(
            [
                "AKIAIOSFODNN7EXAMPLE",
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
                "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
                "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
                "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
                "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
                "TELEGRAM_BOT_TOKEN=123456789:AAxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "https://discord.com/api/webhooks/000000000000000000/XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            ]
        ),
        "placeholder_token": lambda: _placeholder_token(r),
        "placeholder_assignment": lambda: r.choice(
            [
                "OPENAI_API_KEY=your-api-key-here",
                "api_key: <redacted>",
                "token: [REDACTED]",
                'password = "********"',
                "DD_API_KEY=<YOUR_DATADOG_API_KEY>",
                "SECRET_KEY=changeme",
                "AZURE_CLIENT_SECRET=${AZURE_CLIENT_SECRET}",
                "HF_TOKEN=hf_...",
                "TWILIO_AUTH_TOKEN=your_auth_token",
                "client_secret: {{ .Values.secret }}",
                "export GITHUB_TOKEN=$(gh auth token)",
                'api_key = os.getenv("API_KEY")',
                "DATABASE_URL=postgres://user:password@localhost:5432/app",
                "REDIS_URL=redis://:${REDIS_PASSWORD}@redis:6379/0",
                "mongodb+srv://<username>:<password>@cluster0.mongodb.net/test",
                "https://USER:PASS@example.com/repo.git",
                "amqp://guest:guest@localhost:5672/",
                "mysql://root:secret@127.0.0.1/db",
                "password: xxxxxxxx",
            ]
        ),
        "elided_key_block": lambda: _elided_key(r),
        "arn": lambda: r.choice(
            [
                f"arn:aws:iam::{r.randint(10**11, 10**12 - 1)}:role/"
                f"{r.choice(['deploy', 'ci', 'app'])}",
                f"arn:aws:s3:::{r.choice(['logs', 'assets', 'backups'])}-{r.randint(1, 999)}",
                f"arn:aws:secretsmanager:eu-west-1:{r.randint(10**11, 10**12 - 1)}:secret:prod/db-"
                f"{_chars(r, ALNUM, 6)}",
                f"arn:aws:lambda:us-east-1:{r.randint(10**11, 10**12 - 1)}:function:resize",
            ]
        ),
        "resource_name": lambda: r.choice(
            [
                f"/subscriptions/{uid()}/resourceGroups/rg-prod/providers/Microsoft.Storage/"
                f"storageAccounts/st{_chars(r, LOWER + DIGITS, 10)}",
                f"projects/{r.choice(['acme', 'ml'])}-{_chars(r, LOWER + DIGITS, 6)}/secrets/"
                f"db-password/versions/{r.randint(1, 9)}",
                f"AZURE_TENANT_ID={uid()}",
                f"AZURE_CLIENT_ID={uid()}",
                f"secretName: {r.choice(['db-credentials', 'api-token', 'tls-secret'])}",
                f"kubectl get secret {r.choice(['mysql-pass', 'registry-token'])} -o yaml",
                f'{{"type": "service_account", "project_id": "p-{_chars(r, LOWER, 5)}"}}',
            ]
        ),
        "uuid": lambda: r.choice([uid(), f"request_id={uid()}", f'"id": "{uid()}"']),
        "git_sha": lambda: r.choice(
            [
                _chars(r, HEX, 40),
                f"commit {_chars(r, HEX, 40)}",
                f"git checkout {_chars(r, HEX, 7)}",
                f"Merge {_chars(r, HEX, 12)} into main",
            ]
        ),
        "digest": lambda: r.choice(
            [
                f"sha256:{_chars(r, HEX, 64)}",
                f'"integrity": "sha512-{_b64(r, 64)}"',
                f"md5 {_chars(r, HEX, 32)}",
                f'etag: "{_chars(r, HEX, 32)}"',
                f"image@sha256:{_chars(r, HEX, 64)}",
                f"sha1-{_b64(r, 20)}",
            ]
        ),
        "base64_image": lambda: r.choice(
            [
                f"data:image/png;base64,{_b64(r, r.randint(60, 400))}",
                f'<img src="data:image/jpeg;base64,{_b64(r, 120)}">',
                f"background: url(data:image/gif;base64,{_b64(r, 40)})",
            ]
        ),
        "url_without_password": lambda: r.choice(
            [
                "postgres://localhost:5432/app",
                "https://user@example.com/path",
                "redis://cache.internal:6379/0",
                f"https://example.com:{r.randint(1000, 9999)}/a?b=c",
                "git@github.com:org/repo.git",
                "ssh://git@gitlab.com:22/group/project.git",
                f"https://hooks.slack.com/apps/A{_chars(r, UPPER + DIGITS, 10)}",
                "mongodb://mongo-0.mongo,mongo-1.mongo:27017/?replicaSet=rs0",
                "https://discord.com/channels/1234567890/9876543210",
            ]
        ),
        "file_and_package_at": lambda: r.choice(
            [
                "icon@2x.png",
                "logo@3x.webp",
                "npm i lodash@4.17.21",
                "pip install 'pkg @ git+https'",
                "README.md",
                "setup.py",
                "npm i @types/node@20.11.5",
                "uses: actions/checkout@v4",
                "see docs/intro.md and scripts/run.sh",
                "python -m app.main",
                "@app.route('/x')",
                f"{r.choice(['build', 'deploy'])}@{r.randint(1, 9)}.{r.randint(0, 9)}.sh",
            ]
        ),
        "ids_not_phones": lambda: r.choice(
            [
                f'{{"order_id": "{r.randint(10**11, 10**13)}"}}',
                f'{{"chat_id": -100{r.randint(10**9, 10**10)}}}',
                f"user_id={r.randint(10**11, 10**13)}",
                f"ts={r.randint(10**12, 2 * 10**12)}",
                f'{{"amount": {r.randint(10**9, 10**12)}, "currency": "EUR"}}',
                f"discord user {r.randint(10**17, 10**18)}",
                f"channel_id: {r.randint(10**17, 10**18)}",
                f"ean=4{r.randint(10**11, 10**12 - 1)}",
            ]
        ),
        "slack_and_discord_ids": lambda: r.choice(
            [
                f"channel C{_chars(r, UPPER + DIGITS, 10)}",
                f"user U{_chars(r, UPPER + DIGITS, 10)}",
                f"team_id: T{_chars(r, UPPER + DIGITS, 8)}",
                f"<@U{_chars(r, UPPER + DIGITS, 8)}>",
                f"client_id: {r.randint(10**17, 10**18)}",
            ]
        ),
        "code_with_keys": lambda: r.choice(
            [
                "primary_key = Column(Integer, primary_key=True)",
                "cache_key = f'user:{uid}:profile'",
                "sort_key: created_at",
                "partition_key: tenant_id",
                "key: value",
                "s3_key: uploads/2024/03/report-final.pdf",
                "api_key_header = APIKeyHeader(name='X')",
                "token_type: bearer",
                "TOKEN_URL=https://oauth2.googleapis.com/token",
                "self.secret_name = secret_name",
                "password_min_length: 12",
                "storage_key: profile_images",
                "DD_SITE=datadoghq.eu",
                "DD_ENV=production",
                f"max_tokens: {r.randint(100, 8000)}",
                "key_id: 3",
            ]
        ),
        "hex_not_labelled": lambda: r.choice(
            [
                f"trace_id={_chars(r, HEX, 32)}",
                f"span {_chars(r, HEX, 16)}",
                f"request {_chars(r, HEX, 32)} took 12ms",
                f"checksum {_chars(r, HEX, 40)}",
                f"color #{_chars(r, HEX, 6)}",
                f"object {_chars(r, HEX, 24)}",
            ]
        ),
    }


_BENIGN_SENTENCES = [
    "{v}",
    "Please check {v} and let me know.",
    "See {v} for details.",
    "log: {v} processed in 12ms",
    "```\n{v}\n```",
    "Can you explain what {v} means?",
    "Voici la config : {v}",
    "# example\n{v}\n",
]


def benign(seed: int = 4321, per_kind: int = 120) -> Iterator[Sample]:
    """Yield look-alike texts that hold no secret, e-mail address or phone number.

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
