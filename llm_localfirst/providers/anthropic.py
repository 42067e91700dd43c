"""Anthropic back end: OpenAI-shaped chat over the Messages API, via the ``anthropic`` SDK.

The SDK is an optional extra, imported when a provider is constructed (never when
``llm_localfirst`` is imported). One ``AsyncAnthropic`` client per destination and
event loop, with the SDK's own retries off: the router fails over itself. Bodies
are translated by the pure functions in :mod:`.anthropic_translate`; SDK errors
become :class:`~.base.AttemptFailed`. This module never decides where a request
goes; it only sends with a ticket, and re-checks the ticket before anything else.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx2

from .._loop import PerLoop
from ..errors import InvalidRequest, UnsupportedEndpoint
from ..registry import Destination
from ._vetting import locality_error, vetting, vetting_http_client
from .anthropic_translate import (
    StreamTranslator,
    from_message,
    openai_error_body,
    status_for_error_type,
    to_messages_params,
)
from .base import AttemptFailed, ChatResult, EgressTicket, api_key_for
from .client import ConnectError

if TYPE_CHECKING:
    import anthropic
    from anthropic import AsyncAnthropic

__all__ = ["AnthropicProvider"]

_INSTALL_HINT = "pip install 'llm-localfirst[anthropic]'"


def _require_sdk() -> None:
    try:
        import anthropic  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"the Anthropic provider needs the anthropic SDK: {_INSTALL_HINT}"
        ) from exc


def _failure(exc: anthropic.AnthropicError | httpx2.TransportError, name: str) -> AttemptFailed:
    """Classify an SDK exception, or a transport error raised while reading a stream."""
    import anthropic

    refused = locality_error(exc)
    if refused is not None:  # nothing was sent: the host is no longer local
        return AttemptFailed("not_local", f"{name}: {refused}")
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return AttemptFailed("timeout", f"{name}: timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return AttemptFailed("connect_error", f"{name}: cannot connect ({exc.message})")
    if isinstance(exc, httpx2.TransportError):
        return AttemptFailed("connect_error", f"{name}: connection lost ({type(exc).__name__})")
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status < 400:  # an error event inside a 200 stream: its type carries the status
            status = status_for_error_type(exc.type)
        body = openai_error_body(exc.body, message=exc.message[:500])
        detail = body["error"]["message"]
        return AttemptFailed.from_status(status, f"{name} answered {status}: {detail}", body)
    return AttemptFailed("error", f"{name}: {type(exc).__name__}: {str(exc)[:300]}")


def _invalid(exc: InvalidRequest, name: str) -> AttemptFailed:
    body = {
        "error": {
            "message": exc.message,
            "type": "invalid_request_error",
            "param": exc.param,
            "code": None,
        }
    }
    return AttemptFailed(
        "http_4xx",
        f"{name}: cannot translate the request: {exc.message}",
        status=400,
        retryable=False,
        body=body,
    )


class AnthropicProvider:
    """A destination that speaks the Anthropic Messages API.

    Args:
        destination: The allowlisted destination (``provider: anthropic``).
        api_key: Explicit key; otherwise ``os.environ[destination.api_key_env]`` when
            set, otherwise the SDK's own credentials (``ANTHROPIC_API_KEY``, ...). A
            local destination without a key sends no credentials at all, so a cloud
            key in the environment never reaches a local server.
        http_client: Optional ``httpx2.AsyncClient`` for the SDK (tests inject one
            with a ``MockTransport``). It belongs to the caller: :meth:`aclose` leaves
            it open.

    Raises:
        ImportError: the ``anthropic`` SDK is not installed.
    """

    def __init__(
        self,
        destination: Destination,
        *,
        api_key: str | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        _require_sdk()
        self.destination = destination
        self._http_client = http_client
        key = api_key_for(destination, api_key, cloud_env="ANTHROPIC_API_KEY")
        # An explicit (empty) key stops the SDK reading ANTHROPIC_API_KEY; the header
        # it would build from it is then omitted on every request.
        self._no_auth = key is None and destination.is_local
        self._api_key = "" if self._no_auth else key
        self._clients: PerLoop[AsyncAnthropic] = PerLoop(self._new_client, self._close_client)

    def __repr__(self) -> str:
        return f"AnthropicProvider({self.destination.name!r}, model={self.destination.model!r})"

    def _new_client(self) -> AsyncAnthropic:
        import anthropic

        d = self.destination
        timeout = httpx2.Timeout(d.timeout, connect=d.connect_timeout)
        http_client = self._http_client
        if http_client is None and d.is_local:  # connect only where the ticket allows
            http_client = vetting_http_client(timeout)
        return anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=d.base_url,
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )

    async def _close_client(self, client: AsyncAnthropic) -> None:
        if self._http_client is None:  # an injected client belongs to the caller
            await client.close()

    def _client(self) -> AsyncAnthropic:
        return self._clients.get()

    def _prepare(
        self, ticket: EgressTicket, body: Mapping[str, Any]
    ) -> tuple[AsyncAnthropic, dict[str, Any]]:
        """Check the ticket, translate the body and pick the client; no network I/O."""
        import anthropic

        ticket.check(self.destination)
        name = self.destination.name
        try:
            params = to_messages_params(body, model=self.destination.model)
        except InvalidRequest as exc:
            raise _invalid(exc, name) from None
        try:
            client = self._client()
        except anthropic.AnthropicError as exc:  # e.g. a broken credentials profile
            raise _failure(exc, name) from None
        except ConnectError as exc:  # a local destination whose connections cannot be vetted
            raise AttemptFailed("error", f"{name}: {exc}") from None
        if self._no_auth:
            params["extra_headers"] = {"Authorization": anthropic.omit}
        elif not _has_credentials(client):
            env = self.destination.api_key_env or "ANTHROPIC_API_KEY"
            raise AttemptFailed("error", f"{name}: no Anthropic API key (set {env})")
        return client, params

    async def chat(self, ticket: EgressTicket, body: Mapping[str, Any]) -> ChatResult:
        """Send a non-streaming chat completion (OpenAI body in, OpenAI body out).

        Raises:
            AttemptFailed: classified failure; an untranslatable body is a 400.
            PrivacyViolation: the ticket does not allow this send.
        """
        import anthropic

        client, params = self._prepare(ticket, body)
        try:
            with vetting(ticket.vet if ticket.local else None):
                message = await client.messages.create(**params)
        except (anthropic.AnthropicError, httpx2.TransportError) as exc:
            raise _failure(exc, self.destination.name) from None
        data = from_message(message.to_dict(mode="json"), created=int(time.time()))
        return ChatResult.from_body(data)

    async def stream_chat(
        self, ticket: EgressTicket, body: Mapping[str, Any]
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Stream ``chat.completion.chunk`` dicts as Anthropic events arrive.

        The first ``__anext__`` checks the ticket and sends the request; every
        failure before the first chunk (including an error event right after
        ``message_start``) raises :class:`AttemptFailed` from it. A usage chunk with
        empty ``choices`` always comes last.

        Raises:
            AttemptFailed: classified failure, before or during the stream.
            PrivacyViolation: the ticket does not allow this send.
        """
        import anthropic

        client, params = self._prepare(ticket, body)
        name = self.destination.name
        translator = StreamTranslator(created=int(time.time()))
        try:
            # Reset before the first yield: the check must not leak into the caller.
            with vetting(ticket.vet if ticket.local else None):
                stream = await client.messages.create(**params, stream=True)
        except (anthropic.AnthropicError, httpx2.TransportError) as exc:
            raise _failure(exc, name) from None
        try:
            async for event in stream:
                for chunk in translator.feed(event.to_dict(mode="json")):
                    yield chunk
        except (anthropic.AnthropicError, httpx2.TransportError) as exc:
            # The SDK raises an error event as APIStatusError and lets transport errors
            # from reading the body through unwrapped.
            raise _failure(exc, name) from None
        finally:
            await stream.close()
        if not translator.done:
            raise AttemptFailed("incomplete_stream", f"{name}: stream ended before message_stop")

    async def embeddings(self, ticket: EgressTicket, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """Always fails, sending nothing: Anthropic has no embeddings endpoint.

        Raises:
            UnsupportedEndpoint: always; the router skips to the next candidate.
            PrivacyViolation: the ticket does not allow this send.
        """
        ticket.check(self.destination)
        raise UnsupportedEndpoint(
            f"destination {self.destination.name!r} (anthropic) has no embeddings endpoint",
            param="model",
        )

    async def probe(self) -> tuple[bool, str]:
        """No network call: the destination is reported up and real outcomes drive health."""
        if self.destination.is_local:
            return True, "not probed"
        return True, "not probed (cloud)"

    async def aclose(self) -> None:
        """Close the clients this provider opened (an injected ``http_client`` stays open)."""
        await self._clients.aclose()


def _has_credentials(client: AsyncAnthropic) -> bool:
    """Whether the SDK found any credential (it raises a bare TypeError at send otherwise)."""
    if client.api_key or client.auth_token or client.credentials is not None:
        return True
    headers = {k.lower() for k, v in client.default_headers.items() if isinstance(v, str) and v}
    return "authorization" in headers or "x-api-key" in headers
