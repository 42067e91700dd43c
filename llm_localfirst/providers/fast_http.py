"""A lean pooled HTTP/1.1 client for plain-HTTP upstreams (local model servers), on asyncio.

Why it exists: on the proxy's hot path the general-purpose client cost about a
millisecond of CPU per call on the reference machine, several times everything
else the proxy does (see README, "Performance"). This client does one thing: send a
request on a kept-alive connection with a single write and parse the answer with
``httptools`` (the parser uvicorn uses), with timeouts and a connection limit.

What it owns: connections to one ``host:port`` (a :class:`Pool` per destination
and event loop). What it must never do: speak TLS (``https://`` destinations use
the regular providers), follow redirects, read proxy settings from the
environment, or reuse a connection whose response was not read to the end.
It decides nothing about where a request goes; callers hold an egress ticket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import httptools

__all__ = ["ConnectError", "HTTPTransportError", "Pool", "ProtocolError", "StreamedResponse",
           "UpstreamTimeoutError"]

#: Buffered body chunks of a stream before the socket stops being read (backpressure).
_HIGH_WATER = 64
#: Headers that delimit a body; without either, the body ends when the connection does.
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


class HTTPTransportError(Exception):
    """The request failed below HTTP semantics (no usable status)."""


class ConnectError(HTTPTransportError):
    """No connection could be opened."""


class UpstreamTimeoutError(HTTPTransportError):
    """Connecting or waiting for (the next part of) the response took too long."""


class ProtocolError(HTTPTransportError):
    """The connection broke, or the peer sent something that is not HTTP/1.1."""


class _Connection(asyncio.Protocol):
    """One TCP connection and the response currently being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.paused = False
        self._prepare()

    def _prepare(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.headers_done = False
        self.done = False
        self.keep_alive = True
        self.received = False
        self.error: HTTPTransportError | None = None
        self._until_close = True  # until a content-length or transfer-encoding header says not
        self._waiter: asyncio.Future[None] | None = None

    # -- waiting

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def progress(self) -> None:
        """Wait until more of the response arrived, it ended, or the connection failed."""
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = ProtocolError(f"invalid HTTP response ({type(exc).__name__})")
            self.close()
        if len(self.chunks) > _HIGH_WATER and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.done and self.error is None:
            if self.headers_done and self._until_close:
                self.done = True  # a body delimited by the end of the connection
            else:
                self.error = ProtocolError("the server closed the connection"
                                             + (" mid-response" if self.received else ""))
        self._wake()

    # -- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _FRAMING:
            self._until_close = False
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True

    # -- use

    def take_chunks(self) -> bytes:
        """Everything of the body received so far (and resume reading if paused)."""
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        """Close the socket (an unfinished response makes a connection unusable)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class StreamedResponse:
    """A response whose body is read as it arrives. Close it (or read it to the end).

    Attributes:
        status: The HTTP status.
        headers: Lower-cased header names and raw values.
    """

    def __init__(self, pool: Pool, conn: _Connection, timeout: float) -> None:
        self._pool = pool
        self._conn = conn
        self._timeout = timeout
        self.status = conn.status
        self.headers = conn.headers
        self._released = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (chunked encoding already removed).

        Raises:
            UpstreamTimeoutError: nothing arrived for ``timeout`` seconds.
            ProtocolError: the connection broke before the body ended.
        """
        conn = self._conn
        while True:
            if conn.chunks:
                yield conn.take_chunks()
                continue
            if conn.done:
                self._release()
                return
            if conn.error is not None:
                raise conn.error
            try:
                async with asyncio.timeout(self._timeout):
                    await conn.progress()
            except TimeoutError:
                raise UpstreamTimeoutError(f"no data for {self._timeout:g}s") from None

    async def read(self) -> bytes:
        """The whole remaining body.

        Raises:
            UpstreamTimeoutError: nothing arrived for ``timeout`` seconds.
            ProtocolError: the connection broke before the body ended.
        """
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._pool.release(self._conn)

    async def aclose(self) -> None:
        """Give the connection back: reused when the response was complete, else closed."""
        if self._released:
            return
        if not self._conn.done:
            self._conn.close()
        self._release()


class Pool:
    """Kept-alive connections to one ``host:port`` on the running event loop.

    Args:
        host: Host to connect to.
        port: TCP port.
        connect_timeout: Seconds to open a connection.
        max_connections: Connections open at once; further requests wait for one.
    """

    def __init__(self, host: str, port: int, *, connect_timeout: float,
                 max_connections: int = 256) -> None:
        self.host = host
        self.port = port
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(loop), self.host, self.port)
        except TimeoutError:
            raise UpstreamTimeoutError(f"connecting to {self.host}:{self.port} took over "
                          f"{self._connect_timeout:g}s") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.host}:{self.port} "
                                f"({exc.strerror or type(exc).__name__})") from None
        return protocol

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        return None

    async def send(self, request: bytes, *, read_timeout: float) -> StreamedResponse:
        """Write ``request`` (head and body, one write) and wait for the response head.

        A kept-alive connection that the server closed while idle is retried once
        on a new connection, since the server cannot have seen the request.

        Raises:
            ConnectError, UpstreamTimeoutError, ProtocolError: see the classes.
        """
        if self._closed:
            raise ConnectError("the connection pool is closed")
        await self._slots.acquire()
        try:
            conn = self._idle_connection()
            for attempt in (0, 1):
                reused = conn is not None
                if conn is None:
                    conn = await self._connect()
                try:
                    return await self._exchange(conn, request, read_timeout)
                except ProtocolError:
                    conn.close()
                    if not (reused and not conn.received and attempt == 0):
                        raise
                    conn = None
                except BaseException:
                    conn.close()
                    raise
            raise AssertionError("unreachable")  # pragma: no cover
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(self, conn: _Connection, request: bytes,
                        read_timeout: float) -> StreamedResponse:
        assert conn.transport is not None
        conn.transport.write(request)
        try:
            async with asyncio.timeout(read_timeout):
                while not conn.headers_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.progress()
        except TimeoutError:
            raise UpstreamTimeoutError(f"no response within {read_timeout:g}s") from None
        return StreamedResponse(self, conn, read_timeout)

    async def request(self, request: bytes, *, read_timeout: float) -> tuple[int, bytes]:
        """Send ``request`` and read the whole response: ``(status, body)``.

        Raises:
            ConnectError, UpstreamTimeoutError, ProtocolError: see the classes.
        """
        response = await self.send(request, read_timeout=read_timeout)
        try:
            body = await response.read()
        finally:
            await response.aclose()
        return response.status, body

    def release(self, conn: _Connection) -> None:
        """Take a connection back (called once per :meth:`send`)."""
        self._slots.release()
        if conn.done and conn.keep_alive and not conn.closed and not self._closed:
            conn._prepare()
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Close idle connections; connections in use close when released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
