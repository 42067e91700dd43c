"""Smoke tests for the local-model tier: a real llama.cpp server on a tiny random model.

The model's output is gibberish; these tests check the *wire protocol* (model listing,
chat completions, SSE streaming, long unicode prompts, outage and recovery), which is
what the router depends on.  Every network wait is bounded by an explicit timeout.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest

from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama

TIMEOUT = httpx2.Timeout(30.0, connect=2.0)
MAX_TOKENS = 8


# fmt: off
_WORDS = (
    "the", "router", "local", "model", "fallback", "latency", "token", "stream",
    "café", "naïve", "Zürich", "façade", "smørrebrød",
    "λόγος", "αβγ", "Привет", "мир", "日本語", "中文字符", "한국어",
    "مرحبا", "שלום", "हिन्दी", "ไทย",
    "🙂", "🚀", "👩\u200d💻", "🇩🇪", "e\u0301", "a\u200bb", "\t", "\u00a0", "∑∫√",
    "\U0001d518\U0001d52b\U0001d526",  # mathematical fraktur "Uni"
)
# fmt: on


def _chat_body(model: str, content: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a test model."},
            {"role": "user", "content": content},
        ],
        "max_tokens": MAX_TOKENS,
        "temperature": 0.0,
        **extra,
    }


def _chat(server: LlamaServer, content: str, **extra: Any) -> dict[str, Any]:
    with httpx2.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
        resp = client.post("/chat/completions", json=_chat_body(server.model_id, content, **extra))
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _mixed_unicode_text(n_chars: int, seed: int = 1234) -> str:
    """Deterministic multilingual text: ASCII, accents, Greek, Cyrillic, CJK, RTL, emoji..."""
    rng = random.Random(seed)
    words = _WORDS
    parts: list[str] = []
    size = 0
    while size < n_chars:
        w = rng.choice(words)
        sep = "\n" if rng.random() < 0.05 else " "
        parts.append(w + sep)
        size += len(w) + 1
    return "".join(parts)[:n_chars]


def test_models_lists_model(llama_server: LlamaServer) -> None:
    with httpx2.Client(base_url=llama_server.base_url, timeout=TIMEOUT) as client:
        resp = client.get("/models")
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert llama_server.model_id in ids


def test_chat_completion_non_streaming(llama_server: LlamaServer) -> None:
    data = _chat(llama_server, "Say hello in one word.")
    assert data["object"] == "chat.completion"
    assert data["model"] == llama_server.model_id
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)  # gibberish, possibly empty
    assert choice["finish_reason"] in ("stop", "length")
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 <= usage["completion_tokens"] <= MAX_TOKENS
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def _stream_data_lines(server: LlamaServer, content: str) -> list[str]:
    """POST a streaming chat completion; return the payloads of its SSE ``data:`` lines."""
    body = _chat_body(server.model_id, content, stream=True)
    data_lines: list[str] = []
    with (
        httpx2.Client(base_url=server.base_url, timeout=TIMEOUT) as client,
        client.stream("POST", "/chat/completions", json=body) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data:"):  # skip ": ping" comments and blank separators
                data_lines.append(line[len("data:") :].strip())
    return data_lines


def test_chat_completion_streaming(llama_server: LlamaServer) -> None:
    data_lines = _stream_data_lines(llama_server, "Count to three.")
    assert data_lines, "no SSE data lines received"
    assert data_lines[-1] == "[DONE]"
    assert data_lines.count("[DONE]") == 1
    chunks = [json.loads(d) for d in data_lines[:-1]]
    assert chunks, "stream had a terminator but no chunks"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert isinstance(text, str)
    finish = [c["choices"][0].get("finish_reason") for c in chunks if c["choices"]]
    assert finish[-1] in ("stop", "length")


def test_concurrent_streams_are_not_truncated(llama_server: LlamaServer) -> None:
    # With llama-cpp-python's default --interrupt_requests true, the second request would
    # end the first stream early; LlamaServer turns that off so requests queue.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda i: _stream_data_lines(llama_server, f"req {i}"), [1, 2]))
    for data_lines in results:
        assert data_lines[-1] == "[DONE]"
        last = json.loads(data_lines[-2])
        assert last["choices"][0]["finish_reason"] in ("stop", "length")


def test_long_mixed_unicode_prompt(llama_server: LlamaServer) -> None:
    text = _mixed_unicode_text(900)
    with httpx2.Client(base_url=llama_server.root_url, timeout=TIMEOUT) as client:
        tok = client.post("/extras/tokenize", json={"input": text, "model": llama_server.model_id})
    assert tok.status_code == 200, tok.text
    n_tokens = len(tok.json()["tokens"])
    assert 1200 <= n_tokens <= 1800, n_tokens

    data = _chat(llama_server, text)
    assert isinstance(data["choices"][0]["message"]["content"], str)
    assert data["usage"]["prompt_tokens"] >= n_tokens  # plus chat-template overhead
    assert data["usage"]["prompt_tokens"] + MAX_TOKENS <= llama_server.n_ctx


def test_prompt_over_context_is_a_clean_error(llama_server: LlamaServer) -> None:
    text = _mixed_unicode_text(3000)  # ~5000 tokens > n_ctx 2048
    with httpx2.Client(base_url=llama_server.base_url, timeout=TIMEOUT) as client:
        resp = client.post("/chat/completions", json=_chat_body(llama_server.model_id, text))
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]  # OpenAI-shaped error body
    assert err["code"] == "context_length_exceeded"
    assert "context" in err["message"].lower()
    # ...and the server is still healthy afterwards.
    assert isinstance(_chat(llama_server, "still there?")["choices"][0]["message"]["content"], str)


def test_stop_and_restart(llama_server_factory: Callable[..., LlamaServer]) -> None:
    server = llama_server_factory()
    base_url = server.base_url
    _chat(server, "before")

    server.stop()
    assert not server.is_running()
    with (
        httpx2.Client(base_url=base_url, timeout=httpx2.Timeout(2.0)) as client,
        pytest.raises(httpx2.TransportError),
    ):
        client.get("/models")

    server.start()
    assert server.base_url == base_url  # same port after restart
    assert isinstance(_chat(server, "after")["choices"][0]["message"]["content"], str)
