"""A loopback HTTP server that answers with scripted raw bytes, for transport fault injection.

``FakeUpstream`` speaks the model APIs correctly; this one misbehaves on purpose
(streams without an end marker, connections dropped after the request was read,
a reader that stalls) and counts what it saw: requests, connections opened and
connections still open.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

#: Answers one request (head + body): raw bytes to write, or None to close at once.
Script = Callable[["Seen"], Awaitable[bytes | None]]


@dataclass
class Seen:
    """One request as received: the head's first line, headers, body, connection number."""

    line: str
    headers: dict[str, str]
    body: bytes
    connection: int


def sse(*events: bytes, done: bool = True) -> bytes:
    """A 200 chunked ``text/event-stream`` response with ``events`` (and ``[DONE]``)."""
    parts = [*events, *([b"data: [DONE]\n\n"] if done else [])]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + body
    )


def json_response(body: bytes, status: int = 200) -> bytes:
    """A kept-alive JSON response."""
    return (
        b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
        % (status, len(body))
        + body
    )


CHAT = (
    b'{"id":"c","object":"chat.completion","choices":[{"index":0,"finish_reason":"stop",'
    b'"message":{"role":"assistant","content":"ok"}}],'
    b'"usage":{"prompt_tokens":1,"completion_tokens":1}}'
)


@dataclass
class ScriptedServer:
    """Serve ``script`` on 127.0.0.1 (optionally TLS) from a thread. Use as a context manager."""

    script: Script
    tls: ssl.SSLContext | None = None
    requests: list[Seen] = field(default_factory=list)
    opened: int = 0
    open_now: int = 0
    hold_reads: threading.Event | None = None
    port: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def __enter__(self) -> ScriptedServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def main() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="scripted-server", daemon=True)
        self._thread.start()
        assert ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._server.wait_closed()
            for writer in list(self._writers):  # handlers see EOF and return
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            async with asyncio.timeout(5):
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def url(self, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}/v1"

    def wait_open(self, count: int, timeout: float = 10) -> bool:
        """Wait until exactly ``count`` connections are open (bounded)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.open_now == count, timeout)

    def _count(self, delta: int) -> None:
        with self._changed:
            self.open_now += delta
            if delta > 0:
                self.opened += 1
            self._changed.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._count(+1)
        self._writers.add(writer)
        number = self.opened
        try:
            while True:
                if self.hold_reads is not None:
                    await asyncio.to_thread(self.hold_reads.wait, 10)
                head = await reader.readuntil(b"\r\n\r\n")
                line, *rest = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (h.partition(":") for h in rest if h)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen = Seen(line, headers, body, number)
                self.requests.append(seen)
                answer = await self.script(seen)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            self._count(-1)
