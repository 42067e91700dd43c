"""Turn the bytes of a file into the text a local model reads, by format.

Formats: plain text, Markdown, source code, CSV, JSON and similar text formats
(decoded as UTF-8, a byte-order mark honoured); HTML (its visible text, through
the standard library's :mod:`html.parser`: no extra dependency, scripts, styles
and markup dropped); PDF (the text layer, through ``pypdf``) and DOCX (paragraphs
and tables, through ``python-docx``). The two document readers are the
``documents`` extra and are imported only when such a file is read; without
them the error says ``pip install 'llm-localfirst[documents]'``.

It must never open files (:mod:`.sources` does, after its checks) or run code a
document carries (no macros, no scripts, no external entities).
"""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import PurePosixPath

from ..errors import InvalidRequest

__all__ = ["DOCUMENTS_HINT", "TEXT_SUFFIXES", "read_document", "supported"]

DOCUMENTS_HINT = "pip install 'llm-localfirst[documents]'"

#: Suffixes read as UTF-8 text.
_TEXT_SUFFIX_WORDS = """
.txt .text .md .markdown .mdx .rst .adoc .org .tex .csv .tsv .json .jsonl .ndjson .yaml .yml
.toml .ini .cfg .conf .log .xml .svg .srt .vtt .eml .ics .sql .graphql .proto
.py .pyi .ipynb .js .mjs .cjs .jsx .ts .tsx .go .rs .java .kt .kts .scala .c .h .cc .cpp .cxx
.hpp .hh .cs .fs .rb .php .pl .pm .r .jl .lua .swift .m .mm .dart .ex .exs .erl .hs .ml .clj
.sh .bash .zsh .fish .ps1 .bat .css .scss .sass .less .vue .svelte .gradle .cmake .mk .nix
.tf .hcl .dockerfile .gitignore
"""
TEXT_SUFFIXES = frozenset(_TEXT_SUFFIX_WORDS.split())
#: File names read as text whatever their suffix.
TEXT_NAMES = frozenset({"readme", "license", "makefile", "dockerfile", "changelog", "notice"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})


def _suffix(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).suffix.lower()


def supported(name: str) -> bool:
    """Whether a file of this name is in a format the worker reads."""
    suffix = _suffix(name)
    return (
        suffix in TEXT_SUFFIXES
        or suffix in HTML_SUFFIXES
        or suffix in (".pdf", ".docx")
        or PurePosixPath(name).name.lower() in TEXT_NAMES
    )


class UnreadableDocument(InvalidRequest):
    """A file the worker cannot turn into text (format, encoding, encryption, missing reader).

    Attributes:
        path: The file's label (its path relative to its root).
    """

    code = "source_unreadable"

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path!r}: {why}", param="paths")
        self.path = path
        self.why = why


def read_document(label: str, data: bytes) -> str:
    """The text of one file.

    Args:
        label: Its name or relative path (the suffix picks the reader; used in errors).
        data: Its bytes.

    Raises:
        UnreadableDocument: an unsupported format, binary data in a text file, an
            encrypted or broken PDF/DOCX, or a missing document reader (with the
            install hint).
    """
    suffix = _suffix(label)
    if suffix == ".pdf":
        return _pdf(label, data)
    if suffix == ".docx":
        return _docx(label, data)
    if suffix in HTML_SUFFIXES:
        return html_text(_decode(label, data))
    if supported(label):
        return _decode(label, data)
    raise UnreadableDocument(
        label,
        "a format the worker cannot read (text, Markdown, source code, CSV, JSON, HTML, PDF, DOCX)",
    )


def _decode(label: str, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnreadableDocument(label, "binary data, not text")
    return data.decode("utf-8-sig", errors="replace")


def _pdf(label: str, data: bytes) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise UnreadableDocument(
            label, "reading PDF needs the pypdf package: " + DOCUMENTS_HINT
        ) from None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableDocument(label, "an encrypted PDF; decrypt it first")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableDocument(label, f"not a readable PDF ({type(exc).__name__})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise UnreadableDocument(label, "a PDF without a text layer (scanned?); run OCR first")
    return text


def _docx(label: str, data: bytes) -> str:
    try:
        import docx
    except ImportError:
        raise UnreadableDocument(
            label, "reading DOCX needs the python-docx package: " + DOCUMENTS_HINT
        ) from None
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises zipfile/lxml/KeyError for broken files
        raise UnreadableDocument(label, f"not a readable DOCX ({type(exc).__name__})") from None
    parts = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells]
            if any(cells):
                parts.append(" | ".join(cells))
    return "\n\n".join(parts)


class _VisibleText(HTMLParser):
    """Collects the text a browser would show: no scripts, styles, templates or comments."""

    HIDDEN = frozenset({"script", "style", "template", "noscript", "head", "svg", "iframe"})
    BLOCKS = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "header",
            "footer",
            "table",
            "ul",
            "ol",
            "pre",
            "blockquote",
            "title",
            "dt",
            "dd",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN and tag != "head":
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and tag != "head":
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The visible text of an HTML document, one block per line."""
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)
