"""The content classifier against the real llama.cpp tier: its gibberish fails closed.

The local classifier is a real ``llama_cpp.server`` (a tiny random-weight model), so
its answer is never exactly one of the labels: every request must become sensitive
(``classifier_invalid``) and stay local, and nothing may reach the "cloud" fake.
"""

from __future__ import annotations

import pytest

from llm_localfirst import Router
from llm_localfirst.audit import AuditFilter
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama


def test_the_real_local_models_gibberish_makes_requests_sensitive(
    llama_server: LlamaServer, fake_cloud: FakeUpstream
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
                    "context_window": 2048,
                    "timeout": 60,
                },
                "cloud": {
                    "provider": "openai",
                    "base_url": fake_cloud.base_url,
                    "model": "fake-cloud",
                    "locality": "cloud",
                    "api_key_env": "LF_FAKE_CLOUD_KEY",
                },
            },
            "sensitivity": {
                "classifier": {
                    "destination": "local",
                    "labels": ["medical", "legal", "general"],
                    "sensitive": ["medical", "legal"],
                    "timeout_ms": 60_000,
                }
            },
            "default": {"to": ["cloud"], "fallback": ["local"]},
        }
    )
    store = MemoryAuditStore()
    with Router(policy, audit=store, probe_ttl=0.001) as router:
        out = router.complete("What is the capital of France?", max_tokens=4)
        decision = out.decision
        assert decision.target == "local"
        assert decision.classifier_label is None
        assert "classifier_invalid" in decision.sensitive_reasons
        assert fake_cloud.model_calls() == []
        router.flush()
        (row,) = store.query(AuditFilter())
        assert row.sensitive and row.destination == "local"
        assert row.metadata["lf.classifier"] == "none"
