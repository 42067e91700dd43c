"""open_store's URL grammar and the platform data directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llm_localfirst.audit import (
    MemoryAuditStore,
    PostgresAuditStore,
    SQLiteAuditStore,
    default_data_dir,
    open_store,
)
from llm_localfirst.audit.store import AuditStore


def _opened(store: AuditStore) -> AuditStore:
    store.close()
    return store


def test_no_url_means_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    store = _opened(open_store(None, data_dir=tmp_path / "data"))

    assert isinstance(store, SQLiteAuditStore)
    assert store.location == str(tmp_path / "data" / "audit.db")
    assert (tmp_path / "data" / "audit.db").is_file()


@pytest.mark.parametrize("slashes", ["sqlite://", "sqlite:///"])
def test_a_sqlite_url_names_an_absolute_path(tmp_path: Path, slashes: str) -> None:
    url = f"{slashes}{tmp_path}/logs/audit.db"  # tmp_path starts with '/'

    store = _opened(open_store(url, data_dir=tmp_path / "unused"))

    assert isinstance(store, SQLiteAuditStore)
    assert store.location == str(tmp_path / "logs" / "audit.db")


def test_a_plain_relative_path_is_sqlite_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    store = _opened(open_store("logs/audit.db", data_dir=tmp_path / "unused"))

    assert store.location == str(tmp_path / "logs" / "audit.db")


def test_memory_url_gives_an_in_memory_store(tmp_path: Path) -> None:
    assert isinstance(open_store("memory:", data_dir=tmp_path), MemoryAuditStore)
    assert not any(tmp_path.iterdir())


@pytest.mark.postgres
def test_a_postgres_url_gives_a_postgres_store(postgres_url: str, tmp_path: Path) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        assert isinstance(_opened(open_store(url, data_dir=tmp_path)), PostgresAuditStore)


def test_a_postgres_url_without_psycopg_raises_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)

    with pytest.raises(ImportError, match=r"llm-localfirst\[postgres\]"):
        open_store("postgresql://lf:pw@127.0.0.1:1/x", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", r"audit store URL is empty; expected sqlite:///absolute/path.db"),
        ("   ", r"audit store URL is empty"),
        ("mysql://root:pw@db/audit", r"unsupported audit store URL scheme 'mysql'; expected"),
        ("sqlite://relative.db", r"must be sqlite:///absolute/path.db \(three slashes"),
        ("sqlite:///:memory:", r"use memory: for an in-memory store"),
        ("postgresql:lf:pw@db", r"a PostgreSQL audit store URL must start with postgresql://"),
    ],
)
def test_an_unsupported_url_is_refused_with_a_precise_message(
    tmp_path: Path, url: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        open_store(url, data_dir=tmp_path)

    assert "pw" not in str(caught.value)  # a password never lands in the message


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {}, "/home/u/.local/share/llm-localfirst"),
        ("linux", {"XDG_DATA_HOME": "/xdg"}, "/xdg/llm-localfirst"),
        ("linux", {"XDG_DATA_HOME": "relative/xdg"}, "/home/u/.local/share/llm-localfirst"),
        ("freebsd14", {"XDG_DATA_HOME": "/xdg"}, "/xdg/llm-localfirst"),
        ("darwin", {"XDG_DATA_HOME": "/xdg"}, "/home/u/Library/Application Support/llm-localfirst"),
        ("win32", {"LOCALAPPDATA": "/appdata/local"}, "/appdata/local/llm-localfirst"),
        ("win32", {}, "/home/u/AppData/Local/llm-localfirst"),
    ],
)
def test_the_default_data_directory_follows_the_platform_convention(
    platform: str, environ: dict[str, str], expected: str
) -> None:
    found = default_data_dir(platform=platform, environ=environ, home=Path("/home/u"))

    assert found == Path(expected)


def test_the_default_data_directory_is_not_created(tmp_path: Path) -> None:
    found = default_data_dir(platform="linux", environ={}, home=tmp_path)

    assert found == tmp_path / ".local" / "share" / "llm-localfirst"
    assert not found.exists()
