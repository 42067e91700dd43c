"""One gate for every server: bearer tokens, Host and Origin, header limits, JSON bodies.

This module owns the checks both servers (the OpenAI-compatible proxy and the
MCP streamable HTTP server) run on an HTTP request before it does anything:

- ``Authorization: Bearer <token>``: the scheme is case-insensitive (RFC 9110),
  the token is compared in constant time against every accepted token, so the
  timing tells nothing about which one (or whether any) matched.
- ``Host``: a loopback name (``localhost``, ``127.0.0.0/8``, ``::1``), the bound
  host, or one of ``LF_ALLOWED_HOSTS``; anything else is DNS rebinding: 421.
- ``Origin`` (sent by browsers): the request's own origin (same ``host:port`` as
  its ``Host``), one of ``LF_ALLOWED_ORIGINS`` or ``LF_CORS_ORIGINS``; anything
  else, ``null`` included, is a foreign page: 403.
- At most `MAX_HEADERS` headers and `MAX_HEADER_BYTES` bytes of them: 431.
- Model endpoints take only ``application/json`` bodies (415), so a page cannot
  drive them with a "simple" ``text/plain`` POST that needs no CORS preflight.

It must never log or echo a token or a header value it refused.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from ..errors import InvalidRequest, UsageError

__all__ = [
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "BearerTokens",
    "ForbiddenOrigin",
    "HeadersTooLarge",
    "MisdirectedRequest",
    "RequestGuard",
    "UnsupportedMediaType",
    "bearer_token",
    "require_json",
]

#: Most request headers accepted (431 beyond).
MAX_HEADERS = 100
#: Most bytes of request header names and values together (431 beyond).
MAX_HEADER_BYTES = 32 * 1024

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


class MisdirectedRequest(UsageError):
    """The ``Host`` header names another server (DNS rebinding): HTTP 421."""

    code = "misdirected_request"
    status = 421


class ForbiddenOrigin(UsageError):
    """A browser page from another origin: HTTP 403."""

    code = "forbidden_origin"
    status = 403


class HeadersTooLarge(InvalidRequest):
    """Too many request headers, or too many bytes of them: HTTP 431."""

    code = "request_header_fields_too_large"
    status = 431


class UnsupportedMediaType(InvalidRequest):
    """A model endpoint's body is not ``application/json``: HTTP 415."""

    code = "unsupported_media_type"
    status = 415


def bearer_token(header: bytes | None) -> bytes | None:
    """The credentials of an ``Authorization: Bearer <token>`` header (scheme in any case)."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(b" ")
    # One rule everywhere: the scheme in any case, one space, then the token as sent.
    if scheme.lower() != b"bearer" or not credentials or credentials[:1].isspace():
        return None
    return credentials


class BearerTokens:
    """The accepted bearer tokens of one server (client keys, admin token, MCP token).

    Args:
        tokens: The accepted tokens; with none, :attr:`required` is False.
    """

    __slots__ = ("_tokens",)

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = tuple(t.encode() for t in tokens if t)

    @property
    def required(self) -> bool:
        """Whether any token is configured."""
        return bool(self._tokens)

    def matches(self, header: bytes | None) -> bool:
        """Whether an ``Authorization`` header carries one of the tokens (constant time).

        With no tokens configured nothing matches; callers decide what "no tokens"
        means (the proxy's model routes let everyone in, the admin API nobody).
        """
        given = bearer_token(header) or b""
        ok = False
        for token in self._tokens:  # compare with every token: timing does not tell which
            ok |= hmac.compare_digest(given, token)
        return ok and bool(given)

    def allows(self, header: bytes | None) -> bool:
        """:meth:`matches`, or True when no token is configured."""
        return not self._tokens or self.matches(header)


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``name`` and port of a ``Host`` value or an origin's netloc; None if malformed."""
    try:
        parts = urlsplit(f"//{value}")
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name:
        return None
    return name.lower(), port


def _is_loopback(name: str) -> bool:
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RequestGuard:
    """The Host, Origin and header-size checks of one server.

    Args:
        host: The bound host (accepted in ``Host`` besides loopback names).
        port: The bound port, when known: a ``Host`` naming another port is refused.
        allowed_hosts: Extra accepted ``Host`` values (``name`` or ``name:port``).
        allowed_origins: Extra accepted origins (``scheme://name[:port]``).
    """

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        allowed_hosts: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
    ) -> None:
        self._port = port
        names: set[str] = set()
        pairs: set[tuple[str, int | None]] = set()
        if host and not _is_loopback(host.strip("[]").lower()):
            names.add(host.strip("[]").lower())
        for value in allowed_hosts:
            split = _split_host(value.strip())
            if split is None:
                continue
            if split[1] is None:
                names.add(split[0])
            else:
                pairs.add(split)
        self._names = frozenset(names)
        self._pairs = frozenset(pairs)
        self._origins = frozenset(
            o.strip().rstrip("/").lower() for o in allowed_origins if o.strip()
        )

    @classmethod
    def from_settings(
        cls, settings: object, *, host: str | None = None, port: int | None = None
    ) -> RequestGuard:
        """A guard from ``LF_ALLOWED_HOSTS``, ``LF_ALLOWED_ORIGINS`` and ``LF_CORS_ORIGINS``."""

        def listed(name: str) -> list[str]:
            raw = getattr(settings, name, "") or ""
            return [v.strip() for v in str(raw).split(",") if v.strip()]

        return cls(
            host=host,
            port=port,
            allowed_hosts=listed("allowed_hosts"),
            allowed_origins=[*listed("allowed_origins"), *listed("cors_origins")],
        )

    def check(self, raw_headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Check an ASGI request's headers.

        Raises:
            HeadersTooLarge: more than `MAX_HEADERS` headers or `MAX_HEADER_BYTES` bytes.
            MisdirectedRequest: a ``Host`` this server does not answer to.
            ForbiddenOrigin: an ``Origin`` other than the server's own or an allowed one.
        """
        host: bytes | None = None
        origin: bytes | None = None
        count = size = 0
        for name, value in raw_headers:
            count += 1
            size += len(name) + len(value)
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value if origin is None else b"\x00"  # two origins: refused
        if count > MAX_HEADERS or size > MAX_HEADER_BYTES:
            raise HeadersTooLarge(
                f"request headers are too large (limits: {MAX_HEADERS} headers, "
                f"{MAX_HEADER_BYTES} bytes)"
            )
        host_text = host.decode("latin-1").strip() if host is not None else None
        if host_text is not None and not self._host_allowed(host_text):
            raise MisdirectedRequest(
                "the Host header does not name this server; add the name to "
                "LF_ALLOWED_HOSTS if it should"
            )
        if origin is not None and not self._origin_allowed(
            origin.decode("latin-1").strip(), host_text
        ):
            raise ForbiddenOrigin(
                "requests from this browser origin are not allowed; add it to "
                "LF_ALLOWED_ORIGINS if it should be"
            )

    def _host_allowed(self, value: str) -> bool:
        split = _split_host(value)
        if split is None:
            return False
        name, port = split
        if split in self._pairs:
            return True
        if self._port is not None and port is not None and port != self._port:
            return False
        return _is_loopback(name) or name in self._names

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        lowered = origin.lower().rstrip("/")
        if lowered in self._origins:
            return True
        parts = urlsplit(lowered)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            return False
        # Same origin: the page was served by this very server (e.g. the admin UI).
        return host is not None and parts.netloc == host.lower()


def require_json(content_type: bytes | None) -> None:
    """Refuse a body that is not declared ``application/json`` (parameters allowed).

    Raises:
        UnsupportedMediaType: another or no media type.
    """
    media = (content_type or b"").split(b";", 1)[0].strip().lower()
    if media != b"application/json":
        raise UnsupportedMediaType(
            "model endpoints accept only 'Content-Type: application/json' bodies"
        )
