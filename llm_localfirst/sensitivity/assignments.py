"""Secrets by their label: values assigned to a name that announces a secret.

This module owns the passes over ":", "=", "：" and " is " that find
``DB_PASSWORD=...``, ``"api_key": "..."``, ``api key: ...`` or
``mot de passe : ...``, and the tests that tell a value from a placeholder,
a variable or code. A name that only ends in "key" (``AZURE_STORAGE_KEY``,
``DD_APP_KEY``) asks for a value that looks random, not merely mixed. Words near
the name (``datadog``, ``twilio``, ``azure``) give the finding a vendor's kind.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from .finding import Finding
from .secret_checks import _masked
from .text import _char_classes, _entropy

# How the names in _SECRET_NAME_* end, padded to four characters: a ":" or "=" after
# any other name ("Note:", "x = 1", "config:") is dropped inside `re`, with one
# look-behind per quoting style, so that code, with thousands of them, stays cheap.
_NAME_ENDS = (
    "..wd|..pw|..ña|..ード|..密码|..ль|.key|.sig|.mdp|.pwd|"
    "word|pass|wort|cret|oken|rase|asse|enha|lave|oord|роль|alue"
)


# Names shorter than the four characters of _NAME_ENDS, which may start a text.
_SHORT_NAMES = ("pw", "pwd", "mdp", "密码")
# "password is ..." too; each more verb would cost a pass over the text.
# ">" ends an XML element's start tag: "<password>...</password>"; "|" separates a
# Markdown table's cells: "| password | ... |".
_ASSIGNMENT_OPS = (":", "=", "：", " is ", ">", "|")


def _assignment(op: str, other: str = "") -> str:
    """The pattern of ``op`` (one of _ASSIGNMENT_OPS) after a name that may hold a secret.

    Args:
        op: The operator.
        other: A pattern tried first right after ``op``, ending in a group named
            ``other``: another pass that starts with the same character shares
            this sweep instead of paying for its own.
    """
    if op.strip().isalpha():
        return f"{op}(?<=(?is:{_NAME_ENDS}){op})"
    if op == ">":
        return f">(?<=[A-Za-z\u00c0-\uffff]>)(?<=(?is:{_NAME_ENDS})>)(?=[^\\s<]{{6}})"
    # "s": the padding before a short name ("\npwd: ...") may be a line break.
    o, ends = re.escape(op), f"(?is:{_NAME_ENDS})"
    # A quote may be escaped: '{\\"password\\": ...}' is JSON inside a string.
    quote, space = r"""["'`\\\]]""", "[ \t]"

    def quoted(gap: str) -> str:
        # A name in quotes ('"password"', "['password']"), ``gap``, the operator.
        return (
            f"(?<={ends}{quote}{gap}{o})"
            f"|(?<={quote}{quote}{gap}{o})(?<={ends}{quote}{quote}{gap}{o})"
        )

    # What comes just before the operator decides which spellings are tried, so
    # that the costly test of the name's ending runs once or twice, not six times:
    # a space ("password = "), a quote ('"password":'), or a letter ("password=").
    behind = (
        f"(?<={space}{o})(?:(?<={ends}{space}{o})|(?<={quote}{space}{o})(?:{quoted(space)}))"
        f"|(?<={quote}{o})(?:{quoted('')})"
        f"|(?<=[A-Za-z\u00c0-\uffff]{o})(?<={ends}{o})"
        # Names shorter than four characters at the very start of the text.
        + "".join(f"|(?<=\\A(?i:{n}){gap}{o})" for n in _SHORT_NAMES for gap in ("", " "))
    )
    if other:
        return f"{o}(?:{other}|{behind})"
    if op == "|":
        # "str | None", "a || b": most "|" in code have no value after them.
        return f"{o}(?=[ \t]*[^\\s|]{{6}})(?:{behind})"
    return f"{o}(?:{behind})"


_ASSIGNED_VALUE = (
    r"""(?:=|>)?[ \t]*(?:\\?["'`][ \t]*)?(?:(?:Bearer|Basic|Token|token)[ \t]+)?"""
    r"""(?P<value>[^\s"'`,;<>(){}\[\]\\]{6,200})"""
)
# Names of settings that hold secrets: found anywhere in the name before ":" or "="
# ("DB_PASSWORD", "clientSecret"), as a whole word ("db_pass", "pwd"), or ending
# the last words ("mot de passe", "api key").
_SECRET_NAME_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "passwort",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "access-key",
    "privatekey",
    "private_key",
    "client_key",
    "auth_key",
    "credential",
    "kennwort",
    "contraseña",
    "contrasena",
    "senha",
    "wachtwoord",
    "パスワード",
    "密码",
    "пароль",
    "authorization",
    "connection_string",
    "connectionstring",
    "conn_str",
    "signing_key",
    "encryption_key",
    "app_key",
    "appkey",
    "app-key",
    "application_key",
    "application-key",
    "applicationkey",
)
_SECRET_NAME_WORDS = frozenset({"pass", "pwd", "pw", "mdp", "clave", "bearer"})
_SECRET_NAME_ENDS = (
    "mot de passe",
    "api key",
    "private key",
    "access key",
    "secret key",
    "app key",
    "application key",
    "auth token",
    "account key",
)
# Vendors named near the label, and the kind they give: (words, kind).
_VENDORS = (
    (("datadog", "dd_app", "dd-app", "dd_application", "dd-application"), "datadog_app_key"),
    (("datadog", "dd_api", "dd-api", "dd_client"), "datadog_api_key"),
    (("twilio",), "twilio_auth_token"),
    (("client_secret", "clientsecret", "client-secret", "appsecret"), "client_secret"),
    (
        ("azure", "accountkey", "account_key", "storage_key", "storagekey", "cosmos"),
        "azure_storage_key",
    ),
)


def _secret_name(before: str) -> tuple[str, bool] | None:
    """The kind of secret that the name before ":" or "=" announces, if any.

    Returns:
        The kind, and whether the name is weak (it only ends in "key"), so that
        the value must look random; None if the name announces no secret.
    """
    name_start, name_end = _name(before)
    if name_start == name_end or (
        before[name_start - 1 : name_start] == ":"
        and not before[:name_start].lower().endswith("env:")  # PowerShell's "$env:NAME"
    ):
        return None  # no name, or a part of an ARN or URN ("...:secret:prod/db")
    if before[name_start:name_end].lower() == "value":
        # "- name: DD_API_KEY\n  value: ...", '<add key="X" value="...">': the name is before.
        return _value_name(before, name_start)
    words = before.lower().rstrip(" \t\"'`]").split()
    if not words:
        return None
    last = words[-1]
    if last.endswith("sig") and re.split(r"[&?;]", last)[-1] == "sig":
        return "azure_sas_token", False
    rx = _rx()
    strong = (
        rx.secret_name_part.search(last) is not None
        or not _SECRET_NAME_WORDS.isdisjoint(rx.non_letters.split(last))
        or " ".join(words[-3:]).endswith(_SECRET_NAME_ENDS)
    )
    weak = not strong and rx.key_name.search(before.rstrip(" \t\"'`]")) is not None
    if not strong and not weak:
        return None
    context = before.lower().rsplit("\n", 1)[-1]
    label = last if "_" in last or "-" in last else " ".join(words[-3:])
    for names, kind in _VENDORS:
        if any(name in label for name in names[1:]) or (
            names[0] in context and (kind != "datadog_app_key" or "app" in label)
        ):
            return kind, weak
    return "password_assignment", weak


def _value_name(before: str, end: int) -> tuple[str, bool] | None:
    """What the name of a "value" field announces: the "name" or "key" just before it."""
    low = before[:end].lower()
    for word in ("name", "key"):
        at = low.rfind(word)
        while at >= 0:
            named = _rx().value_name.match(before, at, end)
            if named:
                return _secret_name(named.group(1))
            at = low.rfind(word, 0, at)
    return None


def _name(before: str) -> tuple[int, int]:
    """The span of the name that ends ``before``, after up to two quotes and a space."""
    end = len(before)
    if end and before[end - 1] in " \t":
        end -= 1
    for _ in range(2):
        if end and before[end - 1] in "\"'`]\\":
            end -= 1
    start = end
    while start and (before[start - 1].isalnum() or before[start - 1] in "_.-"):
        start -= 1
    while start < end and not (before[start].isalpha() or before[start] == "_"):
        start += 1
    return start, end


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
    named = _secret_name(text[max(0, m.start() - 120) : m.start()])
    value_match = _rx().assigned_value.match(text, m.end()) if named else None
    if named is None or value_match is None:
        return
    kind, weak = named
    if text[m.start()] == ">" and not text.startswith("</", value_match.end()):
        return  # "<password>@host": a placeholder in a URL, not an element
    value = value_match.group("value").rstrip(".?!:")
    if _looks_secret(value) and (not weak or _looks_random(value)):
        start = value_match.start("value")
        yield Finding("secret", kind, start, start + len(value))


# "datadog api key 3f9a...", "| storage account key | k3Jf...== |": a label, a
# space, a value that looks like a key. Each such sweep costs about what the "in"
# test of its needle does (~0.7 us/KB on text that is not ASCII), so only keys,
# which have no shape of their own, get one: "password S3cr3t!" and "auth token
# 3f9a..." need an operator ("password: S3cr3t!", "auth token = 3f9a...").
_KEY_THEN_VALUE = r"ey (?<=[kK]ey )(?:\|[ \t]*)?(?=[A-Za-z0-9+/=_~.-]{20})"


def _on_flag(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    """The value after a flag such as "--password " that the sweep over "-" found."""
    value_match = _rx().assigned_value.match(text, m.end())
    if value_match and _looks_secret(value := value_match.group("value").rstrip(".?!:")):
        start = value_match.start("value")
        yield Finding("secret", "password_assignment", start, start + len(value))


def _on_label_then_value(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    named = _secret_name(text[max(0, m.start() - 60) : m.start() + m.group().index(" ")])
    if named is None or (named[1] and named[0] == "password_assignment"):
        return  # no label, or only "the key" with no vendor or kind of key
    value = _rx().label_value.match(text, m.end())
    if value and _looks_random(value.group().rstrip(".")) and not _masked(value.group()):
        yield Finding("secret", named[0], m.end(), m.end() + len(value.group().rstrip(".")))


def _looks_secret(value: str) -> bool:
    """Whether an assigned value looks like a secret, not a placeholder or code."""
    rx = _rx()
    if len(value) < 6 or rx.placeholder.fullmatch(value) or rx.code_like.fullmatch(value):
        return False
    if _masked(value):
        return False
    classes = _char_classes(value)
    if classes < 2 or (len(value) < 8 and classes < 3):
        return False
    entropy = _entropy(value)
    # "tokens_in", "Annotated": words of code carry no digit and no symbol.
    mixed = any(c.isdigit() or not (c.isalnum() or c in "._-") for c in value)
    return (mixed and entropy >= 2.5) or (len(value) >= 20 and entropy >= 3.5)


def _looks_random(value: str) -> bool:
    """Whether a value under a name that only ends in "key" is a key, not a path or id.

    Hex of a key's length (32, 40, 64), or base64 and similar alphabets of twenty
    characters or more mixing cases and digits at a key's entropy.
    """
    if _rx().hex_key.fullmatch(value):
        return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    if len(value) < 20 or not _rx().key_alphabet.fullmatch(value):
        return False
    has = (
        any(c.islower() for c in value),
        any(c.isupper() for c in value),
        any(c.isdigit() for c in value),
    )
    return all(has) and _entropy(value) >= 4.0


class _Rx:
    """The patterns the handlers use on a match, compiled when the first one runs."""

    def __init__(self) -> None:
        self.assigned_value = re.compile(_ASSIGNED_VALUE)
        self.secret_name_part = re.compile("|".join(map(re.escape, _SECRET_NAME_PARTS)))
        self.non_letters = re.compile("[^a-z]+")
        self.value_name = re.compile(
            r"(?:name|key|Name|Key)[\"']?[ \t]*[:=][ \t]*[\"']?([A-Za-z_][\w.-]*)[^\n]*\n?[^\n]*$"
        )
        self.key_name = re.compile(r"(?:[_.-]key|[a-z0-9]Key|[ _.-]KEY|\bkey)$")
        self.placeholder = re.compile(_PLACEHOLDER)
        self.code_like = re.compile(
            r"[A-Za-z_$]+(?:\.[A-Za-z_$]+)+|(?:self|this|cls|os|process|config)\b.*"
        )
        self.label_value = re.compile(r"[A-Za-z0-9+/=_~.-]{20,200}(?![A-Za-z0-9+/=_~.-])")
        self.hex_key = re.compile(r"[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9A-F]{32,64}")
        self.key_alphabet = re.compile(r"[A-Za-z0-9+/=_~-]+")


@functools.cache
def _rx() -> _Rx:
    return _Rx()
