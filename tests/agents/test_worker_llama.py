"""The worker against a real llama.cpp server (tiny random-weight model).

The model's words are gibberish; what is checked is that a source too long for
the declared context window is split, every piece really runs on the local
server, the partial results are combined, and every call is audited.
"""

from __future__ import annotations

import pytest

from llm_localfirst import Router
from llm_localfirst.agents import Worker
from llm_localfirst.audit import AuditFilter
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import MemoryAuditStore
from tests.agents.conftest import long_text
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama


def test_a_long_source_is_split_and_processed_on_the_real_local_model(
        llama_server: LlamaServer) -> None:
    policy = policy_from_data({"version": 1, "destinations": {"local": {
        "provider": "openai", "base_url": llama_server.base_url, "model": llama_server.model_id,
        "locality": "local", "context_window": 1024, "timeout": 120}},
        "default": {"to": ["local"]}})
    store = MemoryAuditStore()
    router = Router(policy, audit=store, probe_ttl=0.001)
    steps: list[tuple[int, int, str]] = []
    try:
        result = Worker(router).run(
            "Summarize in one sentence", source=long_text(12, 8), task_kind="summarize",
            max_tokens=16, progress=lambda done, total, message: steps.append(
                (done, total, message)))
        router.flush()
    finally:
        router.close()
    assert result.chunks > 1 and result.destination == "local" and result.model == "tiny"
    assert len(result.audit_ids) == result.chunks + 1
    assert result.tokens_in > 0 and result.tokens_out > 0
    rows = store.query(AuditFilter(limit=100))
    assert len(rows) == len(result.audit_ids)
    assert {(r.face, r.endpoint, r.outcome, r.locality) for r in rows} == {
        ("worker", "worker", "ok", "local")}
    assert all(r.tokens_in for r in rows)  # the real server reported usage for every call
    assert steps[-1][0] == steps[-1][1] == len(rows)
