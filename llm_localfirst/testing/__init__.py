"""Test doubles that users need too (as httpx ships ``MockTransport``).

- :class:`FakeUpstream`: a loopback fake model server (OpenAI and Anthropic wire
  formats) with fault injection and request counting.
- :class:`MemoryAuditStore`: an in-memory audit store.
- :func:`offline_policy`: a policy whose ``local`` and ``cloud`` destinations are
  two fakes, so examples and tests run with no model and no key.
"""

from __future__ import annotations

from ..audit.memory import MemoryAuditStore
from ..policy import Policy, policy_from_data
from .fake_upstream import FakeUpstream

__all__ = ["FakeUpstream", "MemoryAuditStore", "offline_policy"]


def offline_policy(
    local: FakeUpstream, cloud: FakeUpstream | None = None, *, cloud_provider: str = "anthropic"
) -> Policy:
    """The default routing shape (bulk -> local, reason -> cloud) over fake upstreams.

    ``local`` is declared local (it is on 127.0.0.1); ``cloud`` is declared cloud
    even though it is on loopback, so the privacy pin treats it as the cloud.
    """
    destinations: dict[str, object] = {
        "local": {
            "provider": "openai",
            "base_url": local.base_url,
            "model": "fake-local",
            "locality": "local",
            "context_window": 2048,
            "price": {"input": 0, "output": 0},
        },
    }
    rules: list[object] = []
    fallback: list[str] = []
    if cloud is not None:
        url = cloud.root_url if cloud_provider == "anthropic" else cloud.base_url
        destinations["cloud"] = {
            "provider": cloud_provider,
            "base_url": url,
            "model": "fake-cloud",
            "locality": "cloud",
            "api_key_env": "LF_FAKE_CLOUD_KEY",
            "price": {"input": 1.0, "output": 5.0},
        }
        rules.append(
            {
                "name": "reasoning goes to the cloud",
                "when": {"kind": "reason"},
                "to": ["cloud"],
                "fallback": ["local"],
            }
        )
        fallback = ["cloud"]
    return policy_from_data(
        {
            "version": 1,
            "destinations": destinations,
            "rules": rules,
            "default": {"to": ["local"], "fallback": fallback},
        },
        source="<offline>",
    )
