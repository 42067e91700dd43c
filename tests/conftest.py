"""Shared fixtures: an isolated environment, fake upstreams, routers over them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_localfirst import Router
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy
from tests.support.llama_server import (  # noqa: F401 (fixtures)
    llama_server,
    llama_server_factory,
    tiny_model_path,
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No LF_* / SDK variables from the developer's shell; data dir and cwd in tmp."""
    for name in list(os.environ):
        if name.startswith(("LF_", "ANTHROPIC_", "OPENAI_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LF_DATA_DIR", str(tmp_path / "data"))
    # Router(...) reads no LF_* (only from_env does): its default data dir must be in tmp too.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("LF_FAKE_CLOUD_KEY", "test-key-not-secret")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake_local() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake_cloud() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def memory_audit() -> MemoryAuditStore:
    return MemoryAuditStore()


@pytest.fixture
def router(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> Iterator[Router]:
    """Bulk -> fake local, reason -> fake cloud (Anthropic wire format), audit in memory."""
    r = Router(offline_policy(fake_local, fake_cloud), audit=memory_audit, probe_ttl=0.001)
    yield r
    r.close()
