"""Choose and open an audit store from a URL, and find the platform's data directory.

This module owns the audit URL grammar (`open_store`) and where the default
database lives (`default_data_dir`). It reads no ``LF_*`` variable: settings decide
the URL and data directory and pass them in. Nothing here runs at import.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from llm_localfirst.audit.memory import MemoryAuditStore
from llm_localfirst.audit.postgres import PostgresAuditStore
from llm_localfirst.audit.sqlite import SQLiteAuditStore
from llm_localfirst.audit.store import AuditStore

__all__ = ["APP_NAME", "default_data_dir", "open_store"]

APP_NAME = "llm-localfirst"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_FORMS = "sqlite:///absolute/path.db, a file path, postgresql://..., postgres://... or memory:"


def open_store(url: str | None, *, data_dir: Path) -> AuditStore:
    """Open the audit store that ``url`` names, creating and migrating it if needed.

    - ``None``: SQLite at ``data_dir / "audit.db"``;
    - ``sqlite:///abs/path.db``: SQLite at ``/abs/path.db``;
    - a file path such as ``audit.db`` or ``~/lf/audit.db``: SQLite (relative to the cwd);
    - ``postgresql://...`` or ``postgres://...``: PostgreSQL (the ``postgres`` extra);
    - ``memory:``: a `MemoryAuditStore`, lost on exit.

    Args:
        url: The store URL, or ``None`` for the default.
        data_dir: Directory of the default SQLite file.

    Raises:
        ValueError: ``url`` is empty or has an unsupported form.
        ImportError: A PostgreSQL URL was given but psycopg is not installed.
    """
    if url is None:
        return SQLiteAuditStore(data_dir / "audit.db")
    text = url.strip()
    if not text:
        raise ValueError(f"audit store URL is empty; expected {_FORMS}")
    if text == "memory:":
        return MemoryAuditStore()
    match = _SCHEME.match(text)
    # One letter before ':' is a Windows drive ("C:\\audit.db"), not a scheme.
    if match is None or len(match.group(1)) == 1:
        return SQLiteAuditStore(text)
    scheme = match.group(1).lower()
    if scheme in ("postgresql", "postgres"):
        if not text[match.end() :].startswith("//"):
            # Not echoed: without '//' the password would escape redaction.
            raise ValueError(f"a PostgreSQL audit store URL must start with {scheme}://")
        return PostgresAuditStore(text)
    if scheme == "sqlite":
        path = text[match.end() :]
        if not path.startswith("///") or path == "///:memory:":
            raise ValueError(
                f"audit store URL {text!r} must be sqlite:///absolute/path.db "
                "(three slashes, then the absolute path); use memory: for an in-memory store"
            )
        return SQLiteAuditStore("/" + path.lstrip("/"))  # sqlite:////abs works too
    raise ValueError(f"unsupported audit store URL scheme {scheme!r}; expected {_FORMS}")


def default_data_dir(
    *,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Path:
    """Return the per-user data directory for llm-localfirst, following the platform.

    - Linux and other Unix: ``$XDG_DATA_HOME/llm-localfirst`` when that is an
      absolute path, else ``~/.local/share/llm-localfirst``.
    - macOS: ``~/Library/Application Support/llm-localfirst``.
    - Windows: ``%LOCALAPPDATA%\\llm-localfirst``, else ``~\\AppData\\Local\\llm-localfirst``.

    The directory is not created. Overrides such as ``LF_DATA_DIR`` belong to the
    settings, not here.

    Args:
        platform: ``sys.platform`` value to follow; the running one by default.
        environ: Environment to read; ``os.environ`` by default.
        home: Home directory; ``Path.home()`` by default.
    """
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    if platform.startswith(("win32", "cygwin")):
        local = environ.get("LOCALAPPDATA", "")
        return (Path(local) if local else home / "AppData" / "Local") / APP_NAME
    xdg = environ.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"
    return base / APP_NAME
