"""Fixtures for the audit tests: record factories and one store of each kind.

PostgreSQL tests need ``LF_TEST_POSTGRES_URL`` (``eval "$(.ci/start-postgres.sh)"``).
Without it they skip locally and fail in CI (``CI`` set), so CI cannot pass by
silently not testing PostgreSQL. Each PostgreSQL test gets its own schema.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import llm_localfirst
from llm_localfirst.audit import (
    Attempt,
    AuditRecord,
    AuditStore,
    MemoryAuditStore,
    PostgresAuditStore,
    SQLiteAuditStore,
    new_id,
)
from llm_localfirst.audit.record import format_iso

MakeRecord = Callable[..., AuditRecord]

BASE_TIME = datetime(2026, 11, 23, 3, 22, 35, 123000, tzinfo=UTC)


def ts_at(seconds: float) -> str:
    """The canonical timestamp ``seconds`` after `BASE_TIME`."""
    return format_iso(BASE_TIME + timedelta(seconds=seconds))


def _make_record(**overrides: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "id": new_id(),
        "ts": ts_at(0),
        "face": "python",
        "endpoint": "complete",
        "outcome": "ok",
        "kind": "bulk",
        "request_model": "auto",
        "sensitive": False,
        "sensitive_reasons": (),
        "rule": None,
        "arm": None,
        "destination": "ollama",
        "locality": "local",
        "model": "qwen2.5:7b",
        "fell_back": False,
        "attempts": (),
        "error_class": None,
        "error_message": None,
        "tokens_in": 10,
        "tokens_out": 20,
        "latency_ms": 12.5,
        "prompt_sha256": None,
        "prompt_chars": 100,
        "completion_chars": 200,
        "tags": (),
        "metadata": {},
    }
    fields.update(overrides)
    return AuditRecord(**fields)


@pytest.fixture
def make_record() -> MakeRecord:
    """A factory: ``make_record(face="cli", ...)`` with sensible defaults for the rest."""
    return _make_record


@pytest.fixture
def full_record() -> AuditRecord:
    """A record with every field set to a non-default, awkward value."""
    return _make_record(
        ts=ts_at(1.5),
        face="proxy",
        endpoint="chat",
        outcome="error",
        kind="reason",
        request_model="gpt-4o-mini",
        sensitive=True,
        sensitive_reasons=("declared", "detector:email", "détecteur:ü"),
        rule="sensitive → local only",
        arm="b",
        destination="vllm-gpu",
        locality="local",
        model="llama3.3:70b",
        fell_back=True,
        attempts=(
            Attempt("ollama", "connect_error", 1.25, error="connection refused"),
            Attempt("vllm-gpu", "http_5xx", 830.5, status=503, error="Service Unavailable"),
        ),
        error_class="UpstreamError",
        error_message='upstream said "no" (503)',
        tokens_in=2**40,
        tokens_out=0,
        latency_ms=831.875,
        prompt_sha256="ab" * 32,
        prompt_chars=123_456,
        completion_chars=7,
        tags=("team:data", "batch", "emoji 🦙"),
        metadata={"tenant": "acme", "trace": "t-1", "quote": 'it\'s "fine"', "": ""},
    )


#: Prelude for child-process scripts: imports and a ``record(**overrides)`` helper.
CHILD_PRELUDE = """
import sys
from llm_localfirst.audit import AuditRecord, AuditWriter, SQLiteAuditStore, new_id, utc_now_iso

def record(**overrides):
    fields = dict(
        id=new_id(), ts=utc_now_iso(), face="worker", endpoint="worker", outcome="ok",
        kind="bulk", request_model="auto", sensitive=False, sensitive_reasons=(), rule=None,
        arm=None, destination="ollama", locality="local", model="m", fell_back=False,
        attempts=(), error_class=None, error_message=None, tokens_in=1, tokens_out=2,
        latency_ms=1.0, prompt_sha256=None, prompt_chars=3, completion_chars=4, tags=(),
        metadata={},
    )
    fields.update(overrides)
    return AuditRecord(**fields)
"""


def spawn_python(code: str, *args: str) -> subprocess.Popen[str]:
    """Start ``python -c CHILD_PRELUDE + code args...`` importing this checkout's package."""
    root = str(Path(llm_localfirst.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    """Wait for ``process``; fail with its stderr unless it exits 0. Returns stdout."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"child exited {process.returncode}:\n{err}"
    return out


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


# Read once at collection: tests/conftest.py strips LF_* variables from the
# environment of every test, and the store fixture reaches this one dynamically.
_POSTGRES_URL = os.environ.get("LF_TEST_POSTGRES_URL", "")
_IN_CI = _truthy(os.environ.get("CI"))


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """``LF_TEST_POSTGRES_URL``; fails in CI and skips locally when it is unset."""
    url = _POSTGRES_URL
    if not url:
        reason = (
            'LF_TEST_POSTGRES_URL is not set; start a server with eval "$(.ci/start-postgres.sh)"'
        )
        if _IN_CI:
            pytest.fail(f"CI must test PostgreSQL: {reason}")
        pytest.skip(reason)
    return url


def with_search_path(url: str, schema: str) -> str:
    """``url`` with libpq options that put its tables in ``schema``."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A URL whose tables land in a fresh schema, dropped after the test."""
    import psycopg

    schema = f"lf_audit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(postgres_server_url, schema)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    """One store of each kind, closed after the test."""
    opened: AuditStore
    if request.param == "memory":
        opened = MemoryAuditStore()
    elif request.param == "sqlite":
        opened = SQLiteAuditStore(tmp_path / "audit.db")
    else:
        opened = PostgresAuditStore(request.getfixturevalue("postgres_url"))
    try:
        yield opened
    finally:
        opened.close()
