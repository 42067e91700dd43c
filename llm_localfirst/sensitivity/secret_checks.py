"""What tells a live secret from its look-alike: placeholders, known examples, checksums.

This module owns the checks that the secret passes run on a candidate, never on
the whole text: whether a value is a placeholder ("EXAMPLE", runs of ``x``,
"...", ``<redacted>``, ``your-api-key-here``, ``${VAR}``), one of the keys that
vendors publish in their documentation, or a token whose built-in checksum holds
(GitHub's and npm's CRC32, the snowflake id inside a Discord bot token). A
checksum that holds proves a token real even if it happens to spell a word.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import string
import zlib

# Keys that vendors print in their documentation, and emulator defaults: public.
_DOCUMENTED = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==",
    }
)

# Words that mark a placeholder token, in the spellings people use: a random token
# spells one of them in one of these three cases once in tens of thousands.
_WORDS = (
    "example",
    "your",
    "here",
    "redacted",
    "placeholder",
    "replace",
    "dummy",
    "sample",
    "insert",
    "changeme",
    "fake",
    "masked",
    "hidden",
)
# What marks a placeholder anywhere: runs of x, "*" or ".", an ellipsis, "<...>",
# template and shell variables, "YOUR_API_KEY".
_MARKS = r"[xX*•#.]{4}|0{8}|\.\.\.|…|<[^>]*>|\$\{|\{\{|\A%\w+%\Z|[A-Z]{3,}_[A-Z]{3,}_[A-Z]{3,}"


@functools.cache
def _placeholder_rx() -> re.Pattern[str]:
    spellings = sorted({s for w in _WORDS for s in (w, w.upper(), w.title())})
    return re.compile("|".join(spellings) + "|" + _MARKS)


@functools.cache
def _masked_rx() -> re.Pattern[str]:
    # In a password, words are fine ("Hereford!2024"); only marks and a few
    # phrases ("your_password", "REDACTED") say it is not a real one.
    return re.compile(_MARKS + r"|(?i:example|redacted|placeholder|changeme|your[_-]|[_-]here\b)")


def _placeholder(value: str) -> bool:
    """Whether a candidate token is a placeholder or a documented example."""
    return value in _DOCUMENTED or _placeholder_rx().search(value) is not None


def _masked(value: str) -> bool:
    """Whether an assigned password or a password in a URL is a placeholder."""
    return value in _DOCUMENTED or _masked_rx().search(value) is not None


# ----------------------------------------------------------------------------- checksums

_BASE62 = (
    string.digits + string.ascii_uppercase + string.ascii_lowercase,
    string.digits + string.ascii_lowercase + string.ascii_uppercase,
)


def _base62(value: str, alphabet: str) -> int:
    n = 0
    for c in value:
        n = n * 62 + alphabet.index(c)
    return n


def _crc32_token(token: str) -> bool:
    """Whether a GitHub (``ghp_``...) or npm (``npm_``) token's CRC32 checksum holds.

    The last six characters are the base-62 CRC32 of the thirty before them.
    """
    body = token.split("_", 1)[1] if "_" in token else ""
    if len(body) != 36 or not body.isalnum() or not body.isascii():
        return False
    crc = zlib.crc32(body[:30].encode())
    return any(_base62(body[30:], alphabet) == crc for alphabet in _BASE62)


def _discord_user_id(segment: str) -> bool:
    """Whether a Discord token's first segment is the base64 of a snowflake user id."""
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, binascii.Error):
        return False
    return 17 <= len(decoded) <= 20 and decoded.isdigit()
