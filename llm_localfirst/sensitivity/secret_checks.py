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
        "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==",
    }
)
# Documented tokens whose part before the last ":" is copied with other values: the
# Bot API's "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11" becomes "123456789:ABC-...".
_DOCUMENTED_AFTER_COLON = frozenset({"ABC-DEF1234ghIkl-zyx57W2v1u123ew11"})


def _documented(value: str) -> bool:
    """Whether a value is a key that a vendor prints in its documentation."""
    return value in _DOCUMENTED or value.rpartition(":")[2] in _DOCUMENTED_AFTER_COLON


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
# Phrases that mark a placeholder password ("your_password", "REDACTED"); other
# words are fine in a password ("Hereford!2024").
_PASSWORD_WORDS = (
    "example",
    "redacted",
    "placeholder",
    "changeme",
    "your_",
    "your-",
    "_here",
    "-here",
)
# What marks a placeholder anywhere: runs of x, "*", "#" or "0", an ellipsis.
_RUNS = ("xxxxx", "***", "...", "…", "•••", "####", "00000000", "${", "{{")


@functools.cache
def _words_rx() -> re.Pattern[str]:
    # A four-letter word ("your", "here", "fake") counts only at a word's edge
    # ("your-api-key-here"): inside a long random token it turns up by chance.
    def spell(word: str) -> str:
        return "|".join(sorted({word, word.upper(), word.title()}))

    long = "|".join(spell(w) for w in _WORDS if len(w) > 4)
    short = "|".join(spell(w) for w in _WORDS if len(w) <= 4)
    return re.compile(f"{long}|(?<![A-Za-z0-9])(?:{short})|(?:{short})(?![A-Za-z0-9])")


@functools.cache
def _marks_rx() -> re.Pattern[str]:
    # "<your key>", "%API_KEY%", "YOUR_API_KEY_HERE".
    return re.compile(r"<[^>]*>|\A%\w+%\Z|[A-Z]{3,}_[A-Z]{3,}_[A-Z]{3,}")


def _marked(value: str, low: str) -> bool:
    # `in` first: a regex that starts nowhere in particular costs a try at every
    # character, and these checks run on key blocks of thousands of characters.
    if any(run in low for run in _RUNS):
        return True
    return ("<" in value or "%" in value or "_" in value) and bool(_marks_rx().search(value))


def _placeholder(value: str) -> bool:
    """Whether a candidate token is a placeholder or a documented example."""
    if _documented(value):
        return True
    low = value.lower()
    if any(word in low for word in _WORDS) and _words_rx().search(value):
        return True
    return _marked(value, low)


def _masked(value: str) -> bool:
    """Whether an assigned password or a password in a URL is a placeholder."""
    if _documented(value):
        return True
    low = value.lower()
    return any(word in low for word in _PASSWORD_WORDS) or _marked(value, low)


# What elides a key block's body: "...", "<your key>", "[REDACTED]", a long run of x.
# Shorter runs ("xxxX") occur by chance in a key's thousand base64 characters.
_ELISIONS = (
    "...",
    "…",
    "<",
    "xxxxxxxx",
    "********",
    "redacted",
    "placeholder",
    "example",
    "your_",
    "your-",
    "_here",
    "-here",
)


def _elided(body: str) -> bool:
    """Whether a key block's body is an elided example rather than a key."""
    low = body.lower()
    return any(mark in low for mark in _ELISIONS) or bool(_marks_rx().search(body))


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
