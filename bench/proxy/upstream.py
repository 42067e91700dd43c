"""A fast fake OpenAI-compatible upstream for the proxy benchmark.

A raw ASGI app (no framework) served by uvicorn with uvloop and httptools, so the
upstream costs as little as possible and the "direct" row of the benchmark is the
physical limit of this machine. Every answer is precomputed bytes:

- ``GET /v1/models``: one model, ``bench-local``;
- ``POST /v1/chat/completions``: a fixed chat completion, or, when the body asks for
  ``"stream": true``, an SSE stream of a few chunks and ``data: [DONE]``.

The body is read completely (as a real server must) but not parsed: the stream flag
is found with one regex over the bytes. Binds 127.0.0.1 only.

Run: ``python bench/proxy/upstream.py --port 18001``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MODEL = "bench-local"
REPLY = "The quick brown fox jumps over the lazy dog."
STREAM_RE = re.compile(rb'"stream"\s*:\s*true')

_created = int(time.time())
_completion = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": _created,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": REPLY},
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22},
    },
    separators=(",", ":"),
).encode()


def _event(delta: dict[str, str], finish: str | None) -> bytes:
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": _created,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


_words = REPLY.split(" ")
_stream_events: list[bytes] = [_event({"role": "assistant", "content": ""}, None)]
_stream_events += [
    _event({"content": w if i == 0 else " " + w}, None) for i, w in enumerate(_words[:4])
]
_stream_events += [
    _event({"content": " " + " ".join(_words[4:])}, None),
    _event({}, "stop"),
    b"data: [DONE]\n\n",
]

_models = json.dumps(
    {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": _created, "owned_by": "bench"}],
    }
).encode()
_not_found = b'{"error":{"message":"not found","type":"invalid_request_error"}}'

_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _reply(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if method == "POST" and path.endswith("/chat/completions"):
        body = await _body(receive)
        if STREAM_RE.search(body) is None:
            await _reply(send, 200, _completion)
            return
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        for event in _stream_events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if method == "GET" and path.endswith("/models"):
        await _reply(send, 200, _models)
        return
    await _body(receive)
    await _reply(send, 404, _not_found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18001)
    args = parser.parse_args()

    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
