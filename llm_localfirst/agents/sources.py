"""What the local worker may read: allowed roots, path checks, limits, then the files.

A director names data (``paths``: files, directories, glob patterns; or the names
of ``documents`` an application registered); the worker reads it itself, so the
text never passes through the director. This module owns:

- :class:`Roots`: the folders reading is allowed under, from the MCP client's
  roots, ``LF_WORKER_ROOTS`` (``os.pathsep``-separated) and the policy's
  ``worker.roots``; each resolved once (symlinks followed) when the set is built;
- :func:`collect`: every path checked before anything is opened. A path must
  resolve (``..`` and symlinks followed) inside a root; only regular files are
  read (a FIFO, socket or device is refused from ``stat``, never opened, so a
  FIFO cannot block the worker); the number of files and the bytes on disk must
  stay within ``worker.max_files`` / ``worker.max_bytes``. One bad path refuses
  the whole request with :class:`SourceRefused` naming the path and why, and
  nothing is read or sent;
- :func:`read_all`: the reading, after every check passed. Each file is opened
  by its resolved path with ``O_NOFOLLOW | O_NONBLOCK`` and checked again with
  ``fstat``, so a file swapped for a symlink or a FIFO after the check is
  refused too. Formats are :mod:`.readers`.

Each file is labelled with its path relative to its root (``contracts/acme.pdf``),
which is what the local model sees and may cite. Absolute paths never go into
a prompt, an error the director reads, or the audit log (:func:`SourceFile.digest`).

It must never read outside a root, open a non-regular file, or log file text.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import InvalidRequest
from .readers import read_document, supported

__all__ = ["Roots", "SourceFile", "SourceRefused", "collect", "read_all", "roots_from_env"]

_GLOB_CHARS = frozenset("*?[")
#: Most path entries one call may name.
MAX_PATH_ENTRIES = 1000
NO_ROOTS = (
    "no folder is allowed for the worker to read, so `paths` cannot be used. "
    "Configure one: set LF_WORKER_ROOTS to the folders (separated by "
    f"{os.pathsep!r}), add `worker: {{roots: [~/contracts]}}` to the policy, or "
    "share a folder as a root from the MCP client. Or pass the text in `source`."
)


class SourceRefused(InvalidRequest):
    """A path the worker will not read; nothing was read or sent.

    Attributes:
        path: The path as the caller wrote it (it is theirs; never resolved or absolute).
        why: The reason, in a few words.
    """

    code = "source_refused"

    def __init__(self, path: str, why: str) -> None:
        shown = path if len(path) <= 200 else path[:200] + "..."
        super().__init__(f"{shown!r}: {why}" if path else why, param="paths")
        self.path = path
        self.why = why


@dataclass(frozen=True, slots=True)
class Roots:
    """The folders the worker may read under, resolved, in priority order.

    Attributes:
        paths: The resolved root folders (duplicates and missing folders dropped).
    """

    paths: tuple[Path, ...] = ()

    @classmethod
    def of(cls, *groups: Iterable[str | Path]) -> Roots:
        """Resolve root entries (``~`` expanded, ``file://`` URIs accepted).

        Entries that do not exist or are not directories are dropped: a root the
        user has not created yet allows nothing.
        """
        out: list[Path] = []
        for group in groups:
            for entry in group:
                path = _root_path(entry)
                if path is not None and path.is_dir() and path not in out:
                    out.append(path)
        return cls(tuple(out))

    def __bool__(self) -> bool:
        return bool(self.paths)

    def containing(self, real: Path) -> int | None:
        """Index of the first root ``real`` (a resolved path) is inside, or None."""
        for i, root in enumerate(self.paths):
            if real == root or real.is_relative_to(root):
                return i
        return None


def roots_from_env(value: str) -> list[str]:
    """``LF_WORKER_ROOTS`` split on ``os.pathsep`` (empty entries ignored)."""
    return [part.strip() for part in value.split(os.pathsep) if part.strip()]


def _root_path(entry: str | Path) -> Path | None:
    text = str(entry).strip()
    if not text or "\x00" in text:
        return None
    if text.startswith("file:"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            return None
        text = unquote(parts.path)
    elif "://" in text:  # another scheme: not a folder on this machine
        return None
    try:
        return Path(os.path.realpath(os.path.expanduser(text)))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file that passed every check, not yet read.

    Attributes:
        root_index: Which root it is under (index into ``Roots.paths``).
        real: Its resolved absolute path (never shown to a model or logged).
        relative: Its path relative to its root, with ``/`` separators (its label).
        size: Bytes on disk when checked.
    """

    root_index: int
    real: Path
    relative: str
    size: int

    def digest(self) -> str:
        """What the audit log keeps about this file: root index and a path digest.

        ``r0:3f9a...`` (16 hex digits of SHA-256 over the relative path). File names
        can be as private as their contents ("acme-layoffs.docx"), and the audit log
        holds no prompt text, so it holds no path either; whoever has the file can
        recompute the digest to prove it was read.
        """
        h = hashlib.sha256(self.relative.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"r{self.root_index}:{h}"


def collect(
    entries: Sequence[str], roots: Roots, *, max_files: int, max_bytes: int
) -> list[SourceFile]:
    """Check every path and expand directories and globs; read nothing.

    Relative paths and patterns are taken relative to each root in turn (the first
    root where they match wins); absolute ones (``~`` expanded) must lie inside one.
    In a directory or a glob, hidden files and folders and files of formats the
    worker cannot read are skipped; a file named on its own must be readable.

    Raises:
        SourceRefused: no roots; a path outside every root (also through ``..`` or a
            symlink); a missing path; a FIFO, socket or device; an unsupported
            format; more than ``max_files`` files or ``max_bytes`` bytes.
    """
    if not roots:
        raise SourceRefused("", NO_ROOTS)
    if len(entries) > MAX_PATH_ENTRIES:
        raise SourceRefused("", f"{len(entries)} paths given; the limit is {MAX_PATH_ENTRIES}")
    found: dict[Path, SourceFile] = {}
    total = 0
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip() or "\x00" in entry:
            raise SourceRefused(str(entry)[:200], "not a usable path")
        for file in _expand(entry.strip(), roots):
            if file.real in found:
                continue
            found[file.real] = file
            total += file.size
            if len(found) > max_files:
                raise SourceRefused(
                    entry,
                    f"more than {max_files} files (the limit, worker.max_files in the policy)",
                )
            if total > max_bytes:
                raise SourceRefused(
                    entry,
                    f"the files add up to more than {max_bytes} bytes "
                    "(the limit, worker.max_bytes in the policy) at "
                    f"{file.relative!r}",
                )
    if not found:
        raise SourceRefused(", ".join(entries)[:200], "no readable file matched")
    return list(found.values())


def _expand(entry: str, roots: Roots) -> Iterator[SourceFile]:
    expanded = os.path.expanduser(entry)
    is_glob = any(c in _GLOB_CHARS for c in expanded)
    candidates: list[tuple[int | None, str]]
    if os.path.isabs(expanded):
        candidates = [(None, expanded)]
    else:
        candidates = [(i, os.path.join(root, expanded)) for i, root in enumerate(roots.paths)]
    for _, candidate in candidates:
        lexical = os.path.normpath(candidate)
        if is_glob:
            base = _glob_base(lexical)
            _inside(entry, base, roots, lexical=True)
            matches = sorted(glob.glob(lexical, recursive=True))
            if not matches:
                continue
            out: list[SourceFile] = []
            for match in matches:
                out.extend(_files_at(entry, match, roots, named=False))
            yield from out
            return
        if not os.path.lexists(lexical):
            continue
        yield from _files_at(entry, lexical, roots, named=True)
        return
    if os.path.isabs(expanded) and not is_glob:  # say "outside" rather than "missing"
        _inside(entry, os.path.normpath(expanded), roots, lexical=True)
    raise SourceRefused(entry, "no such file or directory under the allowed roots")


def _glob_base(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts:
        if any(c in _GLOB_CHARS for c in part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else os.sep


def _inside(entry: str, path: str, roots: Roots, *, lexical: bool) -> int:
    real = Path(os.path.realpath(path))
    index = roots.containing(real)
    if index is None:
        if lexical and roots.containing(Path(os.path.abspath(path))) is not None:
            raise SourceRefused(entry, "a symlink in it resolves outside the allowed roots")
        if ".." in Path(entry).parts:
            raise SourceRefused(entry, "'..' leads outside the allowed roots")
        raise SourceRefused(entry, "outside the allowed roots")
    return index


def _files_at(entry: str, path: str, roots: Roots, *, named: bool) -> list[SourceFile]:
    """The files at ``path`` (one file, or a directory walked), each checked."""
    index = _inside(entry, path, roots, lexical=True)
    try:
        st = os.stat(path)  # follows symlinks (already checked to stay inside); never opens
    except OSError as exc:
        raise SourceRefused(entry, f"cannot be examined ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        return _walk(entry, path, roots)
    if not stat.S_ISREG(st.st_mode):
        raise SourceRefused(entry, f"{_kind(st.st_mode)}, not a regular file; it is never opened")
    real = Path(os.path.realpath(path))
    relative = real.relative_to(roots.paths[index]).as_posix()
    if not supported(real.name):
        if named:
            raise SourceRefused(
                entry,
                f"{relative!r} is in a format the worker cannot read "
                "(text, Markdown, source code, CSV, JSON, HTML, PDF, DOCX)",
            )
        return []
    return [SourceFile(index, real, relative or real.name, st.st_size)]


def _walk(entry: str, top: str, roots: Roots) -> list[SourceFile]:
    out: list[SourceFile] = []
    for folder, dirs, files in os.walk(top, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            out.extend(_files_at(entry, os.path.join(folder, name), roots, named=False))
    return out


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def read_all(files: Sequence[SourceFile], roots: Roots, *, max_bytes: int) -> list[tuple[str, str]]:
    """Read checked files: ``(label, text)`` pairs in order.

    Raises:
        SourceRefused: a file changed into something else since it was checked,
            grew past the byte limit, or cannot be read in its format.
    """
    out: list[tuple[str, str]] = []
    budget = max_bytes
    for file in files:
        data = _read_bytes(file, roots, budget)
        budget -= len(data)
        out.append((file.relative, read_document(file.relative, data)))
    return out


def _read_bytes(file: SourceFile, roots: Roots, budget: int) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(file.real, flags)
    except OSError as exc:
        raise SourceRefused(file.relative, f"cannot be opened ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SourceRefused(file.relative, "changed into a special file; not read")
        if roots.containing(Path(os.path.realpath(file.real))) != file.root_index:
            raise SourceRefused(file.relative, "moved outside the allowed roots; not read")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > budget:
                raise SourceRefused(file.relative, "grew past worker.max_bytes while being read")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def document_sources(
    documents: Mapping[str, Path | str], names: Sequence[str], *, max_bytes: int
) -> list[tuple[str, str]]:
    """Read registered documents by name: ``(name, text)`` pairs.

    A ``Path`` is read with the same readers as ``paths`` (the application chose
    it, so no root applies; special files are still refused); a ``str`` is the text.

    Raises:
        SourceRefused: an unknown name, a missing or special file, or too many bytes.
    """
    out: list[tuple[str, str]] = []
    total = 0
    for name in names:
        if name not in documents:
            known = ", ".join(sorted(documents)) or "none"
            raise SourceRefused(name, f"no document has this name (registered: {known})")
        doc = documents[name]
        if isinstance(doc, str):
            total += len(doc.encode("utf-8", "surrogatepass"))
            text = doc
        else:
            path = os.path.expanduser(str(doc))
            try:
                st = os.stat(path)
            except OSError as exc:
                raise SourceRefused(name, f"cannot be examined ({exc.strerror or exc})") from None
            if not stat.S_ISREG(st.st_mode):
                raise SourceRefused(name, f"{_kind(st.st_mode)}, not a regular file")
            total += st.st_size
            if total > max_bytes:
                break
            real = Path(os.path.realpath(path))
            file = SourceFile(0, real, name, st.st_size)
            text = read_document(real.name, _read_bytes(file, Roots((real.parent,)), max_bytes))
        if total > max_bytes:
            break
        out.append((name, text))
    if total > max_bytes:
        raise SourceRefused(
            name,
            f"the documents add up to more than {max_bytes} bytes (worker.max_bytes in the policy)",
        )
    return out
