"""Secrets by their shape: vendor tokens, private keys, JWTs, credentials in URLs.

This module owns the passes that find a secret by its format: tokens with a
vendor prefix ("ghp_", "sk-", "xoxb-", "npm_", "shpat_"), OpenSSH, PEM and PGP
private-key blocks, JWTs whose header decodes to JSON with an "alg", Telegram
and Discord bot tokens, Entra (Azure AD) client secrets, Azure storage keys,
``Authorization`` headers, passwords in URLs and webhook URLs (Slack, Discord).
Keys with a capitalised prefix (AWS, Google Cloud, SendGrid, Twilio, Azure
connection strings) are matched by `capitals` and judged here. Secrets known by
their label (``DB_PASSWORD=...``) are `assignments`. Every pass starts with a
literal, which `re` finds at memchr speed; a candidate that is a placeholder or a
documented example (`secret_checks`) is no finding.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Iterator

from .assignments import (
    _ASSIGNMENT_OPS,
    _KEY_THEN_VALUE,
    _assignment,
    _on_assignment,
    _on_flag,
    _on_label_then_value,
)
from .finding import Finding
from .phones import _on_e164
from .secret_checks import _crc32_token, _discord_user_id, _elided, _masked, _placeholder
from .text import _char_classes, _entropy, _joins

_Handler = Callable[[str, re.Match[str], frozenset[str]], Iterator[Finding]]

# ----------------------------------------------------------------------------- prefixed secrets

# Each branch checks the token's prefix with a look-behind from the "_" or "-";
# a group named after the kind ends the branch ("_" suffixes keep names unique).
_UNDERSCORE_PREFIXED = (
    r"_(?<=[A-Za-z0-9]_)(?=[A-Za-z0-9_-]{10})(?:"
    r"(?<=\bgh[pousr]_)[A-Za-z0-9]{30,251}(?P<github_token>)"
    r"|(?<=\bgithub_)pat_[A-Za-z0-9_]{40,512}(?P<github_pat>)"
    r"|(?<=\b[sr]k_)(?:live|test)_[0-9A-Za-z]{10,512}(?P<stripe_key>)"
    r"|(?<=\bwhsec_)[0-9A-Za-z]{24,512}(?P<stripe_key_>)"
    r"|(?<=\bhf_)[A-Za-z0-9]{30,512}(?P<huggingface_token>)"
    r"|(?<=\bapi_org_)[A-Za-z0-9]{30,512}(?P<huggingface_token_>)"
    r"|(?<=\bnpm_)[A-Za-z0-9]{36}(?![A-Za-z0-9])(?P<npm_token>)"
    r"|(?<=\bshp(?:at|ca|pa|ss)_)[0-9a-fA-F]{32}(?P<shopify_token>)"
    r"|(?<=\bdo[por]_)v1_[0-9a-f]{64}(?P<digitalocean_token>)"
    r"|(?<=\bglsa_)[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}(?P<grafana_token>)"
    r"|(?<=\bglc_)[A-Za-z0-9+/]{32,400}={0,2}(?P<grafana_token_>)"
    r"|(?<=\bpscale_)(?:tkn|pw|oauth)_[\w.-]{32,64}(?P<planetscale_token>)"
    r"|(?<=\blin_)api_[A-Za-z0-9]{40}(?P<linear_key>)"
    r"|(?<=\bsntry[su]_)[\w=+/-]{40,}(?P<sentry_token>)"
    r"|(?<=\brubygems_)[0-9a-f]{48}(?P<rubygems_key>)"
    r"|(?<=\bgsk_)[A-Za-z0-9]{52}(?P<groq_key>)"
    r"|(?<=\br8_)[A-Za-z0-9]{37}(?P<replicate_token>)"
    r"|(?<=\bsbp_)[0-9a-f]{40}(?P<supabase_token>)"
    r"|(?<=\blsv2_)(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}(?P<langsmith_key>)"
    r"|(?<=\bfigd_)[\w-]{40}(?P<figma_token>)"
    r"|(?<=\bntn_)[0-9]{11}[A-Za-z0-9]{35}(?P<notion_token>)"
    r"|(?<=\bsecret_)[A-Za-z0-9]{43}(?![\w-])(?P<notion_token_>)"
    r"|(?<=\bdckr_)pat_[\w-]{27}(?P<docker_token>)"
    r"|(?<=\bshippo_)(?:live|test)_[0-9a-f]{40}(?P<shippo_token>)"
    r"|(?<=\bops_)eyJ[\w-]{40,}(?P<onepassword_token>)"
    r")"
)
_DASH_PREFIXED = (
    r"-(?:----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?P<private_key>)"
    # A command-line flag and its value: "--password S3cr3t!", "--client-secret ...".
    r"|(?<=[\s\"'`]-)-(?:[a-z]+-){0,3}(?:password|passwd|pass|secret|token)[ \t]+"
    r"(?=[^\s-])(?P<flag>)"
    r"|(?<=[A-Za-z0-9]-)(?=[A-Za-z0-9_-]{10})(?:"
    r"(?<=\bgl(?:pat|ptt|cbt|imt|oas)-)[\w-]{20,512}(?P<gitlab_token>)"
    r"|(?<=\bgl(?:dt|rt|ft)-)[\w-]{20,512}(?P<gitlab_token_>)"
    r"|(?<=\bgl(?:soat|ffct)-)[\w-]{20,512}(?P<gitlab_token__>)"
    r"|(?<=\bxox[abposrecd]-)[0-9A-Za-z-]{10,512}(?P<slack_token>)"
    r"|(?<=\bxapp-)[0-9A-Za-z-]{10,512}(?P<slack_token__>)"
    r"|(?<=\bsk-)ant-[\w-]{32,512}(?P<anthropic_key>)"
    r"|(?<=\bsk-)(?:proj|svcacct|admin)-[\w-]{40,512}(?P<openai_key>)"
    r"|(?<=\bsk-)[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?P<openai_key_>)"
    r"|(?<=\bsk-)[A-Za-z0-9]{32,512}(?![\w-])(?P<openai_key__>)"
    r"|(?<=\bsk-)or-v1-[0-9a-f]{64}(?P<openrouter_key>)"
    r"|(?<=\bpypi-)AgE[\w-]{50,512}(?P<pypi_token>)"
    r"|(?<=\bkey-)[0-9a-f]{32}(?P<mailgun_key>)"
    r"|(?<=\b[0-9a-f]{32}-)[0-9a-f]{8}-[0-9a-f]{8}\b(?P<mailgun_key_>)"
    r"|(?<=\b[0-9a-f]{32}-)us[0-9]{1,2}\b(?P<mailchimp_key>)"
    r"|(?<=\bPMAK-)[0-9a-f]{24}-[0-9a-f]{34}(?P<postman_key>)"
    r"|(?<=\bNRAK-)[A-Z0-9]{27}(?P<newrelic_key>)"
    r"|(?<=\bHRKU-)[\w-]{40,80}(?P<heroku_key>)"
    r"|(?<=\bGOCSPX-)[\w-]{28}(?P<google_oauth_secret>)"
    r"|(?<=\bsq0(?:atp|csp)-)[\w-]{22,43}(?P<square_token>)"
    r"|(?<=\bxkeysib-)[0-9a-f]{64}-[A-Za-z0-9]{16}(?P<brevo_key>)"
    r"|(?<=\bpplx-)[A-Za-z0-9]{48}(?P<perplexity_key>)"
    r"|(?<=\bxai-)[A-Za-z0-9]{70,90}(?P<xai_key>)"
    r"|(?<=\btskey-)(?:api|auth|client|scim|webhook)-[A-Za-z0-9]{6,}-[A-Za-z0-9]{20,}"
    r"(?P<tailscale_key>)"
    r"|(?<=\bAGE-)SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}(?P<age_key>)"
    r"|(?<=\bpul-)[0-9a-f]{40}(?P<pulumi_token>)"
    r"))"
)
# Kinds whose body must hold a digit: their placeholders are words ("xoxb-your-token").
_NEEDS_DIGIT = frozenset({"slack_token", "anthropic_key", "openai_key"})
_CHECKSUMMED = frozenset({"github_token", "npm_token"})


def _on_prefixed(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start, end = m.span()
    kind = (m.lastgroup or "").rstrip("_")
    if kind == "private_key":
        yield from _private_key(text, start, end)
        return
    if kind == "flag":
        yield from _on_flag(text, m, wanted)
        return
    body = text[start + 1 : end]
    # Back over the prefix ("ghp", "github", "sk") that the look-behind checked.
    floor = max(0, start - 20)
    while start > floor and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        start -= 1
    token = text[start:end]
    if kind in _CHECKSUMMED and _crc32_token(token):
        yield Finding("secret", kind, start, end)
        return
    if (
        _placeholder(body)
        or _placeholder(token)
        or (kind in _NEEDS_DIGIT and not any(c.isdigit() for c in body))
    ):
        return
    yield Finding("secret", kind, start, end)


# ----------------------------------------------------------------------------- private keys


def _private_key(text: str, start: int, end: int) -> Iterator[Finding]:
    """A key block, unless its body is elided ("...") or too short to be a key."""
    rx = _rx()
    # The next armour line ends the body: its END line, or another block's BEGIN
    # ("-----BEGIN" a thousand times over is read once, not a thousand times).
    dash = text.find("-----", end, end + 16384)
    close = rx.pem_end.match(text, dash) if dash >= 0 else None
    body = text[end : dash if dash >= 0 else end + 1024]
    if not close:
        # A key pasted without its last line: the body runs to the first blank line.
        body = body[:1024].replace("\\n", "\n").split("\n\n", 1)[0]
    # The head and tail of the body tell a key from its elided example ("..."); a
    # key's whole body costs more to read than it tells.
    sample = body if len(body) <= 800 else body[:600] + "\n" + body[-200:]
    if _elided(sample) or not rx.base64_run.search(sample.replace("\\n", "\n")):
        return
    stop = close.end() if close else end
    kind = "private_key"
    if "service_account" in text[max(0, start - 2048) : start]:
        kind = "gcp_service_account"
    yield Finding("secret", kind, start, stop)


# ----------------------------------------------------------------------------- JWTs

# Starting a token only, with bounded segments, so that "eyJeyJeyJ..." stays linear.
_JWT = r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{5,1000}\.[A-Za-z0-9_-]{2,16000}\.[A-Za-z0-9_-]{0,1000}"


def _on_jwt(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = m.start()
    if start and (_joins(text[start - 1]) or text[start - 1] in "_-"):
        return
    header = m.group().split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return
    if isinstance(decoded, dict) and "alg" in decoded:
        yield Finding("secret", "jwt", start, m.end())


# ----------------------------------------------------------------------------- bot tokens

# Telegram: the bot's numeric id, ":", then 35 characters starting "AA".
# Found in the sweep over ":" of `assignments`, which has already consumed the ":".
_TELEGRAM = r"(?<=[0-9]{6}:)[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])(?P<other>)"


def _on_telegram(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = m.start()
    while start > max(0, m.start() - 11) and text[start - 1].isdigit():
        start -= 1
    digits = m.start() - start
    before = text[max(0, start - 3) : start]
    glued = start and text[start - 1].isalnum() and before != "bot"
    token = text[m.start() + 1 : m.end()]
    # Today's tokens start "AA"; other random 35-character tails count too.
    shaped = token.startswith("AA") or (_char_classes(token) >= 3 and _entropy(token) >= 4.0)
    if 8 <= digits <= 10 and not glued and shaped and not _placeholder(token):
        yield Finding("secret", "telegram_bot_token", start, m.end())


# Discord: base64 of the bot's user id, a 6-character time stamp, an HMAC. The sweep
# over "." also finds the tokens whose prefix ends in a dot (Google OAuth "ya29.",
# Vault "hvs.", Doppler "dp.pt.", Dynatrace "dt0c01.", Mapbox "sk.eyJ"), and
# "wa.me/<number>" links for `phones`.
_DOTTED = (
    r"\.(?=[\w-])(?:[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}(?![A-Za-z0-9_-])(?P<discord>)"
    # One look at the character before the dot rules out most dots in versions,
    # decimals and file names before any prefix is tried.
    r"|(?<=[9sbrpk1a]\.)(?:"
    r"(?<=\bwa\.)me/\+?[0-9]{7,15}(?![0-9])(?P<wa_me>)"
    r"|(?<=\bya29\.)[\w-]{30,2048}(?P<google_oauth_token>)"
    r"|(?<=\bhv[sbr]\.)[\w-]{24,512}(?P<vault_token>)"
    r"|(?<=\bdp\.)(?:pt|st|ct|sa|scim|audit)\.[A-Za-z0-9]{40,44}(?P<doppler_token>)"
    r"|(?<=\bdt0c01\.)[A-Z0-9]{24}\.[A-Z0-9]{64}(?P<dynatrace_token>)"
    r"|(?<=\bsk\.)eyJ[\w-]{20,1024}\.[\w-]{20,1024}(?P<mapbox_token>)))"
)


def _on_dotted(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    if m.lastgroup == "wa_me":
        return _on_e164(text, m, wanted) if "phone" in wanted else iter(())
    if "secret" not in wanted:
        return iter(())
    if m.lastgroup == "discord":
        return _on_discord(text, m, wanted)
    return _on_prefixed(text, m, wanted)


def _on_discord(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = m.start()
    while start > max(0, m.start() - 30) and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        start -= 1
    first = text[start : m.start()]
    token = text[start : m.end()]
    if (
        23 <= len(first) <= 28
        and first[0] in "MNO"
        and (not start or not _joins(text[start - 1]))
        # A real token's first part is the base64 of a snowflake id; a made-up one
        # still looks random.
        and (_discord_user_id(first) or (_char_classes(token) >= 4 and _entropy(token) >= 4.5))
        and not _placeholder(token)
    ):
        yield Finding("secret", "discord_bot_token", start, m.end())


# ----------------------------------------------------------------------------- Azure

# Entra (Azure AD) client secrets: three characters, a version digit, "Q~", 31-34 more.
_ENTRA = r"Q~(?<=[A-Za-z0-9_~.-]{3}[0-9]Q~)[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])"


def _on_entra(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = m.start() - 4
    if start and (text[start - 1].isalnum() or text[start - 1] in "_~.-"):
        return
    value = text[start : m.end()]
    if not _placeholder(value.replace("Q~", "", 1)) and _char_classes(value) >= 3:
        yield Finding("secret", "azure_client_secret", start, m.end())


# A 64-byte key in base64 (storage accounts, Cosmos DB): 86 characters and "==".
# Found in the sweep over "=" of `assignments`, which has already consumed one "=".
_AZURE_KEY = r"=(?<=[A-Za-z0-9+/]{86}==)(?![A-Za-z0-9+/=])(?P<other>)"
# Identifiable keys carry a signature at a fixed place; others need a label near.
_AZURE_SIGNATURES = {"+ASt": "azure_storage_key", "ACDb": "azure_cosmos_key"}
_AZURE_LABELS = (
    "azure",
    "storage",
    "accountkey",
    "account_key",
    "account key",
    "cosmos",
    "primarykey",
    "primary_key",
    "secondarykey",
    "masterkey",
    "keyname",
    "key1",
    "key2",
    "blob",
    "windows.net",
)


def _on_azure_key(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = m.start() - 86
    if start and (text[start - 1].isalnum() or text[start - 1] in "+/"):
        return
    value = text[start : m.end()]
    kind = _AZURE_SIGNATURES.get(value[76:80])
    if kind is None and any(w in text[max(0, start - 160) : start].lower() for w in _AZURE_LABELS):
        kind = "azure_storage_key"
    if kind and not _placeholder(value) and _entropy(value) >= 4.5:
        yield Finding("secret", kind, start, m.end())


def _on_caps_secret(text: str, kind: str, start: int, end: int) -> Iterator[Finding]:
    """Judge a key with a capitalised prefix that `capitals` matched (AWS, GCP, Twilio...)."""
    value = text[start:end]
    if _placeholder(value.split("=", 1)[-1]):
        return
    yield Finding("secret", kind, start, end)
    if kind == "aws_access_key":
        lo, hi = max(0, start - 300), min(len(text), end + 300)
        for s in _rx().aws_secret.finditer(text, lo, hi):
            key = s.group()
            if _char_classes(key) >= 3 and _entropy(key) >= 4.0 and not _placeholder(key):
                yield Finding("secret", "aws_secret_key", s.start(), s.end())


# ----------------------------------------------------------------------------- headers, URLs

_AUTHORIZATION = (
    r"uthorization(?<=[Aa]uthorization)[\"'`]?[ \t]*[:=][ \t]*[\"'`]?"
    r"(?:[Bb]asic|[Bb]earer|[Tt]oken|Digest)[ \t]+(?P<value>[A-Za-z0-9+/=._~-]{8,512})"
)


def _on_authorization(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    # "Authorization: Bearer <token>" holds a credential whatever its format.
    value = m.group("value")
    if (
        not _rx().header_placeholder.fullmatch(value)
        and not _masked(value)
        and (_char_classes(value) >= 2)
    ):
        yield Finding("secret", "authorization_header", m.start("value"), m.end("value"))


_URL = (
    r"://(?:[^\s:/@]{0,128}:(?P<password>[^\s/]{1,256})@[\w.-]+(?P<url_credentials>)"
    r"|hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{6,12}/[A-Za-z0-9]{6,40}"
    r"(?:/[A-Za-z0-9]{6,64}){1,2}(?P<slack_webhook>)"
    r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{1,32}/[\w-]{40,512}"
    r"(?P<discord_webhook>)"
    r")"
)
# Passwords that only name themselves: "user:pass@", "USER:PASSWORD@", ":{password}@".
_URL_PLACEHOLDERS = frozenset(
    {
        "pass",
        "password",
        "passwd",
        "pwd",
        "secret",
        "mypassword",
        "yourpassword",
        "changeme",
        "test",
        "example",
        "xxx",
        "guest",
        "",
    }
)


def _on_url(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = floor = m.start()
    while start > max(0, floor - 32) and (text[start - 1].isalnum() or text[start - 1] in "+.-"):
        start -= 1
    if start == m.start():
        return
    password = m.group("password")
    if password is not None:
        letters = "".join(c for c in password.lower() if c.isalnum())
        user = m.group()[3 : m.start("password") - m.start() - 1]
        if (
            user.lower() == password.lower()  # "postgres:postgres@", a documented default
            or _masked(password)
            or letters in _URL_PLACEHOLDERS
            or _rx().url_placeholder.fullmatch(password)
        ):
            return
    elif _placeholder(m.group().rsplit("/", 1)[-1]) or "00000000" in m.group():
        return
    yield Finding("secret", m.lastgroup or "", start, m.end())


# ----------------------------------------------------------------------------- passes


def _on_colon(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    if m.lastgroup == "other":
        return _on_telegram(text, m, wanted)
    return _on_assignment(text, m, wanted)


def _on_equals(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    if m.lastgroup == "other":
        return _on_azure_key(text, m, wanted)
    return _on_assignment(text, m, wanted)


_Spec = tuple[str, frozenset[str], _Handler, str]


def _secret_passes() -> tuple[_Spec, ...]:
    """The secret passes: (pattern, detectors, handler, needle).

    A text without the needle is skipped. A needle of one rare character is
    cheapest: `in` looks for it at memchr speed in any text, where a longer
    needle costs a full search of a text that is not ASCII.
    """
    secret = frozenset({"secret"})
    return (
        (_UNDERSCORE_PREFIXED, secret, _on_prefixed, "_"),
        (_DASH_PREFIXED, secret, _on_prefixed, "-"),
        (_JWT, secret, _on_jwt, "eyJ"),
        (_assignment(":", _TELEGRAM), secret, _on_colon, ":"),
        (_assignment("=", _AZURE_KEY), secret, _on_equals, "="),
        *((_assignment(op), secret, _on_assignment, op) for op in _ASSIGNMENT_OPS[2:]),
        (_URL, secret, _on_url, "://"),
        (_AUTHORIZATION, secret, _on_authorization, "uthorization"),
        (_DOTTED, frozenset({"secret", "phone"}), _on_dotted, "."),
        (_ENTRA, secret, _on_entra, "~"),
        (_KEY_THEN_VALUE, secret, _on_label_then_value, "ey "),
    )


class _Rx:
    """The patterns the handlers use on a match, compiled when the first one runs."""

    def __init__(self) -> None:
        self.pem_end = re.compile(r"-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----")
        self.base64_run = re.compile(r"[A-Za-z0-9+/]{16}")
        self.aws_secret = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
        self.header_placeholder = re.compile(
            r"(?i:[*x.]+|your[\w.-]*|token|<.*|\$.*|\{\{.*)|[a-z]+(?:[_-][a-z]+)*|[A-Z]+(?:_[A-Z]+)*"
        )
        self.url_placeholder = re.compile(
            r"[A-Z_]+|\{.*\}|\$\{?(?:[A-Z_][A-Z0-9_]*|[a-z_][a-z0-9_]*)\}?|%s|:\w+|\[.*\]"
        )


@functools.cache
def _rx() -> _Rx:
    return _Rx()
