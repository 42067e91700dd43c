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
    llama_server: LlamaServer,
) -> None:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": llama_server.base_url,
                    "model": llama_server.model_id,
                    "locality": "local",
                    "context_window": 1024,
                    "timeout": 120,
                }
            },
            "default": {"to": ["local"]},
        }
    )
    store = MemoryAuditStore()
    router = Router(policy, audit=store, probe_ttl=0.001)
    steps: list[tuple[int, int, str]] = []
    source = long_text(12, 8)  # ~7,000 characters
    try:
        worker = Worker(router)
        first = worker.run(
            "Summarize in one sentence",
            source=source,
            task_kind="summarize",
            max_tokens=16,
            progress=lambda done, total, message: steps.append((done, total, message)),
        )
        second = worker.run(
            "Summarize in one sentence", source=source, task_kind="summarize", max_tokens=16
        )
        router.flush()
    finally:
        router.close()
    rows = {r.id: r for r in store.query(AuditFilter(limit=1000))}
    for result in (first, second):
        assert result.chunks > 1 and (result.destination, result.model) == ("local", "tiny")
        assert result.tokens_in > 0 and result.tokens_out > 0
        ok = [rows[i] for i in result.audit_ids if rows[i].outcome == "ok"]
        assert len(ok) >= result.chunks + 1  # every chunk, then the merge
        assert {(r.face, r.endpoint, r.locality) for r in ok} == {("worker", "worker", "local")}
        assert all(r.tokens_in for r in ok)  # the real server reported usage for every call
    # The tiny model's tokenizer packs far fewer than 4 characters into a token, so the
    # first plan overflows the server's real 2048-token window at most once; the worker
    # learns the density from that refusal and from reported usage, and re-plans.
    refused = [rows[i] for i in first.audit_ids if rows[i].outcome != "ok"]
    assert len(refused) <= 1 and all(r.error_class == "UpstreamError" for r in refused)
    assert all(rows[i].outcome == "ok" for i in second.audit_ids)  # planned right the 2nd time
    assert steps[-1][0] == steps[-1][1] == len(first.audit_ids) - len(refused)
