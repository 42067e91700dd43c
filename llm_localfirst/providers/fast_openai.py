"""A faster OpenAI-compatible provider for plain-HTTP destinations, used by ``serve``.

It implements the same :class:`~llm_localfirst.providers.base.Provider` protocol,
with the same failure classification, as
:class:`~llm_localfirst.providers.openai_compat.OpenAICompatProvider`, but moves
bytes with :mod:`.fast_http` and encodes with ``orjson``. :func:`provider_factory`
picks it for ``openai`` destinations whose base URL is ``http://`` (local model
servers: Ollama, vLLM, llama.cpp, LM Studio) and falls back to the regular
providers for everything else (TLS, Anthropic).

Like every provider it re-checks the egress ticket before any byte is sent, and
it never decides where a request goes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from ..health import http_probe
from ..registry import Destination
from . import make_provider
from .base import (
    AttemptFailed,
    ChatResult,
    EgressTicket,
    Provider,
    error_message,
)
from .fast_http import (
    ConnectError,
    HTTPTransportError,
    Pool,
    StreamedResponse,
    UpstreamTimeoutError,
)

__all__ = ["FastOpenAIProvider", "provider_factory"]


def provider_factory(destination: Destination) -> Provider:
    """The proxy's provider for a destination: the fast one where it applies."""
    if destination.provider == "openai" and destination.url.startswith("http://"):
        return FastOpenAIProvider(destination)
    return make_provider(destination)


class FastOpenAIProvider:
    """A destination that speaks the OpenAI HTTP API over plain HTTP.

    Args:
        destination: The allowlisted destination (its base URL must be ``http://``).
        api_key: Explicit key; otherwise ``destination.api_key_env``, then
            ``OPENAI_API_KEY`` for cloud destinations. Local servers need none.
    """

    def __init__(self, destination: Destination, *, api_key: str | None = None) -> None:
        self.destination = destination
        parts = urlsplit(destination.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{destination.name}: FastOpenAIProvider needs an http:// URL")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        key = api_key
        if key is None and destination.api_key_env:
            key = os.environ.get(destination.api_key_env)
        if key is None and not destination.is_local:
            key = os.environ.get("OPENAI_API_KEY")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        self._common = (f"host: {host_header}\r\nuser-agent: llm-localfirst\r\n"
                        "accept: application/json\r\n").encode("latin-1")
        if key:
            self._common += f"authorization: Bearer {key}\r\n".encode("latin-1")
        self._pools: dict[int, Pool] = {}

    # ------------------------------------------------------------------ plumbing

    def _pool(self) -> Pool:
        loop_id = id(asyncio.get_running_loop())
        pool = self._pools.get(loop_id)
        if pool is None:
            pool = Pool(self._host, self._port, connect_timeout=self.destination.connect_timeout)
            self._pools[loop_id] = pool
        return pool

    def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        head = f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode("latin-1") + self._common
        if body is None:
            return head + b"\r\n"
        return (head + b"content-type: application/json\r\ncontent-length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)

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
            return AttemptFailed("timeout", f"{name}: timed out"
                                 + (" mid-stream" if mid_stream else f" ({exc})"))
        if isinstance(exc, ConnectError):
            return AttemptFailed("connect_error", f"{name}: {exc}")
        return AttemptFailed("connect_error", f"{name}: connection lost ({exc})")

    def _status_failure(self, status: int, raw: bytes) -> AttemptFailed:
        message, err = error_message(raw)
        return AttemptFailed.from_status(
            status, f"{self.destination.name} answered {status}: {message}", err)

    async def _post(self, ticket: EgressTicket, path: str, payload: bytes) -> dict[str, Any]:
        ticket.check(self.destination)
        try:
            status, raw = await self._pool().request(self._request("POST", path, payload),
                                                     read_timeout=self.destination.timeout)
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

    async def post_json(self, ticket: EgressTicket, path: str,
                        body: Mapping[str, Any]) -> Mapping[str, Any]:
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

    async def stream_chat(self, ticket: EgressTicket,
                          body: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        """Stream ``chat.completion.chunk`` dicts; failures before the first chunk raise.

        Raises:
            AttemptFailed: classified failure (before or after the first chunk).
            PrivacyViolation: the ticket does not allow this send.
        """
        ticket.check(self.destination)
        request = self._request("POST", "/chat/completions", self._payload(body, stream=True))
        try:
            response = await self._pool().send(request, read_timeout=self.destination.timeout)
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
        pending = b""
        try:
            async for data in response.chunks():
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        return
                    try:
                        chunk = orjson.loads(payload)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(chunk, dict):
                        if "error" in chunk and "choices" not in chunk:
                            raise AttemptFailed("error", f"{name}: stream error")
                        yield chunk
        except HTTPTransportError as exc:
            raise self._failed(exc, mid_stream=True) from None

    async def probe(self) -> tuple[bool, str]:
        """The shared reachability probe (:func:`~llm_localfirst.health.http_probe`)."""
        return await http_probe(self.destination)

    async def aclose(self) -> None:
        """Close every pool this provider opened."""
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
