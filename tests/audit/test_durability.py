"""Durability you can choose: intents committed before dispatch; the Router's audit plumbing.

Covers `AuditWriter.intent`/`aintent` (group commit, failures surface as `AuditError`),
the Router writing one intent per upstream attempt under ``durability: intent``,
thread-safe lazy creation of the store and writer, and a SIGKILL under load after
which every request that reached the upstream has a committed row.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from llm_localfirst import AuditError, Router, Settings
from llm_localfirst.audit import (
    AuditFilter,
    AuditIntent,
    AuditWriter,
    MemoryAuditStore,
    SQLiteAuditStore,
    new_id,
    open_store,
    utc_now_iso,
    verify_store,
)
from llm_localfirst.policy import policy_from_data
from llm_localfirst.request import Request
from llm_localfirst.testing import FakeUpstream, offline_policy

from .conftest import spawn_python

WAIT = 30.0


def _intent(**overrides: Any) -> AuditIntent:
    fields: dict[str, Any] = dict(
        id=new_id(),
        attempt=1,
        ts=utc_now_iso(),
        face="python",
        endpoint="complete",
        kind="bulk",
        destination="local",
        locality="local",
        model="m",
        sensitive=False,
        sensitive_reasons=(),
        rule=None,
        prompt_sha256=None,
        prompt_chars=1,
    )
    fields.update(overrides)
    return AuditIntent(**fields)


class CountingStore(MemoryAuditStore):
    """Counts intent commits; can be told to fail them."""

    def __init__(self) -> None:
        super().__init__()
        self.intent_batches: list[int] = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()

    def write_intents(self, intents: Sequence[AuditIntent]) -> None:
        assert self.gate.wait(WAIT)
        if self.fail:
            raise OSError("disk gone")
        self.intent_batches.append(len(intents))
        super().write_intents(intents)


def _settings(**overrides: Any) -> Settings:
    return Settings.load(env_file=None, environ={}, **overrides)


# ---------------------------------------------------------------------------- writer


def test_intent_returns_only_once_the_row_is_committed(tmp_path: Path) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    writer = AuditWriter(store, durability="intent")
    intent = _intent()
    writer.intent(intent)
    other = SQLiteAuditStore(tmp_path / "audit.db")  # another process's view
    try:
        assert [i.id for i in other.open_intents(AuditFilter())] == [intent.id]
    finally:
        writer.close()
        other.close()
        store.close()


def test_concurrent_intents_share_commits(tmp_path: Path) -> None:
    store = CountingStore()
    writer = AuditWriter(store, durability="intent")
    store.gate.clear()  # hold the first commit so the others queue up behind it
    threads = [threading.Thread(target=writer.intent, args=(_intent(),)) for _ in range(16)]
    for t in threads:
        t.start()
    store.gate.set()
    for t in threads:
        t.join(WAIT)
    writer.close()
    assert sum(store.intent_batches) == 16
    assert len(store.intent_batches) < 16
    assert verify_store(store).intents == 16


def test_an_intent_the_store_refuses_raises_audit_error() -> None:
    store = CountingStore()
    store.fail = True
    writer = AuditWriter(store, durability="intent")
    with pytest.raises(AuditError, match="disk gone"):
        writer.intent(_intent())

    async def in_a_loop() -> None:
        with pytest.raises(AuditError):
            await writer.aintent(_intent())

    asyncio.run(in_a_loop())
    writer.close()
    with pytest.raises(AuditError, match="closed"):
        writer.intent(_intent())


def test_an_unknown_durability_is_refused() -> None:
    with pytest.raises(ValueError, match="durability"):
        AuditWriter(MemoryAuditStore(), durability="sometimes")


# ---------------------------------------------------------------------------- router


def test_intent_mode_commits_one_intent_per_attempt_with_the_decision_rows_id(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    store = MemoryAuditStore()
    fake_local.status = 500  # the local attempt fails, the cloud answers
    router = Router(
        offline_policy(fake_local, fake_cloud, cloud_provider="openai"),
        settings=_settings(audit_durability="intent"),
        audit=store,
        probe_ttl=60,
    )
    completion = router.complete("hello there")
    router.close()

    first, second = sorted(store.intents, key=lambda i: i.attempt)
    assert first.id == second.id == completion.audit_id
    assert (first.destination, first.locality) == ("local", "local")
    assert (second.destination, second.locality) == ("cloud", "cloud")
    assert first.prompt_sha256 == Request.build("hello there").prompt_sha256()
    (row,) = store.records
    assert [(a.destination, a.locality) for a in row.attempts] == [
        ("local", "local"),
        ("cloud", "cloud"),
    ]
    assert store.open_intents(AuditFilter()) == []


def test_a_request_whose_intent_cannot_be_committed_is_not_sent(
    fake_local: FakeUpstream,
) -> None:
    store = CountingStore()
    store.fail = True
    router = Router(
        offline_policy(fake_local),
        settings=_settings(audit_durability="intent"),
        audit=store,
        probe_ttl=60,
    )
    with pytest.raises(AuditError):
        router.complete("hello")
    router.close()
    assert fake_local.model_calls() == []
    (row,) = store.records
    assert row.error_class == "AuditError" and row.attempts == ()


def test_batch_mode_writes_no_intents(fake_local: FakeUpstream) -> None:
    store = MemoryAuditStore()
    router = Router(
        offline_policy(fake_local),
        settings=_settings(audit_durability="batch"),
        audit=store,
        probe_ttl=60,
    )
    router.complete("hello")
    router.close()
    assert store.intents == [] and len(store.records) == 1


def test_durability_comes_from_the_env_then_the_policy_then_defaults_to_intent(
    fake_local: FakeUpstream,
) -> None:
    policy = offline_policy(fake_local)
    assert Router(policy, settings=_settings()).lifecycle.audit_durability == "intent"
    data = {
        "version": 1,
        "audit": {"durability": "batch"},
        "destinations": {
            "local": {
                "provider": "openai",
                "base_url": fake_local.base_url,
                "model": "m",
                "locality": "local",
            }
        },
        "default": {"to": ["local"]},
    }
    batch_policy = policy_from_data(data)
    assert Router(batch_policy, settings=_settings()).lifecycle.audit_durability == "batch"
    env = Settings.load(env_file=None, environ={"LF_AUDIT_DURABILITY": "intent"})
    assert Router(batch_policy, settings=env).lifecycle.audit_durability == "intent"


def test_two_threads_first_use_creates_one_store_and_one_writer(
    fake_local: FakeUpstream, tmp_path: Path
) -> None:
    router = Router(
        offline_policy(fake_local),
        settings=_settings(audit_url=str(tmp_path / "audit.db")),
        probe_ttl=60,
    )
    barrier = threading.Barrier(8, timeout=WAIT)
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            barrier.wait()
            seen.append((id(router.lifecycle.writer), id(router.audit)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    router.close()
    assert errors == []
    assert len(set(seen)) == 1


def test_requests_from_many_threads_from_first_use_lose_no_row_at_close(
    fake_local: FakeUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    router = Router(
        offline_policy(fake_local),
        settings=_settings(audit_url=str(path), audit_durability="batch"),
        probe_ttl=60,
    )
    barrier = threading.Barrier(8, timeout=WAIT)
    ids: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(10):
                ids.append(router.complete("hi").audit_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    router.close()
    assert errors == []
    store = SQLiteAuditStore(path)
    try:
        assert store.count(AuditFilter()) == len(ids) == 80
        assert verify_store(store).ok
    finally:
        store.close()


def test_stores_opening_one_new_file_at_once_never_see_database_is_locked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fresh.db"
    barrier = threading.Barrier(8, timeout=WAIT)
    stores: list[SQLiteAuditStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            barrier.wait()
            stores.append(SQLiteAuditStore(path))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    for store in stores:
        store.close()
    assert errors == [] and len(stores) == 8


def test_a_file_locked_past_the_timeout_is_an_audit_error_not_a_raw_sqlite_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    SQLiteAuditStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(AuditError, match="locked") as caught:
            SQLiteAuditStore(path, busy_timeout=0.1)  # opening migrates: it must write
    finally:
        holder.close()
    assert caught.value.location == str(path)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


# ---------------------------------------------------------------------------- SIGKILL


CHILD = """
import asyncio, itertools
from pathlib import Path
from llm_localfirst import Router, Settings
from llm_localfirst.audit import open_store
from llm_localfirst.policy import policy_from_data

base_url, url = sys.argv[1], sys.argv[2]
policy = policy_from_data({"version": 1, "default": {"to": ["local"]}, "destinations": {
    "local": {"provider": "openai", "base_url": base_url, "model": "m", "locality": "local"}}})
settings = Settings.load(env_file=None, environ={}, audit_durability="intent")
router = Router(policy, settings=settings, audit=open_store(url, data_dir=Path(".")),
                probe_ttl=3600)
counter = itertools.count()

async def worker():
    while True:
        await router.acomplete(f"request {next(counter)}")

async def main():
    await asyncio.gather(*(worker() for _ in range(8)))

router.lifecycle.run_sync(main())
"""


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_after_sigkill_under_load_every_request_the_upstream_saw_has_a_row(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    url = (
        str(tmp_path / "audit.db") if kind == "sqlite" else request.getfixturevalue("postgres_url")
    )
    open_store(url, data_dir=tmp_path).close()  # migrated before the load starts
    enough = threading.Event()
    seen: list[str] = []
    lock = threading.Lock()

    def reply(body: dict[str, Any]) -> str:
        with lock:
            seen.append(body["messages"][-1]["content"])
            if len(seen) >= 300:
                enough.set()
        return "ok"

    with FakeUpstream(reply=reply) as upstream:
        child = spawn_python(CHILD, upstream.base_url, url)
        try:
            assert enough.wait(60), child.stderr.read() if child.poll() is not None else "slow"
            os.kill(child.pid, signal.SIGKILL)
            child.wait(WAIT)
        finally:
            if child.poll() is None:
                child.kill()
            child.communicate(timeout=WAIT)
        with lock:
            received = list(seen)
    assert child.returncode == -signal.SIGKILL

    store = open_store(url, data_dir=tmp_path)
    try:
        rows = store.chain_rows("audit_intents", store.chains_in("audit_intents")[0], limit=100_000)
        decided = {r.prompt_sha256 for r in store.query(AuditFilter(limit=1000))}
        intents = {str(r["prompt_sha256"]) for r in rows}
        missing = [p for p in received if Request.build(p).prompt_sha256() not in intents]
        assert missing == [], f"{len(missing)} of {len(received)} sent without a row"
        assert len(received) >= 300
        result = verify_store(store)
        assert result.ok, result.problems
        unknown = store.open_intents(AuditFilter())
        assert json.dumps([i.to_dict() for i in unknown])  # listed, outcome unknown
        assert decided <= intents
    finally:
        store.close()
