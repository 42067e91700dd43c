"""The one HTTP client, through the one OpenAI-compatible provider, against scripted servers."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from llm_localfirst.providers import client
from llm_localfirst.providers.base import AttemptFailed, egress_guard
from llm_localfirst.providers.client import tls_context
from llm_localfirst.providers.openai_compat import OpenAICompatProvider
from llm_localfirst.registry import Destination
from tests.providers.scripted import CHAT, ScriptedServer, Seen, json_response, sse

BODY = {"messages": [{"role": "user", "content": "hi"}]}


def destination(url: str, *, local: bool = True, timeout: float = 5.0) -> Destination:
    return Destination(
        name="d",
        provider="openai",
        model="m",
        base_url=url,
        locality="local" if local else "cloud",
        timeout=timeout,
        connect_timeout=2.0,
    )


async def answer_chat(seen: Seen) -> bytes:
    return json_response(CHAT)


def test_a_post_is_never_sent_twice_when_a_reused_connection_dies_after_the_write() -> None:
    async def script(seen: Seen) -> bytes | None:
        # The second request is read (the server may act on it), then the connection drops.
        return json_response(CHAT) if len(server.requests) == 1 else None

    with ScriptedServer(script) as server:
        provider = OpenAICompatProvider(destination(server.url()))
        ticket = egress_guard(provider.destination, sensitive=False)

        async def main() -> str:
            with anyio.fail_after(10):
                await provider.chat(ticket, BODY)
                with pytest.raises(AttemptFailed) as failed:
                    await provider.chat(ticket, BODY)
                await provider.aclose()
            return failed.value.outcome

        assert asyncio.run(main()) == "connect_error"
        assert len(server.requests) == 2  # never re-sent on a new connection
        assert server.opened == 1


def test_writes_wait_while_the_server_is_not_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    paused: list[asyncio.Event] = []
    pause_writing = client._Connection.pause_writing

    def record(self: client._Connection) -> None:
        pause_writing(self)
        for event in paused:
            event.set()

    monkeypatch.setattr(client._Connection, "pause_writing", record)
    held = threading.Event()
    with ScriptedServer(answer_chat, hold_reads=held) as server:
        provider = OpenAICompatProvider(destination(server.url(), timeout=20))
        ticket = egress_guard(provider.destination, sensitive=False)
        big = {"messages": [{"role": "user", "content": "x" * (8 << 20)}]}

        async def main() -> str:
            paused.append(asyncio.Event())
            with anyio.fail_after(20):
                task = asyncio.create_task(provider.chat(ticket, big))
                await paused[0].wait()  # the transport pushed back: the client waits
                assert not task.done()
                held.set()
                result = await task
                await provider.aclose()
                return result.text

        assert asyncio.run(main()) == "ok"
        assert len(server.requests[0].body) > 8 << 20


def test_each_event_loop_gets_a_pool_that_closes_with_the_loop() -> None:
    with ScriptedServer(answer_chat) as server:
        provider = OpenAICompatProvider(destination(server.url()))
        ticket = egress_guard(provider.destination, sensitive=False)

        async def one() -> str:
            with anyio.fail_after(10):
                return (await provider.chat(ticket, BODY)).text

        for _ in range(5):
            assert asyncio.run(one()) == "ok"
            assert server.wait_open(0), "the loop's connection was left open"
        assert server.opened == 5
        assert provider._pools.values() == []


def test_a_stream_that_just_stops_is_a_failure_not_a_short_answer() -> None:
    chunk = b'data: {"choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}\n\n'

    async def script(seen: Seen) -> bytes:
        return sse(chunk, done=False)

    with ScriptedServer(script) as server:
        provider = OpenAICompatProvider(destination(server.url()))
        ticket = egress_guard(provider.destination, sensitive=False)

        got: list[object] = []

        async def consume() -> None:
            async for chunk in provider.stream_chat(ticket, BODY):
                got.append(chunk)

        async def main() -> tuple[int, str]:
            with anyio.fail_after(10), pytest.raises(AttemptFailed) as failed:
                await consume()
            await provider.aclose()
            return len(got), failed.value.outcome

        assert asyncio.run(main()) == (1, "incomplete_stream")


@pytest.mark.parametrize(
    "events",
    [
        [b"data: not json\n\n"],
        [b": only a comment\n\n"],
        [],
    ],
)
def test_a_200_stream_without_a_parseable_chunk_fails_before_the_first_chunk(
    events: list[bytes],
) -> None:
    async def script(seen: Seen) -> bytes:
        return sse(*events)

    with ScriptedServer(script) as server:
        provider = OpenAICompatProvider(destination(server.url()))
        ticket = egress_guard(provider.destination, sensitive=False)

        async def main() -> str:
            iterator = provider.stream_chat(ticket, BODY).__aiter__()
            with anyio.fail_after(10), pytest.raises(AttemptFailed) as failed:
                await iterator.__anext__()
            await provider.aclose()
            return failed.value.outcome

        assert asyncio.run(main()) == "error"


def test_streams_are_read_by_the_spec_parser_crlf_multiline_and_error_events() -> None:
    events = [
        b": keep-alive\r\n\r\n",
        b'event: message\r\ndata: {"choices":[{"index":0,\r\ndata: "delta":{"content":"a"},'
        b'"finish_reason":null}]}\r\nid: 1\r\nretry: 5\r\n\r\n',
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\n\r\n',
    ]

    async def script(seen: Seen) -> bytes:
        if "error" in seen.body.decode():
            return sse(b'event: error\ndata: {"error":{"message":"overloaded"}}\n\n', done=False)
        return sse(*events)

    with ScriptedServer(script) as server:
        provider = OpenAICompatProvider(destination(server.url()))
        ticket = egress_guard(provider.destination, sensitive=False)

        async def main() -> tuple[list[str | None], str]:
            with anyio.fail_after(10):
                chunks = [c async for c in provider.stream_chat(ticket, BODY)]
                with pytest.raises(AttemptFailed, match="overloaded") as failed:
                    async for _ in provider.stream_chat(ticket, {"messages": [], "x": "error"}):
                        pass
            await provider.aclose()
            return [c["choices"][0]["finish_reason"] for c in chunks], failed.value.outcome

        assert asyncio.run(main()) == ([None, "stop"], "error")


# ---------------------------------------------------------------------------------- TLS


@pytest.fixture
def certificate(tmp_path: Path) -> Iterator[tuple[ssl.SSLContext, Path]]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    tls_context.cache_clear()
    yield server, cert_path
    tls_context.cache_clear()


def test_https_destinations_speak_tls_with_the_name_as_sni_and_verify_the_certificate(
    certificate: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server_tls, cert_path = certificate
    with ScriptedServer(answer_chat, tls=server_tls) as server:
        provider = OpenAICompatProvider(destination(server.url("localhost")))
        ticket = egress_guard(provider.destination, sensitive=False)

        async def chat() -> str:
            with anyio.fail_after(10):
                try:
                    return (await provider.chat(ticket, BODY)).text
                finally:
                    await provider.aclose()

        with pytest.raises(AttemptFailed, match="TLS") as untrusted:
            asyncio.run(chat())
        assert untrusted.value.outcome == "connect_error" and server.requests == []

        monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
        tls_context.cache_clear()
        assert asyncio.run(chat()) == "ok"
        assert server.requests[0].headers["host"] == f"localhost:{server.port}"


def test_a_server_that_closes_after_each_answer_unannounced_never_gets_a_request_twice() -> None:
    async def script(seen: Seen) -> bytes | None:
        return None  # unused: the handler below answers, then closes unannounced

    class ClosingServer(ScriptedServer):
        async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._count(+1)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                self.requests.append(Seen(head.decode().split("\r\n")[0], {}, b"", 0))
                writer.write(json_response(CHAT))  # no "connection: close", then a FIN
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()
                self._count(-1)

    with ClosingServer(script) as server:
        provider = OpenAICompatProvider(destination(server.url()))
        ticket = egress_guard(provider.destination, sensitive=False)

        async def main() -> tuple[int, set[str]]:
            answered, failures = 0, set()
            with anyio.fail_after(30):
                for _ in range(40):
                    try:
                        await provider.chat(ticket, BODY)
                        answered += 1
                    except AttemptFailed as failed:  # written into a closing connection
                        failures.add(failed.outcome)
            await provider.aclose()
            return answered, failures

        answered, failures = asyncio.run(main())
        # The FIN already in is seen before writing (no failure then); one that lands
        # after the write fails that attempt. Either way nothing is sent twice.
        assert answered > 0 and failures <= {"connect_error"}
        assert len(server.requests) == answered
