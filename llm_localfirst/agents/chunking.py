"""Splitting long sources for map-reduce, and the token budget arithmetic behind it.

This module owns :func:`split_text` (paragraph, then sentence, then word, then
hard boundaries, with overlap between neighbouring chunks), :func:`pack` (grouping
partial results for a reduce step) and :class:`Budget` (how much source fits in
one call to a destination with a given context window).

Tokens are estimated as one per four characters, rounded up: the same documented
estimate the router uses (``Request.estimated_tokens``). It is rough for code and
for scripts without spaces (CJK), so budgets keep a safety margin, and a
:class:`Budget` can carry a lower characters-per-token figure that the worker
learns from what a destination reports.

It must never call a model or perform I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidRequest

__all__ = [
    "Budget",
    "estimate_tokens",
    "file_header",
    "join_files",
    "pack",
    "split_files",
    "split_text",
]

#: The default estimate of characters per token (English prose on common tokenizers).
CHARS_PER_TOKEN = 4.0
#: Tokens kept free for chat-template framing and the ``<source>`` delimiters.
FRAMING_TOKENS = 64
#: Fraction of the remaining window the source may use (the estimate is rough).
SAFETY = 0.9
#: Smallest source budget (tokens) worth making a call for.
MIN_SOURCE_TOKENS = 64
#: Output tokens reserved when the caller gives no ``max_tokens``.
DEFAULT_OUTPUT_TOKENS = 1024

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE = re.compile(r"(?<=[.!?…。！？])[\"')\]»”’]*\s+")
_SPACE = re.compile(r"\s+")


def estimate_tokens(text: str, chars_per_token: float = CHARS_PER_TOKEN) -> int:
    """Estimated tokens of ``text``: ``ceil(len / chars_per_token)`` (default 4)."""
    return math.ceil(len(text) / chars_per_token)


@dataclass(frozen=True, slots=True)
class Budget:
    """The token arithmetic for one destination's context window.

    Attributes:
        window: The destination's ``context_window``.
        output: Tokens reserved for the answer of a final call.
        partial_output: Cap on the answer of a map or intermediate reduce call: a
            quarter of the room left for source, so several partial results fit in one
            reduce call and a recursive reduce converges.
        chars_per_token: The estimate in force (4 until a destination shows otherwise).
    """

    window: int
    output: int
    partial_output: int
    chars_per_token: float = CHARS_PER_TOKEN

    @classmethod
    def for_window(
        cls, window: int, max_tokens: int | None, *, chars_per_token: float = CHARS_PER_TOKEN
    ) -> Budget:
        """Plan the budget for a window and the caller's ``max_tokens``.

        Raises:
            InvalidRequest: ``max_tokens`` leaves no room for any source.
        """
        output = max_tokens if max_tokens is not None else min(DEFAULT_OUTPUT_TOKENS, window // 4)
        room = window - FRAMING_TOKENS - output
        if room * SAFETY < MIN_SOURCE_TOKENS * 2:
            raise InvalidRequest(
                f"max_tokens={output} leaves too little of the {window}-token context window "
                "for the source; lower max_tokens",
                param="max_tokens",
            )
        partial = max(32, min(output, int(room * SAFETY) // 4))
        return cls(
            window=window, output=output, partial_output=partial, chars_per_token=chars_per_token
        )

    def tokens(self, text: str) -> int:
        """Estimated tokens of ``text`` under this budget's estimate."""
        return estimate_tokens(text, self.chars_per_token)

    def source_tokens(self, prompt_text: str, *, output: int | None = None) -> int:
        """Tokens of source that fit next to ``prompt_text`` and the reserved output.

        Raises:
            InvalidRequest: the prompt (task, schema, labels) alone fills the window.
        """
        reserve = self.output if output is None else output
        prompt = self.tokens(prompt_text)
        room = int((self.window - FRAMING_TOKENS - reserve - prompt) * SAFETY)
        if room < MIN_SOURCE_TOKENS:
            raise InvalidRequest(
                f"the task, schema and labels take about {prompt} tokens of the "
                f"{self.window}-token context window, leaving no room for the source; "
                "shorten them",
                param="task",
            )
        return room

    def source_chars(self, prompt_text: str, *, output: int | None = None) -> int:
        """Characters of source that fit (``source_tokens`` times the estimate)."""
        return int(self.source_tokens(prompt_text, output=output) * self.chars_per_token)


def split_text(text: str, max_chars: int, *, overlap_chars: int = 0) -> list[str]:
    """Split ``text`` into chunks of at most ``max_chars`` characters.

    Boundaries are chosen in order of preference: blank lines (paragraphs),
    sentence ends, whitespace, and only for a single over-long word, an arbitrary
    position. Consecutive chunks share up to ``overlap_chars`` characters of whole
    trailing pieces, so a fact cut by a boundary is seen whole by one chunk.

    Args:
        text: The source.
        max_chars: Largest chunk (at least 1).
        overlap_chars: Largest overlap; capped at half of ``max_chars``.

    Returns:
        The chunks, in order; ``[]`` for blank text.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    overlap_chars = max(0, min(overlap_chars, max_chars // 2))
    pieces = _pieces(text, max_chars)
    chunks: list[str] = []
    start = 0
    while start < len(pieces):
        end, size = start, len(pieces[start][1])
        while (
            end + 1 < len(pieces)
            and size + len(pieces[end + 1][0]) + len(pieces[end + 1][1]) <= max_chars
        ):
            end += 1
            size += len(pieces[end][0]) + len(pieces[end][1])
        chunks.append(_join(pieces[start : end + 1]))
        if end + 1 >= len(pieces):
            break
        start = _overlap_start(pieces, start, end, overlap_chars, max_chars)
    return chunks


def pack(parts: Sequence[str], max_chars: int, *, separator: str = "\n\n") -> list[list[str]]:
    """Group consecutive ``parts`` so each group, joined by ``separator``, fits ``max_chars``.

    A part longer than ``max_chars`` forms a group of its own (the caller splits it).
    """
    groups: list[list[str]] = []
    size = 0
    for part in parts:
        if groups and size + len(separator) + len(part) <= max_chars:
            groups[-1].append(part)
            size += len(separator) + len(part)
        else:
            groups.append([part])
            size = len(part)
    return groups


# --------------------------------------------------------------------------- internals


def _pieces(text: str, max_chars: int) -> list[tuple[str, str]]:
    """Cut text into ``(joiner, piece)`` pairs, each piece at most ``max_chars`` long.

    The joiner is what goes before the piece when it follows another one in a chunk:
    a blank line between paragraphs, a space between sentences or words, nothing
    inside a word.
    """
    out: list[tuple[str, str]] = []
    for paragraph in _PARAGRAPH.split(text.strip()):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        joiner = "\n\n"
        if len(paragraph) <= max_chars:
            out.append((joiner, paragraph))
            continue
        for sentence in _SENTENCE.split(paragraph):
            sentence = sentence.strip()
            if not sentence:
                continue
            if len(sentence) <= max_chars:
                out.append((joiner, sentence))
                joiner = " "
                continue
            for word in _SPACE.split(sentence):
                for i in range(0, len(word), max_chars):
                    out.append((joiner if i == 0 else "", word[i : i + max_chars]))
                    joiner = " "
    return out


def _join(pieces: Sequence[tuple[str, str]]) -> str:
    return pieces[0][1] + "".join(joiner + piece for joiner, piece in pieces[1:])


def _overlap_start(
    pieces: Sequence[tuple[str, str]], start: int, end: int, overlap: int, max_chars: int
) -> int:
    """Where the chunk after ``pieces[start:end+1]`` begins, reaching back for overlap."""
    nxt = end + 1
    room = max_chars - len(pieces[nxt][1])
    begin, carried = nxt, 0
    while begin - 1 > start:
        cost = len(pieces[begin - 1][1]) + len(pieces[begin][0])
        if carried + cost > min(overlap, room):
            break
        carried += cost
        begin -= 1
    return begin


def file_header(label: str, part: int = 1, parts: int = 1) -> str:
    """The line that opens a file's text (or one part of it) in a source."""
    where = f" (part {part} of {parts})" if parts > 1 else ""
    return f"=== File: {label}{where} ==="


def join_files(files: Sequence[tuple[str, str]]) -> str:
    """Several files as one source, each opened by its :func:`file_header`."""
    return "\n\n".join(f"{file_header(label)}\n{text.strip()}" for label, text in files)


def split_files(
    files: Sequence[tuple[str, str]], max_chars: int, *, overlap_chars: int = 0
) -> list[str]:
    """Chunks over several files: each chunk holds whole files or a labelled part of one.

    A file too long for one chunk is split on its own, every part opened by its
    header (``=== File: a.md (part 2 of 3) ===``), so each map call knows which
    file it reads; short files are packed together in order.
    """
    pieces: list[str] = []
    for label, text in files:
        whole = f"{file_header(label)}\n{text.strip()}"
        if len(whole) <= max_chars:
            pieces.append(whole)
            continue
        room = max(1, max_chars - len(file_header(label, 99, 99)) - 1)
        parts = split_text(text.strip(), room, overlap_chars=overlap_chars)
        pieces.extend(f"{file_header(label, i, len(parts))}\n{p}" for i, p in enumerate(parts, 1))
    return ["\n\n".join(group) for group in pack(pieces, max_chars)]
