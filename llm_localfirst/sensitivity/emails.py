"""The e-mail detector: an address around each "@" (or "%40"), minus look-alikes.

An address under a country domain that is also a file suffix ("alice@example.md",
"bob@company.py", "ana@firma.pl") is an address; a name whose suffix is no
top-level domain at all ("icon@2x.png", "bundle@1.2.js") is a file, a package
spec with a version ("lodash@4.17.21", "build@1.2.sh") is no address, nor is the
user part of a URL ("https://user@example.com/") or an scp-style git remote
("git@github.com:org/repo.git"). Form bodies write "@" as "%40".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .finding import Finding
from .phones import _ENCODED_PLUS, _on_e164
from .text import _words

_DOMAIN = r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:xn--[a-z0-9-]{2,59}|[^\W\d_]{2,63})(?![\w-])"
_EMAIL = rf"@{_DOMAIN}"
# "%40" in a form body; the same sweep over "%" finds "%2B447911123456" for `phones`.
_PERCENT = rf"%(?:40{_DOMAIN}(?P<email>)|{_ENCODED_PLUS}(?P<phone>))"
_LOCAL_PART_SYMBOLS = frozenset("!#$%&*+=?^_`{|}~-.")
# File suffixes that are no top-level domain. Those that are one ("md" Moldova,
# "py" Paraguay, "pl" Poland, "rs" Serbia, "sh" Saint Helena, "so" Somalia, "ai",
# "io", "zip", "mov") are addresses when they end one.
_FILE_SUFFIXES = _words(
    "png jpg jpeg gif svg webp ico bmp tif tiff heic avif psd eps pdf js jsx ts tsx mjs cjs"
    " css scss sass less vue html htm txt json yaml yml xml toml lock map rb go java kt kts c h"
    " cpp hpp cs php swift scala lua sql bat cmd ps1 ipynb proto gradle plist log csv tsv ini"
    " cfg conf env bak tmp gz tgz tar bz2 xz rar whl egg jar war exe dll dylib bin dat db"
    " sqlite wasm mp3 mp4 wav ogg avi mkv webm woff woff2 ttf otf eot"
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
    domain = m.group()[1 if m.group()[0] == "@" else 3 :]
    labels = domain.split(".")
    if start == at or labels[-1].lower() in _FILE_SUFFIXES:
        return
    if all(label.isdigit() for label in labels[:-1]) or labels[0][:-1].isdigit():
        return  # "pkg@1.2.sh": a version, not a domain; "logo@2x.md": a retina image
    if text.startswith(":", end) and end + 1 < len(text) and not text[end + 1].isspace():
        return  # "git@github.com:org/repo.git", an scp-style remote
    window = text[max(0, start - 130) : start]
    scheme = window.rfind("//")
    if scheme >= 0 and not any(c.isspace() or c in "/\"'<>" for c in window[scheme + 2 :]):
        return  # "https://user@host/": the user part of a URL
    yield Finding("email", "email", start, end)


def _on_percent(text: str, m: re.Match[str], wanted: frozenset[str]) -> Iterator[Finding]:
    if m.lastgroup == "phone":
        return _on_e164(text, m, wanted) if "phone" in wanted else iter(())
    return _on_email(text, m, wanted) if "email" in wanted else iter(())


_Handler = Callable[[str, re.Match[str], frozenset[str]], Iterator[Finding]]
_Spec = tuple[str, frozenset[str], _Handler, str]


def _email_passes() -> tuple[_Spec, ...]:
    """The e-mail passes: (pattern, detectors, handler, needle), a text without it skipped."""
    return (
        (_EMAIL, frozenset({"email"}), _on_email, "@"),
        (_PERCENT, frozenset({"email", "phone"}), _on_percent, "%"),
    )
