"""Secrets and credentials: API keys and tokens, private keys, JWTs, passwords, URLs.

This module owns the passes that look for secrets by their shape: tokens with a
vendor prefix ("ghp_", "sk-", "xoxb-"), PEM private-key blocks, JWTs whose header
decodes to JSON with an "alg", values assigned to a name that announces a secret
("DB_PASSWORD=...", "api key: ..."), ``Authorization`` headers, and credentials
or webhook paths in URLs. Keys with a capitalised prefix (AWS, Google Cloud) are
found by `capitals`. Every pass starts with a literal, which `re` finds at memchr
speed; placeholders, variables and code are told apart from values here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterator

from .finding import Finding
from .text import _char_classes, _entropy, _joins

# ----------------------------------------------------------------------------- prefixed secrets

# Each branch checks the token's prefix with a look-behind from the "_" or "-".
_UNDERSCORE_PREFIXED = (
    r"_(?<=[A-Za-z0-9]_)(?=[A-Za-z0-9_-]{10})(?:"
    r"(?<=\bgh[pousr]_)[A-Za-z0-9]{30,251}(?P<github_token>)"
    r"|(?<=\bgithub_)pat_[A-Za-z0-9_]{40,512}(?P<github_pat>)"
    r"|(?<=\b[sr]k_)(?:live|test)_[0-9A-Za-z]{10,512}(?P<stripe_key>)"
    r"|(?<=\bwhsec_)[0-9A-Za-z]{24,512}(?P<stripe_key_>)"
    r"|(?<=\bhf_)[A-Za-z0-9]{30,512}(?P<huggingface_token>)"
    r"|(?<=\bapi_org_)[A-Za-z0-9]{30,512}(?P<huggingface_token_>)"
    r"|(?<=\bnpm_)[A-Za-z0-9]{36}(?P<npm_token>)"
    r"|(?<=\bshp(?:at|ca|pa|ss)_)[0-9a-fA-F]{32}(?P<shopify_token>)"
    r"|(?<=\bdo[por]_)v1_[0-9a-f]{64}(?P<digitalocean_token>)"
    r")"
)
_DASH_PREFIXED = (
    r"-(?:----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?P<private_key>)"
    r"|(?<=[A-Za-z0-9]-)(?=[A-Za-z0-9_-]{10})(?:"
    r"(?<=\bglpat-)[\w-]{20,512}(?P<gitlab_token>)"
    r"|(?<=\bgl(?:dt|rt)-)[\w-]{20,512}(?P<gitlab_token_>)"
    r"|(?<=\bxox[abposr]-)[0-9A-Za-z-]{10,512}(?P<slack_token>)"
    r"|(?<=\bxapp-)[0-9A-Za-z-]{10,512}(?P<slack_token__>)"
    r"|(?<=\bsk-)ant-[\w-]{32,512}(?P<anthropic_key>)"
    r"|(?<=\bsk-)(?:proj|svcacct|admin)-[\w-]{40,512}(?P<openai_key>)"
    r"|(?<=\bsk-)[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?P<openai_key_>)"
    r"|(?<=\bsk-)[A-Za-z0-9]{32,512}(?![\w-])(?P<openai_key__>)"
    r"|(?<=\bpypi-)AgE[\w-]{50,512}(?P<pypi_token>)"
    r"|(?<=\bkey-)[0-9a-f]{32}(?P<mailgun_key>)"
    r"|(?<=\b[0-9a-f]{32}-)[0-9a-f]{8}-[0-9a-f]{8}\b(?P<mailgun_key_>)"
    r"))"
)


def _on_prefixed(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start, end = m.span()
    kind = (m.lastgroup or "").rstrip("_")
    if kind == "private_key":
        pem_end = _rx().pem_end.search(text, end, end + 16384)
        yield Finding("secret", kind, start, pem_end.end() if pem_end else end)
        return
    # Back over the prefix ("ghp", "github", "sk") that the look-behind checked.
    floor = max(0, start - 8)
    while start > floor and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    yield Finding("secret", kind, start, end)


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


# ----------------------------------------------------------------------------- assignments

# How the names in _SECRET_NAME_* end, padded to four characters: a ":" or "=" after
# any other name ("Note:", "x = 1", "config:") is dropped inside `re`, with one
# look-behind per quoting style, so that code, with thousands of them, stays cheap.
_NAME_ENDS = (
    "..wd|..pw|..ña|..ード|..密码|..ль|.key|.sig|.mdp|.pwd|"
    "word|pass|wort|cret|oken|rase|asse|enha|lave|oord|роль"
)


# "password is ..." too; each more verb would cost a pass over the text.
_ASSIGNMENT_OPS = (":", "=", "：", " is ")


def _assignment(op: str) -> str:
    """The pattern of ``op`` (one of _ASSIGNMENT_OPS) after a name that may hold a secret."""
    if op.strip().isalpha():
        return f"{op}(?<=(?i:{_NAME_ENDS}){op})"
    quote, space = "[\"'`\\]]", "[ \t]"
    behind = "|".join(
        f"(?<=(?i:{_NAME_ENDS}){q}{s}{re.escape(op)})" for q in ("", quote) for s in ("", space)
    )
    # A first, cheap test: a letter, quote or space before the operator ("==", "12:30").
    cheap = f"(?<=[A-Za-z\"'`\\] \t\u00c0-\uffff]{re.escape(op)})"
    return f"{re.escape(op)}{cheap}(?:{behind})"


_ASSIGNED_VALUE = (
    r"""(?:=|>)?[ \t]*(?:["'`][ \t]*)?(?:(?:Bearer|Basic|Token|token)[ \t]+)?"""
    r"""(?P<value>[^\s"'`,;<>(){}\[\]]{6,200})"""
)
# Names of settings that hold secrets: found anywhere in the name before ":" or "="
# ("DB_PASSWORD", "clientSecret"), as a whole word ("db_pass", "pwd"), or ending
# the last words ("mot de passe", "api key").
_SECRET_NAME_PARTS = (
    "password", "passwd", "passphrase", "passwort", "secret", "token", "apikey", "api_key",
    "api-key", "accesskey", "access_key", "access-key", "privatekey", "private_key",
    "client_key", "auth_key", "credential", "kennwort", "contraseña", "contrasena", "senha",
    "wachtwoord", "パスワード", "密码", "пароль", "authorization", "connection_string",
    "connectionstring", "conn_str", "signing_key", "encryption_key",
)
_SECRET_NAME_WORDS = frozenset({"pass", "pwd", "pw", "mdp", "clave", "bearer"})
_SECRET_NAME_ENDS = ("mot de passe", "api key", "private key", "access key", "secret key")


def _secret_name(before: str) -> str | None:
    """The kind of secret that the name before ":" or "=" announces, if any."""
    words = before.lower().rstrip(" \t\"'`]").split()
    if not words:
        return None
    last = words[-1]
    if last.endswith("sig") and re.split(r"[&?;]", last)[-1] == "sig":
        return "azure_sas_token"
    rx = _rx()
    if rx.secret_name_part.search(last):
        return "password_assignment"
    if not _SECRET_NAME_WORDS.isdisjoint(rx.non_letters.split(last)):
        return "password_assignment"
    if " ".join(words[-3:]).endswith(_SECRET_NAME_ENDS):
        return "password_assignment"
    return None


# "$DB_PASSWORD", "${token}": a variable, not a value ("$y7R_Xa..." is a value).
_VARIABLE = r"\$\{?(?:[A-Z_][A-Z0-9_]*|[a-z_][a-z0-9_]*)\}?"
_PLACEHOLDER = (
    rf"{_VARIABLE}|"
    r"(?i:[*x•.#_-]+|%[a-z_]+%|\{\{.*|"
    r"(?:process\.env|os\.environ|getenv|env\[).*|your[\w-]*|"
    r"(?:xxx+|placeholder|example|changeme|redacted|hidden|secret|password|none|null|true|"
    r"false|required|optional|string|undefined|todo|tbd|n/a)\W*|https?://.*)"
    r"|[A-Z]+(?:_[A-Z]+)*|[a-z]+(?:[_-][a-z]+)*|[0-9]+"
)


def _on_assignment(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    if text.startswith("==", m.start()):
        return  # a comparison
    kind = _secret_name(text[max(0, m.start() - 40):m.start()])
    value_match = _rx().assigned_value.match(text, m.end()) if kind else None
    if kind is None or value_match is None:
        return
    value = value_match.group("value").rstrip(".?!:")
    if _looks_secret(value):
        start = value_match.start("value")
        yield Finding("secret", kind, start, start + len(value))


def _looks_secret(value: str) -> bool:
    """Whether an assigned value looks like a secret, not a placeholder or code."""
    rx = _rx()
    if len(value) < 6 or rx.placeholder.fullmatch(value) or rx.code_like.fullmatch(value):
        return False
    classes = _char_classes(value)
    if classes < 2 or (len(value) < 8 and classes < 3):
        return False
    entropy = _entropy(value)
    # "tokens_in", "Annotated": words of code carry no digit and no symbol.
    mixed = any(c.isdigit() or not (c.isalnum() or c in "._-") for c in value)
    return (mixed and entropy >= 2.5) or (len(value) >= 20 and entropy >= 3.5)


_AUTHORIZATION = (
    r"uthorization(?<=[Aa]uthorization)[\"'`]?[ \t]*[:=][ \t]*[\"'`]?"
    r"(?:[Bb]asic|[Bb]earer|[Tt]oken|Digest)[ \t]+(?P<value>[A-Za-z0-9+/=._~-]{8,512})"
)


def _on_authorization(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    # "Authorization: Bearer <token>" holds a credential whatever its format.
    value = m.group("value")
    if not _rx().placeholder.fullmatch(value) and _char_classes(value) >= 2:
        yield Finding("secret", "authorization_header", m.start("value"), m.end("value"))


# ----------------------------------------------------------------------------- URLs

_URL = (
    r"://(?:[^\s:/@]{0,128}:(?P<password>[^\s@/]{1,256})@[\w.-]+(?P<url_credentials>)"
    r"|hooks\.slack\.com/services/T[A-Z0-9]{1,32}/B[A-Z0-9]{1,32}/[A-Za-z0-9]{16,512}"
    r"(?P<slack_webhook>)"
    r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{1,32}/[\w-]{40,512}"
    r"(?P<discord_webhook>)"
    r")"
)


def _on_url(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    start = floor = m.start()
    while start > max(0, floor - 32) and (text[start - 1].isalnum() or text[start - 1] in "+.-"):
        start -= 1
    password = m.group("password")
    if start == m.start() or (password is not None and _rx().masked.fullmatch(password)):
        return
    yield Finding("secret", m.lastgroup or "", start, m.end())


class _Rx:
    """The patterns the handlers use on a match, compiled when the first one runs."""

    def __init__(self) -> None:
        self.pem_end = re.compile(r"-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----")
        self.assigned_value = re.compile(_ASSIGNED_VALUE)
        self.secret_name_part = re.compile("|".join(map(re.escape, _SECRET_NAME_PARTS)))
        self.non_letters = re.compile("[^a-z]+")
        self.placeholder = re.compile(_PLACEHOLDER)
        self.code_like = re.compile(
            r"[A-Za-z_$]+(?:\.[A-Za-z_$]+)+|(?:self|this|cls|os|process|config)\b.*"
        )
        self.masked = re.compile(rf"\*+|x+|{_VARIABLE}|<[^>]*>|\{{\{{.*\}}\}}|%\w+%")


@functools.cache
def _rx() -> _Rx:
    return _Rx()
