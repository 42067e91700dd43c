"""The one HTTP/1.1 client every provider and the probe use: pooled, lean, asyncio + httptools.

Why a hand-written client: on the proxy's hot path the general-purpose clients cost
several times the CPU per request of everything else the proxy does (bench/README.md,
"One HTTP client"). This one sends a request on a kept-alive connection with a
single write and parses the answer with ``httptools`` (uvicorn's parser), over plain
TCP or TLS (``ssl``), with timeouts, a connection limit and flow control both ways.

What it owns: connections to one origin (a :class:`Pool` per destination and event
loop) and the rule that decides which address a connection goes to. A pool given a
``vet`` check resolves the host once, refuses unless every address passes, and
connects to that vetted address (Host header and TLS SNI keep the name): there is no
second look-up between check and connect, and a reused connection is re-vetted by
its peer address before each request.

What it must never do: send a request twice once any byte of it may have reached
the server (a dead kept-alive connection is detected *before* writing; anything
after the first write fails the attempt), follow redirects, read proxy settings
from the environment, or reuse a connection whose response was not read to the end.
It decides nothing about where a request goes; callers hold an egress ticket.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import select
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from typing import cast

import httptools

__all__ = [
    "ConnectError",
    "HTTPTransportError",
    "IPAddress",
    "LocalityError",
    "Pool",
    "ProtocolError",
    "StreamedResponse",
    "UpstreamTimeoutError",
    "Vet",
    "resolve",
    "tls_context",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Says whether an address may be connected to (None: any address may).
Vet = Callable[[IPAddress], bool]

_poll = getattr(select, "poll", None)

#: Buffered body chunks of a stream before the socket stops being read (backpressure).
_HIGH_WATER = 64
#: Headers that delimit a body; without either, the body ends when the connection does.
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


class HTTPTransportError(Exception):
    """The request failed below HTTP semantics (no usable status)."""


class ConnectError(HTTPTransportError):
    """No connection could be opened; nothing of the request was sent."""


class LocalityError(ConnectError):
    """The host resolved to an address the vet check refused; nothing was sent."""


class UpstreamTimeoutError(HTTPTransportError):
    """Connecting or waiting for (the next part of) the response took too long."""


class ProtocolError(HTTPTransportError):
    """The connection broke, or the peer sent something that is not HTTP/1.1."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's client TLS context: the system trust store, else ``certifi``'s."""
    context = ssl.create_default_context()
    if not context.cert_store_stats().get("x509_ca"):
        try:
            import certifi
        except ImportError:  # pragma: no cover - certifi ships with every install we make
            return context
        context.load_verify_locations(certifi.where())
    return context


async def resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (one DNS look-up; an IP literal is returned as is).

    Raises:
        ConnectError: the name does not resolve.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectError(f"cannot resolve {host} ({exc.strerror or exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Connection(asyncio.Protocol):
    """One TCP connection and the response currently being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.peer: IPAddress | None = None
        self.closed = False
        self.paused = False
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
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

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        while self._write_paused and not self.closed:
            self._drain = self._loop.create_future()
            try:
                await self._drain
            finally:
                self._drain = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

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

    def eof_received(self) -> bool:
        self.closed = True  # a half-closed connection is never reused
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.done and self.error is None:
            if self.headers_done and self._until_close:
                self.done = True  # a body delimited by the end of the connection
            else:
                self.error = ProtocolError(
                    "the server closed the connection" + (" mid-response" if self.received else "")
                )
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

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

    @property
    def usable(self) -> bool:
        """Idle and still open: nothing says the server has closed it."""
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def quiet(self) -> bool:
        """Nothing is waiting on the idle socket: no FIN, no stray bytes not yet read.

        A server may answer and close at once without ``connection: close``; the
        loop reads that FIN an iteration after the answer, so without this look
        (one non-blocking ``poll``) the next request would be written into a
        closing connection, and it must then fail rather than be sent again.
        """
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return True
        try:
            fd = sock.fileno()
        except OSError:
            return False
        if fd < 0:
            return False
        if _poll is None:  # pragma: no cover - Windows
            readable, _, _ = select.select([fd], [], [], 0)
            return not readable
        poller = _poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)

    def take_chunks(self) -> bytes:
        """Everything of the body received so far (and resume reading if paused)."""
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        """Close the socket now (an unfinished response makes a connection unusable).

        ``close()`` alone may leave the socket open for a while: a TLS transport waits
        for the server's ``close_notify`` (up to 30 s) and a plain one for its write
        buffer to drain. A loop that ends meanwhile drops it unclosed (a
        ``ResourceWarning`` at some later GC). So ``close()`` (which still sends our
        ``close_notify`` when it can) is followed by ``abort()``: the socket is closed
        on the loop's next iteration, whatever the peer does.
        """
        self.closed = True
        transport = self.transport
        if transport is not None:
            transport.close()
            transport.abort()


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
    """Kept-alive connections to one origin on the running event loop.

    Args:
        host: Host name or IP literal of the origin (also the TLS server name).
        port: TCP port.
        connect_timeout: Seconds to resolve and open a connection (TLS handshake included).
        tls: Speak TLS (``https://``).
        max_connections: Connections open at once; further requests wait for one.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float,
        tls: bool = False,
        max_connections: int = 256,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False
        self.opened = 0  # connections opened over the pool's life (tests, metrics)

    async def _connect(self, vet: Vet | None) -> _Connection:
        loop = asyncio.get_running_loop()
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                addresses = await resolve(self.host, self.port)
                if not addresses:
                    raise ConnectError(f"{self.host} resolved to no address")
                peers = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
                if vet is not None:
                    refused = [str(p) for p, a in zip(peers, addresses, strict=True) if not vet(p)]
                    if refused:
                        raise LocalityError(
                            f"{self.host} resolves to {', '.join(refused)}, which is not local; "
                            "refusing to connect"
                        )
                last: OSError | None = None
                for address, peer in zip(addresses, peers, strict=True):
                    try:
                        _, protocol = await loop.create_connection(
                            lambda: _Connection(loop),
                            address,
                            self.port,
                            ssl=tls_context() if self.tls else None,
                            server_hostname=self.host if self.tls else None,
                        )
                    except OSError as exc:
                        last = exc
                        continue
                    protocol.peer = peer
                    self.opened += 1
                    return protocol
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"connecting to {where} took over {self._connect_timeout:g}s"
            ) from None
        assert last is not None
        detail = last.strerror or type(last).__name__
        if isinstance(last, ssl.SSLError):
            detail = f"TLS: {last.reason or last}"
        raise ConnectError(f"cannot connect to {where} ({detail})")

    def _idle_connection(self, vet: Vet | None) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.usable or conn.received or not conn.quiet():  # closed, or bytes (a 408,
                conn.close()  # a FIN) arrived while idle
            elif vet is not None and (conn.peer is None or not vet(conn.peer)):
                conn.close()  # the trust changed since it was opened
            else:
                return conn
        return None

    async def send(
        self, request: bytes, *, read_timeout: float, vet: Vet | None = None
    ) -> StreamedResponse:
        """Write ``request`` (head and body) and wait for the response head.

        A kept-alive connection is used only if nothing says the server closed it;
        once the write has started, any failure fails the request: it is never
        sent a second time, since the server may already have acted on it.

        Args:
            request: The whole request, head and body.
            read_timeout: Seconds to wait for the head (and then for each body part).
            vet: When given, every address the host resolves to (and a reused
                connection's peer) must pass it, or nothing is sent.

        Raises:
            ConnectError, LocalityError, UpstreamTimeoutError, ProtocolError: see the classes.
        """
        if self._closed:
            raise ConnectError("the connection pool is closed")
        await self._slots.acquire()
        try:
            conn = self._idle_connection(vet) or await self._connect(vet)
            try:
                return await self._exchange(conn, request, read_timeout)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(
        self, conn: _Connection, request: bytes, read_timeout: float
    ) -> StreamedResponse:
        assert conn.transport is not None
        try:
            async with asyncio.timeout(read_timeout):
                conn.transport.write(request)
                await conn.drain()  # flow control: a slow reader pauses us here
                while not conn.headers_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.progress()
        except TimeoutError:
            raise UpstreamTimeoutError(f"no response within {read_timeout:g}s") from None
        return StreamedResponse(self, conn, read_timeout)

    async def request(
        self, request: bytes, *, read_timeout: float, vet: Vet | None = None
    ) -> tuple[int, bytes]:
        """Send ``request`` and read the whole response: ``(status, body)``.

        Raises:
            ConnectError, LocalityError, UpstreamTimeoutError, ProtocolError: see the classes.
        """
        response = await self.send(request, read_timeout=read_timeout, vet=vet)
        try:
            body = await response.read()
        finally:
            await response.aclose()
        return response.status, body

    def release(self, conn: _Connection) -> None:
        """Take a connection back (called once per :meth:`send`)."""
        self._slots.release()
        if conn.done and conn.keep_alive and conn.usable and not self._closed:
            conn._prepare()
            self._idle.append(conn)
        else:
            conn.close()

    @property
    def idle(self) -> int:
        """Kept-alive connections waiting for a request."""
        return len(self._idle)

    def close(self) -> None:
        """Close idle connections; connections in use close when released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
