"""OpenAI-compatible back end over raw HTTP (Ollama, vLLM, LM Studio, llama.cpp server, OpenAI).

One pooled ``httpx2.AsyncClient`` per destination and event loop; no SDK. The
request body is the OpenAI body with the destination's model id put in. This
module never decides where a request goes; it only sends with a ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2

from ..health import http_probe
from ..registry import Destination
from .base import AttemptFailed, ChatResult, EgressTicket, error_message

__all__ = ["OpenAICompatProvider"]


class OpenAICompatProvider:
    """A destination that speaks the OpenAI HTTP API.

    Args:
        destination: The allowlisted destination.
        api_key: Explicit key; otherwise ``destination.api_key_env``, then
            ``OPENAI_API_KEY`` for cloud destinations. Local servers need none.
        transport: Optional transport (tests inject ``httpx2.MockTransport``).
    """

    def __init__(self, destination: Destination, *, api_key: str | None = None,
                 transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.destination = destination
        self._transport = transport
        key = api_key
        if key is None and destination.api_key_env:
            key = os.environ.get(destination.api_key_env)
        if key is None and not destination.is_local:
            key = os.environ.get("OPENAI_API_KEY")
        self._headers = {"content-type": "application/json"}
        if key:
            self._headers["authorization"] = f"Bearer {key}"
        base = destination.base_url
        if base is None:
            base = os.environ.get("OPENAI_BASE_URL") or destination.url
        self.base_url = base.rstrip("/")
        self._clients: dict[int, httpx2.AsyncClient] = {}

    def _client(self) -> httpx2.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(id(loop))
        if client is None or client.is_closed:
            d = self.destination
            client = httpx2.AsyncClient(
                base_url=self.base_url, headers=self._headers, transport=self._transport,
                timeout=httpx2.Timeout(d.timeout, connect=d.connect_timeout),
                limits=httpx2.Limits(max_connections=256, max_keepalive_connections=64),
                follow_redirects=False, trust_env=False)
            self._clients[id(loop)] = client
        return client

    def _body(self, body: Mapping[str, Any], *, stream: bool | None = None) -> dict[str, Any]:
        out = dict(body)
        out["model"] = self.destination.model
        if stream is not None:
            out["stream"] = stream
        return out

    async def _post(self, ticket: EgressTicket, path: str, body: Mapping[str, Any]) -> Any:
        ticket.check(self.destination)
        try:
            response = await self._client().post(path, json=body)
        except httpx2.TimeoutException as exc:
            raise AttemptFailed("timeout", f"{self.destination.name}: timed out ({exc})") from None
        except httpx2.TransportError as exc:
            raise AttemptFailed("connect_error",
                                f"{self.destination.name}: cannot connect ({exc})") from None
        if response.status_code >= 400:
            message, err = error_message(response.content)
            raise AttemptFailed.from_status(
                response.status_code,
                f"{self.destination.name} answered {response.status_code}: {message}", err)
        try:
            return response.json()
        except ValueError:
            raise AttemptFailed("error", f"{self.destination.name}: invalid JSON body") from None

    async def chat(self, ticket: EgressTicket, body: Mapping[str, Any]) -> ChatResult:
        """Send a non-streaming chat completion.

        Raises:
            AttemptFailed: classified failure.
            PrivacyViolation: the ticket does not allow this send.
        """
        data = await self._post(ticket, "/chat/completions", self._body(body, stream=False))
        if not isinstance(data, dict):
            raise AttemptFailed("error", f"{self.destination.name}: unexpected response shape")
        return ChatResult.from_body(data)

    async def post_json(self, ticket: EgressTicket, path: str,
                        body: Mapping[str, Any]) -> Mapping[str, Any]:
        """POST any OpenAI endpoint (``/completions``, ``/responses``) with the model swapped in.

        Raises:
            AttemptFailed: classified failure.
        """
        data = await self._post(ticket, path, self._body(body))
        if not isinstance(data, dict):
            raise AttemptFailed("error", f"{self.destination.name}: unexpected response shape")
        return data

    async def embeddings(self, ticket: EgressTicket, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """Create embeddings.

        Raises:
            AttemptFailed: classified failure.
        """
        return await self.post_json(ticket, "/embeddings", body)

    async def stream_chat(self, ticket: EgressTicket,
                          body: Mapping[str, Any]) -> AsyncIterator[Mapping[str, Any]]:
        """Stream ``chat.completion.chunk`` dicts.

        Failures before the first chunk raise AttemptFailed, so the router can fail over.
        """
        ticket.check(self.destination)
        payload = self._body(body, stream=True)
        payload.setdefault("stream_options", {"include_usage": True})
        client = self._client()
        try:
            request = client.build_request("POST", "/chat/completions", json=payload)
            response = await client.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            raise AttemptFailed("timeout", f"{self.destination.name}: timed out ({exc})") from None
        except httpx2.TransportError as exc:
            raise AttemptFailed("connect_error",
                                f"{self.destination.name}: cannot connect ({exc})") from None
        try:
            if response.status_code >= 400:
                message, err = error_message(await response.aread())
                raise AttemptFailed.from_status(
                    response.status_code,
                    f"{self.destination.name} answered {response.status_code}: {message}", err)
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    continue
                if isinstance(chunk, dict):
                    if "error" in chunk and "choices" not in chunk:
                        raise AttemptFailed("error", f"{self.destination.name}: stream error")
                    yield chunk
        except httpx2.TimeoutException:
            raise AttemptFailed("timeout",
                                f"{self.destination.name}: timed out mid-stream") from None
        except httpx2.TransportError as exc:
            raise AttemptFailed("connect_error",
                                f"{self.destination.name}: connection lost ({exc})") from None
        finally:
            await response.aclose()

    async def probe(self) -> tuple[bool, str]:
        """The shared reachability probe (:func:`~llm_localfirst.health.http_probe`)."""
        return await http_probe(self.destination)

    async def aclose(self) -> None:
        """Close every pooled client this provider opened."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(RuntimeError):  # a client bound to a loop already closed
                await client.aclose()
