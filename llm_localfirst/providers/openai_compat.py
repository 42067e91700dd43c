"""The OpenAI-compatible provider (Ollama, vLLM, LM Studio, llama.cpp server, OpenAI).

One provider for this wire protocol, used by every face (Python API, CLI, MCP,
worker, proxy) and by the probe. Bytes move through :mod:`.client` (one pool per
destination and event loop, plain HTTP or TLS), bodies are encoded with ``orjson``,
streams are read with the one SSE parser (:mod:`.sse`). The request body is the
caller's OpenAI body with the destination's model id put in. A local destination
is connected to only at an address its egress ticket vets, at send time.

This module never decides where a request goes; it only sends with a ticket.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from .._loop import PerLoop
from ..registry import Destination
from .base import AttemptFailed, ChatResult, EgressTicket, api_key_for, error_message
from .client import (
    ConnectError,
    HTTPTransportError,
    LocalityError,
    Pool,
    StreamedResponse,
    UpstreamTimeoutError,
)
from .sse import SSEDecoder

__all__ = ["OpenAICompatProvider"]


class OpenAICompatProvider:
    """A destination that speaks the OpenAI HTTP API.

    Args:
        destination: The allowlisted destination.
        api_key: Explicit key; otherwise ``destination.api_key_env``, then
            ``OPENAI_API_KEY`` for cloud destinations. Local servers need none.
        max_connections: Connections open at once to this destination, per event loop.
    """

    def __init__(
        self,
        destination: Destination,
        *,
        api_key: str | None = None,
        max_connections: int = 256,
    ) -> None:
        self.destination = destination
        base = destination.base_url
        if base is None:
            base = os.environ.get("OPENAI_BASE_URL") or destination.url
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{destination.name}: base URL must be http(s) with a host")
        self.base_url = base.rstrip("/")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        self._max_connections = max_connections
        key = api_key_for(destination, api_key, cloud_env="OPENAI_API_KEY")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        self._common = (
            f"host: {host_header}\r\nuser-agent: llm-localfirst\r\naccept: application/json\r\n"
        ).encode("latin-1")
        if key:
            self._common += f"authorization: Bearer {key}\r\n".encode("latin-1")
        self._pools: PerLoop[Pool] = PerLoop(self._new_pool, Pool.close)

    def __repr__(self) -> str:
        return f"OpenAICompatProvider({self.destination.name!r}, model={self.destination.model!r})"

    # ------------------------------------------------------------------ plumbing

    def _new_pool(self) -> Pool:
        return Pool(
            self._host,
            self._port,
            tls=self._tls,
            connect_timeout=self.destination.connect_timeout,
            max_connections=self._max_connections,
        )

    def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        head = f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode("latin-1") + self._common
        if body is None:
            return head + b"\r\n"
        return (
            head
            + b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    def _payload(self, body: Mapping[str, Any], *, stream: bool | None = None) -> bytes:
        out = dict(body)
        out["model"] = self.destination.model
        if stream is not None:
            out["stream"] = stream
            if stream:
                out.setdefault("stream_options", {"include_usage": True})
        return orjson.dumps(out)

    def _failed(self, exc: HTTPTransportError, *, mid_stream: bool = False) -> AttemptFailed:
        name = self.destination.name
        if isinstance(exc, UpstreamTimeoutError):
            return AttemptFailed(
                "timeout", f"{name}: timed out" + (" mid-stream" if mid_stream else f" ({exc})")
            )
        if isinstance(exc, LocalityError):
            return AttemptFailed("not_local", f"{name}: {exc}")
        if isinstance(exc, ConnectError):
            return AttemptFailed("connect_error", f"{name}: {exc}")
        return AttemptFailed("connect_error", f"{name}: connection lost ({exc})")

    def _status_failure(self, status: int, raw: bytes) -> AttemptFailed:
        message, err = error_message(raw)
        return AttemptFailed.from_status(
            status, f"{self.destination.name} answered {status}: {message}", err
        )

    async def _post(self, ticket: EgressTicket, path: str, payload: bytes) -> dict[str, Any]:
        ticket.check(self.destination)
        try:
            status, raw = await self._pools.get().request(
                self._request("POST", path, payload),
                read_timeout=self.destination.timeout,
                vet=ticket.vet if ticket.local else None,
            )
        except HTTPTransportError as exc:
            raise self._failed(exc) from None
        if status >= 400:
            raise self._status_failure(status, raw)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise AttemptFailed("error", f"{self.destination.name}: invalid JSON body") from None
        if not isinstance(data, dict):
            raise AttemptFailed("error", f"{self.destination.name}: unexpected response shape")
        return data

    # ------------------------------------------------------------------ Provider

    async def chat(self, ticket: EgressTicket, body: Mapping[str, Any]) -> ChatResult:
        """Send a non-streaming chat completion.

        Raises:
            AttemptFailed: classified failure.
            PrivacyViolation: the ticket does not allow this send.
        """
        data = await self._post(ticket, "/chat/completions", self._payload(body, stream=False))
        return ChatResult.from_body(data)

    async def post_json(
        self, ticket: EgressTicket, path: str, body: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """POST any OpenAI endpoint (``/completions``, ``/responses``) with the model swapped in.

        Raises:
            AttemptFailed: classified failure.
            PrivacyViolation: the ticket does not allow this send.
        """
        return await self._post(ticket, path, self._payload(body))

    async def embeddings(self, ticket: EgressTicket, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """Create embeddings.

        Raises:
            AttemptFailed: classified failure.
            PrivacyViolation: the ticket does not allow this send.
        """
        return await self.post_json(ticket, "/embeddings", body)

    async def stream_chat(
        self, ticket: EgressTicket, body: Mapping[str, Any]
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Stream ``chat.completion.chunk`` dicts.

        The stream must end with ``data: [DONE]`` or after a chunk carrying a
        ``finish_reason``; one that just stops is a failure, not a short answer.

        Raises:
            AttemptFailed: classified failure. Before the first chunk (including a
                200 stream with no parseable chunk) the router may fail over.
            PrivacyViolation: the ticket does not allow this send.
        """
        ticket.check(self.destination)
        request = self._request("POST", "/chat/completions", self._payload(body, stream=True))
        try:
            response = await self._pools.get().send(
                request,
                read_timeout=self.destination.timeout,
                vet=ticket.vet if ticket.local else None,
            )
        except HTTPTransportError as exc:
            raise self._failed(exc) from None
        try:
            if response.status >= 400:
                try:
                    raw = await response.read()
                except HTTPTransportError:
                    raw = b""
                raise self._status_failure(response.status, raw)
            async for chunk in self._events(response):
                yield chunk
        finally:
            await response.aclose()

    async def _events(self, response: StreamedResponse) -> AsyncIterator[dict[str, Any]]:
        name = self.destination.name
        decoder = SSEDecoder()
        chunks = 0
        finished = False
        try:
            async for data in response.chunks():
                for event in decoder.feed(data):
                    if event.data == b"[DONE]":
                        if not chunks:
                            raise AttemptFailed("error", f"{name}: the stream held no chunk")
                        return
                    try:
                        chunk = orjson.loads(event.data)
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(chunk, dict):
                        continue
                    if event.event == "error" or ("error" in chunk and "choices" not in chunk):
                        message, err = error_message(event.data)
                        raise AttemptFailed("error", f"{name}: stream error: {message}", body=err)
                    chunks += 1
                    finished = finished or _finished(chunk)
                    yield chunk
        except HTTPTransportError as exc:
            raise self._failed(exc, mid_stream=bool(chunks)) from None
        if not chunks:
            raise AttemptFailed("error", f"{name}: the stream held no chunk")
        if not finished:
            raise AttemptFailed(
                "incomplete_stream", f"{name}: the stream ended without finish_reason or [DONE]"
            )

    async def probe(self) -> tuple[bool, str]:
        """``GET <base_url>/models`` on a fresh connection; any answer below 500 counts as up."""
        from ..health import http_probe

        return await http_probe(self.destination)

    async def aclose(self) -> None:
        """Close every pool this provider opened (connections in use close when released)."""
        await self._pools.aclose()

    @property
    def idle_connections(self) -> int:
        """Kept-alive connections across this provider's pools (tests, metrics)."""
        return sum(pool.idle for pool in self._pools.values())


def _finished(chunk: Mapping[str, Any]) -> bool:
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return False
    return any(isinstance(c, Mapping) and c.get("finish_reason") for c in choices)
