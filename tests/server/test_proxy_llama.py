"""The proxy in front of the real local tier: a llama.cpp server on a tiny random model.

The model's words are gibberish; what is checked is the wire: a chat and a stream
go through the proxy to llama.cpp and back, with the decision headers and audit rows.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from llm_localfirst.policy import policy_from_data
from tests.server.conftest import LiveProxy
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama


@pytest.fixture
def llama_proxy(proxy_factory: Any, llama_server: LlamaServer) -> LiveProxy:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "llama": {
                    "provider": "openai",
                    "base_url": llama_server.base_url,
                    "model": llama_server.model_id,
                    "locality": "local",
                    "timeout": 60,
                }
            },
            "default": {"to": ["llama"]},
        }
    )
    proxy: LiveProxy = proxy_factory(policy=policy)
    return proxy


def test_a_chat_through_the_proxy_reaches_llama_cpp(llama_proxy: LiveProxy) -> None:
    client = openai.OpenAI(base_url=llama_proxy.base_url, api_key="sk", max_retries=0, timeout=60)
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        max_tokens=8,
        temperature=0,
        messages=[{"role": "user", "content": "Say hello to jane.doe@example.com"}],
    )
    completion = raw.parse()
    assert raw.headers["x-lf-destination"] == "llama"
    assert completion.choices[0].finish_reason in ("stop", "length")
    (row,) = llama_proxy.rows()
    assert (row.outcome, row.locality, row.sensitive) == ("ok", "local", True)
    assert row.tokens_out


def test_a_stream_through_the_proxy_reaches_llama_cpp(llama_proxy: LiveProxy) -> None:
    client = openai.OpenAI(base_url=llama_proxy.base_url, api_key="sk", max_retries=0, timeout=60)
    chunks = list(
        client.chat.completions.create(
            model="llama",
            max_tokens=8,
            temperature=0,
            stream=True,
            messages=[{"role": "user", "content": "Count to three"}],
        )
    )
    assert chunks and any(c.choices and c.choices[0].finish_reason for c in chunks)
    (row,) = llama_proxy.rows()
    assert (row.endpoint, row.outcome, row.destination) == ("stream", "ok", "llama")
