"""A fake model server on loopback, for tests, examples (``--offline``) and fault injection.

It speaks enough of the OpenAI HTTP API (``/v1/models``, ``/v1/chat/completions``
with and without streaming, ``/v1/completions``, ``/v1/embeddings``,
``/v1/responses``) and of Anthropic's Messages API (``/v1/messages``) for the
router to talk to it exactly as it talks to a real server. It is a fake: the
"model" echoes a deterministic reply. Every request is counted and its body kept,
so tests can prove that nothing reached a destination. Faults can be switched
at any time: ``status`` (500, 429, 400...), ``hang`` (never answers),
``refuse`` (stops listening), ``break_stream_after`` (drops the connection
mid-stream). Binds 127.0.0.1 only; stdlib only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeUpstream"]


@dataclass
class _Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstream:
    """A loopback OpenAI/Anthropic-compatible fake. Use as a context manager.

    Attributes:
        reply: Text the fake model answers (default: ``"echo: <last user text>"``, truncated),
            or a function of the request body returning that text (scripted answers).
        status: HTTP status to answer every model call with (200 = healthy).
        hang: When true, model calls never answer (exercises timeouts).
        break_stream_after: Drop the connection after this many streamed chunks.
        chunk_count: Chunks per streamed answer.
        delay: Seconds to wait before answering a model call.
    """

    reply: str | Callable[[dict[str, Any]], str] | None = None
    status: int = 200
    hang: bool = False
    break_stream_after: int | None = None
    chunk_count: int = 4
    delay: float = 0.0
    requests: list[_Seen] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeUpstream:
        """Start serving on 127.0.0.1 (a free port the first time, the same port after)."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def main() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    def stop(self) -> None:
        """Stop listening and close every connection (a "down" destination)."""
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or server is None or thread is None:
            return

        async def shutdown() -> None:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        self._loop = self._server = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """Base URL without ``/v1`` (what the Anthropic SDK expects)."""
        return f"http://127.0.0.1:{self.port}"

    def model_calls(self) -> list[_Seen]:
        """Requests that would have reached a model (everything but ``GET /v1/models``)."""
        with self._lock:
            return [r for r in self.requests if not r.path.endswith("/models")]

    def reset(self) -> None:
        """Forget seen requests and clear every fault."""
        with self._lock:
            self.requests.clear()
        self.status, self.hang, self.break_stream_after, self.delay = 200, False, None, 0.0

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)
                }
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                body: Any = json.loads(raw) if raw else None
                with self._lock:
                    self.requests.append(_Seen(path, headers, body))
                keep = await self._route(method, path.split("?")[0], body, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    def _send(writer: asyncio.StreamWriter, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n\r\n".encode()
            + data
        )

    async def _route(self, method: str, path: str, body: Any, writer: asyncio.StreamWriter) -> bool:
        if method == "GET" and path.endswith("/models"):
            self._send(
                writer,
                200,
                {
                    "object": "list",
                    "data": [{"id": "fake-model", "object": "model", "owned_by": "fake"}],
                },
            )
            await writer.drain()
            return True
        if self.hang:
            await asyncio.sleep(3600)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            self._send(
                writer,
                self.status,
                {
                    "error": {
                        "message": f"fake upstream answers {self.status}",
                        "type": "fake_error",
                        "code": str(self.status),
                    }
                },
            )
            await writer.drain()
            return True
        body = body if isinstance(body, dict) else {}
        text = self._reply_text(body)
        model = str(body.get("model", "fake-model"))
        if path.endswith("/messages"):
            return await self._anthropic(body, text, model, writer)
        if path.endswith("/embeddings"):
            inputs = body.get("input")
            n = len(inputs) if isinstance(inputs, list) else 1
            self._send(
                writer,
                200,
                {
                    "object": "list",
                    "model": model,
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                        for i in range(n)
                    ],
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                },
            )
        elif path.endswith("/completions") and not path.endswith("/chat/completions"):
            self._send(
                writer,
                200,
                {
                    "id": "cmpl-fake",
                    "object": "text_completion",
                    "model": model,
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                    "usage": _usage(body, text),
                },
            )
        elif path.endswith("/responses"):
            self._send(
                writer,
                200,
                {
                    "id": "resp-fake",
                    "object": "response",
                    "model": model,
                    "output": [
                        {
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": text}],
                        }
                    ],
                },
            )
        elif body.get("stream"):
            return await self._stream_openai(text, model, body, writer)
        else:
            self._send(
                writer,
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": _usage(body, text),
                },
            )
        await writer.drain()
        return True

    def _reply_text(self, body: dict[str, Any]) -> str:
        if callable(self.reply):
            return self.reply(body)
        if self.reply is not None:
            return self.reply
        last = ""
        for message in body.get("messages") or []:
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                last = content if isinstance(content, str) else json.dumps(content)
        return "echo: " + (last or str(body.get("prompt", body.get("input", ""))))[:200]

    def _pieces(self, text: str) -> list[str]:
        n = max(1, self.chunk_count)
        size = max(1, -(-len(text) // n))
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]

    async def _stream_openai(
        self, text: str, model: str, body: dict[str, Any], writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        events = [
            {
                **base,
                "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
            }
        ]
        events += [
            {**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            for p in self._pieces(text)
        ]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        events.append({**base, "choices": [], "usage": _usage(body, text)})
        for i, event in enumerate(events):
            if self.break_stream_after is not None and i >= self.break_stream_after:
                await writer.drain()
                writer.transport.abort()
                return False
            _chunk(writer, b"data: " + json.dumps(event).encode() + b"\n\n")
            await writer.drain()
        _chunk(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _anthropic(
        self, body: dict[str, Any], text: str, model: str, writer: asyncio.StreamWriter
    ) -> bool:
        usage = {
            "input_tokens": _usage(body, text)["prompt_tokens"],
            "output_tokens": max(1, len(text) // 4),
        }
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            self._send(writer, 200, message)
            await writer.drain()
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 0},
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ]
        events += [
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                },
            )
            for p in self._pieces(text)
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        for i, (name, event) in enumerate(events):
            if self.break_stream_after is not None and i >= self.break_stream_after:
                await writer.drain()
                writer.transport.abort()
                return False
            _chunk(writer, f"event: {name}\ndata: {json.dumps(event)}\n\n".encode())
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
    prompt = sum(len(json.dumps(m)) for m in body.get("messages") or []) // 4 or 1
    completion = max(1, len(text) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
