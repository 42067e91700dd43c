"""The e-mail detector: an address around each "@", minus file names and scp remotes."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .finding import Finding
from .text import _words

_EMAIL = r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:xn--[a-z0-9-]{2,59}|[^\W\d_]{2,63})(?![\w-])"
_LOCAL_PART_SYMBOLS = frozenset("!#$%&*+=?^_`{|}~-.")
_FILE_SUFFIXES = _words(
    "png jpg jpeg gif svg webp ico bmp tif tiff pdf js ts css html htm py md txt json yaml yml"
    " xml toml lock map"
).words


def _on_email(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    at = start = m.start()
    while start > max(0, at - 64) and (
        text[start - 1].isalnum() or text[start - 1] in _LOCAL_PART_SYMBOLS
    ):
        start -= 1
    while start < at and text[start] in ".-":
        start += 1
    end = m.end()
    if start == at or m.group().rsplit(".", 1)[1].lower() in _FILE_SUFFIXES:
        return
    if text.startswith(":", end) and end + 1 < len(text) and not text[end + 1].isspace():
        return  # "git@github.com:org/repo.git", an scp-style remote
    yield Finding("email", "email", start, end)
