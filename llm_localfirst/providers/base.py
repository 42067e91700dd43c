"""The provider protocol and the egress guard that sits in front of every network send.

A provider turns an OpenAI-shaped chat body into a call to one destination. It
cannot send without an :class:`EgressTicket`, and only :func:`egress_guard` makes
tickets: it refuses (``PrivacyViolation``) a sensitive request bound for a
non-local destination, whatever the policy said. Providers re-check that the
ticket names their own destination, and connect to a local destination only at an
address the ticket's :meth:`EgressTicket.vet` accepts (checked at send time, on
the address actually connected to). This module never performs I/O itself.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..errors import PrivacyViolation
from ..registry import Destination, TrustedHosts, address_is_local

__all__ = [
    "AttemptFailed",
    "ChatResult",
    "EgressTicket",
    "Provider",
    "api_key_for",
    "egress_guard",
    "error_message",
]

_TICKET_SEAL = object()
_NO_TRUST = TrustedHosts()


@dataclass(frozen=True, slots=True)
class EgressTicket:
    """Permission to send one request to one destination. Made only by :func:`egress_guard`."""

    destination: str
    sensitive: bool
    seal: object
    local: bool = False
    trusted: TrustedHosts = _NO_TRUST

    def vet(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """May a connection for this ticket go to ``address``? Always, for a cloud destination.

        For a local destination the address must be loopback, private, link-local
        (not a globally routable special range) or inside a trusted network.
        """
        return not self.local or address_is_local(address, self.trusted)

    def check(self, destination: Destination) -> None:
        """Re-check the ticket at the point of sending.

        Raises:
            PrivacyViolation: a forged ticket, a ticket for another destination, or a
                sensitive ticket for a non-local destination.
        """
        if self.seal is not _TICKET_SEAL or self.destination != destination.name:
            raise PrivacyViolation(
                "egress ticket does not match the destination", destination=destination.name
            )
        if self.sensitive and not destination.is_local:
            raise PrivacyViolation(
                f"refusing to send a sensitive request to cloud destination {destination.name!r}",
                destination=destination.name,
            )


def egress_guard(
    destination: Destination, *, sensitive: bool, trusted: TrustedHosts | None = None
) -> EgressTicket:
    """The single gate in front of every send to a model.

    Args:
        destination: Where the request would go.
        sensitive: Whether the request must stay local.
        trusted: The policy's ``trusted_local_hosts``: the networks a local
            destination's address may also be in when the provider connects.

    Raises:
        PrivacyViolation: ``sensitive`` and the destination is not local.
    """
    if sensitive and not destination.is_local:
        raise PrivacyViolation(
            f"refusing to send a sensitive request to cloud destination {destination.name!r}",
            destination=destination.name,
        )
    return EgressTicket(
        destination.name, sensitive, _TICKET_SEAL, destination.is_local, trusted or _NO_TRUST
    )


def api_key_for(destination: Destination, explicit: str | None, *, cloud_env: str) -> str | None:
    """The one API-key lookup: explicit, else ``api_key_env``, else ``cloud_env`` for cloud.

    A local destination never picks up the cloud key from the environment, so the
    key cannot leak to a server on the LAN.
    """
    if explicit is not None:
        return explicit or None
    if destination.api_key_env:
        key = os.environ.get(destination.api_key_env)
        if key:
            return key
    if not destination.is_local:
        return os.environ.get(cloud_env) or None
    return None


class AttemptFailed(Exception):  # internal control flow, never escapes the router
    """One attempt at one destination failed. Internal: the router turns it into UpstreamError.

    Attributes:
        outcome: ``connect_error``, ``timeout``, ``http_5xx``, ``http_429``, ``http_4xx``,
            ``not_local`` (a local destination's host resolved to a non-local address:
            nothing was sent), ``incomplete_stream`` (a stream that just stopped) or
            ``error``.
        status: HTTP status when there was one.
        retryable: Whether failover to the next candidate is allowed.
        body: The upstream error body (OpenAI-shaped when possible), for 4xx pass-through.
    """

    def __init__(
        self,
        outcome: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status
        self.retryable = retryable
        self.body = body

    @classmethod
    def from_status(
        cls, status: int, message: str, body: Mapping[str, Any] | None = None
    ) -> AttemptFailed:
        """Classify an HTTP error status: 5xx and 429 fail over, other 4xx do not."""
        if status == 429:
            return cls("http_429", message, status=status, body=body)
        if status >= 500:
            return cls("http_5xx", message, status=status, body=body)
        return cls("http_4xx", message, status=status, retryable=False, body=body)


@dataclass(frozen=True, slots=True)
class ChatResult:
    """An OpenAI-shaped chat completion body, plus extracted fields."""

    body: Mapping[str, Any]
    text: str
    finish_reason: str | None
    input_tokens: int
    output_tokens: int

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ChatResult:
        """Extract text, finish reason and usage from an OpenAI ``chat.completion`` body."""
        text, finish = text_of_chat(body)
        tokens_in, tokens_out = usage_of(body)
        return cls(body, text, finish, tokens_in, tokens_out)


@runtime_checkable
class Provider(Protocol):
    """One destination's client. Implementations own their pooled connections."""

    destination: Destination

    async def chat(self, ticket: EgressTicket, body: Mapping[str, Any]) -> ChatResult:
        """Send a non-streaming chat completion (OpenAI body shape).

        Raises:
            AttemptFailed: classified failure.
            PrivacyViolation: the ticket does not allow this send.
        """
        ...

    def stream_chat(
        self, ticket: EgressTicket, body: Mapping[str, Any]
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Stream OpenAI-shaped ``chat.completion.chunk`` dicts.

        The first ``__anext__`` performs the request; failures before the first
        chunk raise :class:`AttemptFailed` so the router can fail over.
        """
        ...

    async def embeddings(self, ticket: EgressTicket, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """Create embeddings (OpenAI body shape).

        Raises:
            AttemptFailed: classified failure.
            UnsupportedEndpoint: the destination has no embeddings endpoint (nothing
                sent; the router tries the next candidate).
        """
        ...

    async def probe(self) -> tuple[bool, str]:
        """Cheap reachability check: ``(up, detail)``."""
        ...

    async def aclose(self) -> None:
        """Close pooled connections."""
        ...


def error_message(body: bytes) -> tuple[str, Mapping[str, Any] | None]:
    """The message of an upstream error body, and the body when it is a JSON object.

    Error bodies are read only on failures, so the stdlib parser is fast enough.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", "replace"), None
    if not isinstance(data, dict):
        return str(data)[:300], None
    err = data.get("error")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"][:500], data
    if isinstance(err, str):
        return err[:500], data
    return str(data)[:300], data


def text_of_chat(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """The first choice's text and finish reason from an OpenAI chat body."""
    choices = body.get("choices") or []
    if not choices or not isinstance(choices[0], Mapping):
        return "", None
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content") if isinstance(message, Mapping) else None
    return (content if isinstance(content, str) else ""), choice.get("finish_reason")


def usage_of(body: Mapping[str, Any]) -> tuple[int, int]:
    """``(prompt_tokens, completion_tokens)`` from an OpenAI body, zeros when absent."""
    usage = body.get("usage") or {}
    if not isinstance(usage, Mapping):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
