"""The library constructor reads no environment; only ``Router.from_env`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_localfirst import Router
from llm_localfirst.config import Settings, default_data_dir
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy


def test_the_constructor_reads_neither_the_environment_nor_dotenv(
    fake_local: FakeUpstream, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LF_MAX_INPUT_CHARS=123\n")
    monkeypatch.setenv("LF_PROBE_TTL", "7")
    router = Router(offline_policy(fake_local), audit=MemoryAuditStore())
    assert router.settings == Settings()
    from_env = Router.from_env()
    assert (from_env.settings.probe_ttl, from_env.settings.max_input_chars) == (7, 123)
    router.close()
    from_env.close()


def test_one_default_data_dir() -> None:
    from llm_localfirst.audit import factory

    assert default_data_dir is factory.default_data_dir
