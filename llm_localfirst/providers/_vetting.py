"""Send-time locality for a provider that sends through an SDK's httpx2 client (Anthropic).

The OpenAI-compatible provider connects through :mod:`.client`, which vets the
address it connects to. An SDK opens its own connections, so a local destination's
SDK client gets an ``httpx2`` transport whose network back end does the same: it
resolves the host once, refuses (:class:`~.client.LocalityError`) unless every
address passes the ticket's check, and connects to that address; TLS keeps the
name for SNI, as httpcore starts TLS with the origin's host. The check travels in
a context variable set around each SDK call (:func:`vetting`), so one pooled SDK
client serves requests whatever the policy's trusted networks were when it was made.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

import httpx2

from .client import ConnectError, LocalityError, Vet, resolve

__all__ = ["locality_error", "vetting", "vetting_http_client"]

_VET: contextvars.ContextVar[Vet | None] = contextvars.ContextVar("lf_vet", default=None)


@contextlib.contextmanager
def vetting(vet: Vet | None) -> Iterator[None]:
    """Connections opened inside the block must pass ``vet`` (None: no check)."""
    token = _VET.set(vet)
    try:
        yield
    finally:
        _VET.reset(token)


class _VettingBackend:
    """An httpcore network back end that connects only to vetted addresses."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's back-end signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        vet = _VET.get()
        if vet is None:
            return await self._inner.connect_tcp(
                host,
                port,
                timeout=timeout,
                local_address=local_address,
                socket_options=socket_options,
            )
        addresses = await resolve(host, port)
        peers = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
        refused = [str(p) for p in peers if not vet(p)]
        if refused or not peers:
            raise LocalityError(
                f"{host} resolves to {', '.join(refused) or 'no address'}, which is not "
                "local; refusing to connect"
            )
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except Exception as exc:  # httpcore's ConnectError/ConnectTimeout: try the next
                last = exc
        assert last is not None
        raise last

    def __getattr__(self, name: str) -> Any:  # sleep, connect_unix_socket
        return getattr(self._inner, name)


def vetting_http_client(timeout: httpx2.Timeout) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` for an SDK, whose new connections are vetted.

    Raises:
        ConnectError: httpx2's transport no longer has the pool this wraps; a local
            destination must not be sent to unvetted, so the provider cannot be used.
    """
    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):
        raise ConnectError("cannot vet the SDK's connections with this httpx2 version")
    pool._network_backend = _VettingBackend(pool._network_backend)
    return httpx2.AsyncClient(
        transport=transport, timeout=timeout, trust_env=False, follow_redirects=False
    )


def locality_error(exc: BaseException) -> LocalityError | None:
    """The :class:`LocalityError` behind an SDK or httpx2 error, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, LocalityError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
