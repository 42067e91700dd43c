"""Bad input: every refusal answers in OpenAI's error shape, sends nothing, and is audited.

Also the client that goes away: before its body arrives, and mid-stream (the
upstream request must be cancelled and the audit row still written).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream
from tests.server.conftest import LiveProxy

CHAT = "/v1/chat/completions"


def post(proxy: LiveProxy, path: str = CHAT, **kwargs: Any) -> httpx2.Response:
    if "content" in kwargs:  # raw bodies are still declared JSON (anything else is a 415)
        kwargs["headers"] = {"content-type": "application/json", **kwargs.get("headers", {})}
    with proxy.client() as client:
        return client.post(path, **kwargs)


def assert_refused(proxy: LiveProxy, response: httpx2.Response, status: int, **error: Any) -> None:
    """The OpenAI error shape, nothing sent upstream, exactly one audit row naming the id."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    for key, value in error.items():
        assert body["error"][key] == value, body
    assert not proxy.local.model_calls() and not proxy.cloud.model_calls()
    (row,) = proxy.rows()
    assert row.outcome in ("error", "refused") and row.face == "proxy"
    assert response.headers["x-lf-decision-id"] == row.id


def test_malformed_json(proxy: LiveProxy) -> None:
    response = post(
        proxy,
        content=b'{"model": "auto", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert_refused(proxy, response, 400, type="invalid_request_error", code="invalid_request")
    assert "not valid JSON" in response.json()["error"]["message"]


def test_invalid_utf8(proxy: LiveProxy) -> None:
    response = post(
        proxy, content=b'{"model": "auto", "messages": [{"role": "user", "content": "caf\xe9"}]}'
    )
    assert_refused(proxy, response, 400)
    assert "UTF-8" in response.json()["error"]["message"]


@pytest.mark.parametrize("raw", [b"", b"[]", b'"text"', b"null"])
def test_a_body_that_is_not_an_object(proxy: LiveProxy, raw: bytes) -> None:
    assert_refused(proxy, post(proxy, content=raw), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": ["hello"]}, "messages[0]"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
        ({"model": 7, "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"stream": "yes", "messages": [{"role": "user", "content": "hi"}]}, "stream"),
        ({"max_tokens": -1, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({"temperature": "hot", "messages": [{"role": "user", "content": "hi"}]}, "temperature"),
        ({"user": 12, "messages": [{"role": "user", "content": "hi"}]}, "user"),
    ],
)
def test_missing_fields_and_wrong_types_name_the_parameter(
    proxy: LiveProxy, body: dict[str, Any], param: str
) -> None:
    assert_refused(proxy, post(proxy, json=body), 400, param=param)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/embeddings", {"model": "auto"}, "input"),
        ("/v1/embeddings", {"input": [1.5, 2.5]}, "input"),
        ("/v1/completions", {"model": "auto"}, "prompt"),
        ("/v1/completions", {"prompt": {"a": 1}}, "prompt"),
        ("/v1/responses", {"model": "auto"}, "input"),
        ("/v1/responses", {"input": "hi", "stream": True}, "stream"),
    ],
)
def test_other_endpoints_validate_their_bodies(
    proxy: LiveProxy, path: str, body: dict[str, Any], param: str
) -> None:
    assert_refused(proxy, post(proxy, path, json=body), 400, param=param)


@pytest.mark.parametrize(
    "model",
    ["gpt-unknown", "http://169.254.169.254/latest", "https://evil.example/v1", "/etc/passwd"],
)
def test_unknown_and_url_shaped_models_are_404_and_nothing_is_contacted(
    proxy: LiveProxy, model: str
) -> None:
    response = post(proxy, json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert_refused(proxy, response, 404, code="model_not_found", param="model")
    if "/" in model:
        assert "URLs are never accepted" in response.json()["error"]["message"]
    assert proxy.rows()[0].error_class == "ModelNotAllowed"


def test_a_body_over_the_limit_is_413_by_content_length(proxy_factory: Any) -> None:
    proxy = proxy_factory(max_body_bytes=2048)
    body = {"messages": [{"role": "user", "content": "x" * 4000}]}
    response = post(proxy, json=body)
    assert_refused(proxy, response, 413, code="request_too_large")
    assert proxy.rows()[0].error_class == "BodyTooLarge"


def test_a_chunked_body_over_the_limit_is_413_by_counting(proxy_factory: Any) -> None:
    proxy = proxy_factory(max_body_bytes=2048)

    def chunks() -> Iterator[bytes]:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 512
        yield b'"}]}'

    response = post(proxy, content=chunks())  # no content-length: transfer-encoding chunked
    assert_refused(proxy, response, 413, code="request_too_large")


def test_a_body_under_the_limit_passes(proxy_factory: Any) -> None:
    proxy = proxy_factory(max_body_bytes=2048)
    assert post(proxy, json={"messages": [{"role": "user", "content": "ok"}]}).status_code == 200


@pytest.mark.parametrize(
    ("headers", "param"),
    [
        ({"x-lf-tags": '=HYPERLINK("http://x")'}, "x-lf-tags"),
        ({"x-lf-tags": "<script>alert(1)</script>"}, "x-lf-tags"),
        ({"x-lf-tags": ",".join(f"t{i}" for i in range(40))}, "x-lf-tags"),
        ({"x-lf-kind": "urgent"}, "x-lf-kind"),
        ({"x-lf-ab-key": "k" * 300}, "x-lf-ab-key"),
    ],
)
def test_malformed_routing_headers_are_refused(
    proxy: LiveProxy, headers: dict[str, str], param: str
) -> None:
    response = post(proxy, json={"messages": [{"role": "user", "content": "hi"}]}, headers=headers)
    assert_refused(proxy, response, 400, param=param)


def raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send raw bytes and read the answer until the server closes or 5 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head + body)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and b"content-length" in data.lower():
                    head_part, _, rest = data.partition(b"\r\n\r\n")
                    length = int(head_part.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    if len(rest) >= length:
                        break
        except TimeoutError:
            pass
    return data


@pytest.mark.parametrize(
    "injected",
    [
        b"x-lf-tags: a\rx-lf-sensitive: false\r\n",  # bare CR inside a value
        b"x-lf-tags: a\nx-lf-kind: reason\r\n",  # bare LF inside a value
        b"x-lf-tags: a\r\n x-lf-kind: reason\r\n",  # obsolete line folding
        b"x-lf-ab-key: a\x00b\r\n",  # NUL in a value
    ],
)
def test_header_injection_never_reaches_routing_or_upstream(
    proxy: LiveProxy, injected: bytes
) -> None:
    body = b'{"messages": [{"role": "user", "content": "hi"}]}'
    port = int(proxy.url.rsplit(":", 1)[1])
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\n"
        b"content-type: application/json\r\n"
        + injected
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    answer = raw_request(port, head, body)
    status = int(answer.split(b" ", 2)[1]) if answer else 400
    # Either the HTTP parser refuses the request outright (it never reaches the app, so
    # no audit row can exist) or the app refuses the malformed header (and audits it).
    assert status == 400
    assert not proxy.local.model_calls() and not proxy.cloud.model_calls()
    assert all(r.outcome == "error" for r in proxy.rows())


def test_response_headers_never_echo_client_header_values(proxy: LiveProxy) -> None:
    response = post(
        proxy,
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"x-lf-ab-key": "echo-me", "x-lf-tags": "echo-tag"},
    )
    assert response.status_code == 200
    assert not any("echo-" in v for v in response.headers.values())


def test_unknown_paths_and_methods_answer_in_the_error_shape(proxy: LiveProxy) -> None:
    with proxy.client() as client:
        missing = client.post("/v1/nothing", json={})
        wrong = client.get(CHAT)
        outside = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert outside.status_code == 404 and "error" in outside.json()
    assert not proxy.rows()  # no model request was made


def test_a_client_that_leaves_before_its_body_arrives_is_audited(proxy: LiveProxy) -> None:
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\n"
            b"content-type: application/json\r\n"
            b'content-length: 1000\r\n\r\n{"messages": ['
        )
    proxy.router.flush(10)
    with AuditRowsArrive(proxy) as rows:
        (row,) = rows
    assert (row.outcome, row.error_class) == ("error", "ClientDisconnected")


class AuditRowsArrive:
    """Wait (bounded, event-driven through the audit listener) for the first audit row."""

    def __init__(self, proxy: LiveProxy, count: int = 1, timeout: float = 10) -> None:
        self.proxy, self.count, self.timeout = proxy, count, timeout
        self.seen = threading.Event()
        self.n = 0

    def _listener(self, record: Any) -> None:
        self.n += 1
        if self.n >= self.count:
            self.seen.set()

    def __enter__(self) -> list[Any]:
        self.proxy.router.add_listener(self._listener)
        self.n = len(self.proxy.rows())
        if self.n < self.count:
            assert self.seen.wait(self.timeout), "no audit row arrived in time"
        return self.proxy.rows()

    def __exit__(self, *exc: object) -> None:
        pass


class SlowStreamUpstream:
    """An OpenAI-compatible stream that sends one chunk and then waits; notes when the client
    (the proxy) closes the connection, i.e. when the upstream request was cancelled."""

    def __init__(self) -> None:
        self.sent_first = threading.Event()
        self.closed = threading.Event()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()
            return
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        chunk = (
            b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m",'
            b'"choices":[{"index":0,"delta":{"content":"first"},"finish_reason":null}]}\n\n'
        )
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        )
        await writer.drain()
        self.sent_first.set()
        await reader.read()  # returns b"" when the proxy closes the connection
        self.closed.set()
        writer.close()

    def stop(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def slow_upstream() -> Iterator[SlowStreamUpstream]:
    upstream = SlowStreamUpstream()
    yield upstream
    upstream.stop()


def test_a_client_disconnect_mid_stream_cancels_upstream_and_is_audited(
    proxy_factory: Any, slow_upstream: SlowStreamUpstream
) -> None:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": f"http://127.0.0.1:{slow_upstream.port}/v1",
                    "model": "m",
                    "locality": "local",
                }
            },
            "default": {"to": ["local"]},
        }
    )
    proxy = proxy_factory(policy=policy)
    port = int(proxy.url.rsplit(":", 1)[1])
    body = b'{"stream": true, "messages": [{"role": "user", "content": "go on"}]}'
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\n"
            b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        received = b""
        while b"first" not in received:
            received += sock.recv(65536)
    assert slow_upstream.closed.wait(10), "the upstream request was not cancelled"
    with AuditRowsArrive(proxy) as rows:
        (row,) = rows
    assert (row.endpoint, row.outcome) == ("stream", "cancelled")
    assert [a.outcome for a in row.attempts] == ["cancelled"]


def test_fake_upstream_is_untouched_by_refusals(fake_local: FakeUpstream, proxy: LiveProxy) -> None:
    post(proxy, content=b"{")
    post(proxy, json={"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert fake_local.model_calls() == []
    assert len(proxy.rows()) == 2
