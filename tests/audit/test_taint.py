"""Taint storage: digests and sessions remembered for a time, shared by every instance."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_localfirst.audit import (
    AuditStore,
    MemoryAuditStore,
    PostgresAuditStore,
    SQLiteAuditStore,
)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def pair(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> Iterator[tuple[AuditStore, AuditStore]]:
    """Two store instances sharing one database (one store twice for memory)."""
    first: AuditStore
    second: AuditStore
    if request.param == "memory":
        first = second = MemoryAuditStore(clock=clock)
    elif request.param == "sqlite":
        first = SQLiteAuditStore(tmp_path / "audit.db", clock=clock)
        second = SQLiteAuditStore(tmp_path / "audit.db", clock=clock)
    else:
        url = request.getfixturevalue("postgres_url")
        first = PostgresAuditStore(url, clock=clock)
        second = PostgresAuditStore(url, clock=clock)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_remembered_digest_matches_as_taint_on_another_instance(
    pair: tuple[AuditStore, AuditStore],
) -> None:
    writer, reader = pair
    writer.taint_add([digest("my diagnosis")], [], ttl_s=60)

    assert reader.taint_match([digest("hello"), digest("my diagnosis")], []) == "taint"
    assert reader.taint_match([digest("hello")], []) is None


def test_a_remembered_session_matches_as_session(pair: tuple[AuditStore, AuditStore]) -> None:
    writer, reader = pair
    writer.taint_add([], ["sess-42"], ttl_s=60)

    assert reader.taint_match([digest("anything")], ["sess-42"]) == "session"
    assert reader.taint_match([], ["sess-43"]) is None


def test_taint_wins_over_session_when_both_match(pair: tuple[AuditStore, AuditStore]) -> None:
    writer, reader = pair
    writer.taint_add([digest("a")], ["s"], ttl_s=60)
    assert reader.taint_match([digest("a")], ["s"]) == "taint"


def test_entries_expire_after_their_ttl(pair: tuple[AuditStore, AuditStore], clock: Clock) -> None:
    writer, reader = pair
    writer.taint_add([digest("a")], ["s"], ttl_s=30)
    clock.now += 29.9
    assert reader.taint_match([digest("a")], []) == "taint"
    clock.now += 0.2
    assert reader.taint_match([digest("a")], ["s"]) is None


def test_adding_again_extends_but_never_shortens_the_expiry(
    pair: tuple[AuditStore, AuditStore], clock: Clock
) -> None:
    writer, reader = pair
    writer.taint_add([digest("a")], [], ttl_s=100)
    writer.taint_add([digest("a")], [], ttl_s=10)  # shorter: ignored
    clock.now += 50
    assert reader.taint_match([digest("a")], []) == "taint"
    writer.taint_add([digest("a")], [], ttl_s=100)  # from now: extended
    clock.now += 90
    assert reader.taint_match([digest("a")], []) == "taint"


def test_digests_are_case_insensitive_hex(pair: tuple[AuditStore, AuditStore]) -> None:
    writer, reader = pair
    writer.taint_add([digest("a").upper()], [], ttl_s=60)
    assert reader.taint_match([digest("a")], []) == "taint"


@pytest.mark.parametrize("bad", ["alice@example.com", "not hex at all", "abc", ""])
def test_text_is_never_accepted_as_a_digest(pair: tuple[AuditStore, AuditStore], bad: str) -> None:
    writer, _ = pair
    with pytest.raises(ValueError, match="hex"):
        writer.taint_add([bad], [], ttl_s=60)


def test_a_bare_string_instead_of_a_collection_is_refused(
    pair: tuple[AuditStore, AuditStore],
) -> None:
    writer, _ = pair
    with pytest.raises(ValueError, match="collections"):
        writer.taint_add(digest("a"), [], ttl_s=60)


def test_a_non_positive_ttl_is_refused(pair: tuple[AuditStore, AuditStore]) -> None:
    writer, _ = pair
    with pytest.raises(ValueError, match="ttl_s"):
        writer.taint_add([digest("a")], [], ttl_s=0)


def test_nothing_to_match_is_none_without_a_query(pair: tuple[AuditStore, AuditStore]) -> None:
    _, reader = pair
    assert reader.taint_match([], []) is None


def test_sqlite_stores_session_ids_hashed_and_prunes_expired_entries(
    tmp_path: Path, clock: Clock
) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db", clock=clock)
    try:
        store.taint_add([digest("old")], ["sess-secret-name"], ttl_s=10)
        clock.now += 3600  # past the ttl and the prune interval
        store.taint_add([digest("new")], [], ttl_s=10)
        raw = sqlite3.connect(tmp_path / "audit.db")
        keys = [k for (k,) in raw.execute("SELECT key FROM audit_taint")]
        raw.close()
        assert keys == [digest("new")]
        assert all("sess-secret-name" not in k for k in keys)
    finally:
        store.close()


def test_the_sqlite_match_uses_the_primary_key_index(tmp_path: Path) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    store.close()
    raw = sqlite3.connect(tmp_path / "audit.db")
    plan = " ".join(
        str(row)
        for row in raw.execute(
            "EXPLAIN QUERY PLAN SELECT MIN(kind) FROM audit_taint WHERE expires_at > 0 AND "
            "((kind = 'd' AND key IN ('ab', 'cd')) OR (kind = 's' AND key IN ('ef')))"
        )
    )
    raw.close()
    assert "sqlite_autoindex_audit_taint_1" in plan
    assert "SCAN audit_taint" not in plan
