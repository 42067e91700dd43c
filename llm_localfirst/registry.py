"""Destinations: the allowlist, and the locality of each destination.

A destination is a named (provider, base URL, model) triple. Its name is the only
thing a caller may put in ``model``; nothing outside this list is ever contacted.
This module decides whether a host may count as local. It never trusts a
declaration: ``locality: local`` is honoured only for loopback, private and
link-local addresses, ``localhost``, or hosts the policy lists under
``trusted_local_hosts`` (never a catch-all: see :data:`MIN_TRUSTED_PREFIX`), and
never a globally routable special range. It performs no network I/O except the
DNS look-up in :func:`resolves_local`, which the health probe calls off the event
loop; at send time the providers check the address they connect to with the
same :func:`address_is_local`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "LOCAL_NETWORKS",
    "MIN_TRUSTED_PREFIX",
    "NAME_PATTERN",
    "RELAY_NETWORKS",
    "Destination",
    "Price",
    "TrustedHosts",
    "address_is_local",
    "host_of",
    "is_loopback_host",
    "resolves_local",
]

Locality = Literal["local", "cloud"]

#: Destination names: no slashes or colons-with-slashes, so a URL can never pass as a name.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$")

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


class Price(BaseModel):
    """USD per million tokens; used by the savings ledger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class Destination(BaseModel):
    """One allowlisted destination.

    Attributes:
        name: The allowlist name (the key under ``destinations:``).
        provider: ``openai`` (any OpenAI-compatible server: Ollama, vLLM, LM Studio,
            llama.cpp server, OpenAI) or ``anthropic``.
        model: The model id sent to the provider.
        base_url: The API root. For ``openai`` it ends in ``/v1``. Optional for cloud
            providers, whose SDK environment (``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``)
            then applies.
        locality: ``local`` or ``cloud``; ``local`` is checked against the host.
        api_key_env: Name of the environment variable that holds the API key.
        timeout: Seconds to wait for a response (streaming: between chunks).
        connect_timeout: Seconds to wait for a connection.
        context_window: Tokens the model accepts; the worker splits longer sources.
        price: USD per million tokens, for the savings ledger.
        responses_api: Whether the destination speaks ``POST /v1/responses``.
        max_concurrency: Most calls the worker sends at once (its parallel map).
            4 matches Ollama's default ``OLLAMA_NUM_PARALLEL`` and llama.cpp
            server's automatic slot count; more would only queue at the server.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    provider: Literal["openai", "anthropic"]
    model: str = Field(min_length=1, max_length=200)
    base_url: str | None = None
    locality: Locality = "cloud"
    api_key_env: str | None = None
    timeout: float = Field(default=120.0, gt=0, le=3600)
    connect_timeout: float = Field(default=3.0, gt=0, le=120)
    context_window: int = Field(default=8192, ge=256)
    price: Price | None = None
    responses_api: bool = False
    max_concurrency: int = Field(default=4, ge=1, le=256)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {value!r}")
        if parts.username or parts.password:
            raise ValueError("base_url must not embed credentials; use api_key_env")
        return value.rstrip("/")

    @property
    def is_local(self) -> bool:
        """True when the policy declared this destination local (and validation accepted it)."""
        return self.locality == "local"

    @property
    def url(self) -> str:
        """The effective base URL (the provider default for cloud destinations without one)."""
        return self.base_url or DEFAULT_BASE_URLS[self.provider]


def host_of(url: str) -> str:
    """The lower-cased host of a URL (without brackets for IPv6)."""
    return (urlsplit(url).hostname or "").lower()


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: What counts as local without any trust: loopback, RFC 1918 private, link-local,
#: IPv6 unique-local. An allowlist on purpose: ``ipaddress``'s ``is_private`` is also
#: True for globally routable special ranges (Teredo ``2001::/32`` relays to the
#: internet) and for documentation and benchmarking ranges, which are not "on this
#: network" either.
LOCAL_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)

#: Ranges that carry traffic to the internet through a relay or translator: never
#: local, and never trustable (Teredo, 6to4, NAT64).
RELAY_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("2001::/32", "2002::/16", "64:ff9b::/96", "64:ff9b:1::/48")
)

#: The widest network ``trusted_local_hosts`` may name, per IP version: one private
#: /8 is already sixteen million addresses; an IPv6 /32 is a whole ISP allocation.
MIN_TRUSTED_PREFIX = {4: 8, 6: 32}


@dataclass(frozen=True, slots=True)
class TrustedHosts:
    """Hosts the operator vouches for as local: exact names and IP networks."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedHosts:
        """Split entries into networks (``10.1.0.0/16``, ``203.0.113.7``) and host names.

        Raises:
            ValueError: an entry that is neither a network nor a plausible host name,
                or a network that trusts too much: wider than /8 (IPv4) or /32 (IPv6),
                ``0.0.0.0/0``/``::/0``, multicast, unspecified, or a relay range
                (Teredo, 6to4, NAT64) that reaches the internet.
        """
        names: set[str] = set()
        nets: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                pass
            else:
                problem = _trust_problem(net)
                if problem:
                    raise ValueError(f"trusted_local_hosts entry {raw!r} {problem}")
                nets.append(net)
                continue
            if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9-]{1,63})*\.?", entry):
                raise ValueError(f"trusted_local_hosts entry {raw!r} is not a host name or network")
            names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(nets))

    def trusts_address(self, ip: IPAddress) -> bool:
        """True when the address lies inside an explicitly trusted network."""
        return any(ip in net for net in self.networks)


def _trust_problem(net: IPNetwork) -> str | None:
    widest = MIN_TRUSTED_PREFIX[net.version]
    if net.prefixlen < widest:
        return (
            f"trusts too much (/{net.prefixlen} is wider than /{widest}); "
            "name a narrower network or the hosts themselves"
        )
    if net.is_multicast or net.is_unspecified:
        return "is not a host network"
    for relay in RELAY_NETWORKS:
        if net.version == relay.version and net.overlaps(relay):
            return f"overlaps {relay}, which relays to the internet"
    return None


def address_is_local(ip: IPAddress, trusted: TrustedHosts = TrustedHosts()) -> bool:
    """Loopback, RFC 1918 private, link-local, unique-local, or inside a trusted network.

    Relay ranges (Teredo, 6to4, NAT64) are never local; IPv4-mapped IPv6 addresses
    are judged by their IPv4 address.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif any(ip in relay for relay in RELAY_NETWORKS):
            return False
    if ip.is_unspecified or ip.is_multicast:
        return False
    return any(ip in net for net in LOCAL_NETWORKS) or trusted.trusts_address(ip)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (what the servers bind by default)."""
    if host == "localhost":
        return True
    ip = _literal_ip(host.strip("[]"))
    return ip is not None and ip.is_loopback


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def declared_local_problem(dest: Destination, trusted: TrustedHosts) -> str | None:
    """Why a destination declared ``local`` may not be local, or None if it may.

    Static check used when the policy is validated: an IP literal must be local,
    a name must be ``localhost`` (or ``*.localhost``) or explicitly trusted.
    """
    if not dest.is_local:
        return None
    if dest.base_url is None:
        return "a local destination needs a base_url"
    host = host_of(dest.base_url)
    ip = _literal_ip(host)
    if ip is not None:
        if address_is_local(ip, trusted):
            return None
        return (
            f"host {host} is a public address; a local destination must be loopback, "
            "private or link-local (or listed in trusted_local_hosts)"
        )
    if host == "localhost" or host.endswith(".localhost") or host in trusted.names:
        return None
    return (
        f"host {host!r} is a name that is not known to be local; "
        "add it to trusted_local_hosts if it is on your network"
    )


def resolves_local(
    host: str, trusted: TrustedHosts, *, port: int | None = None
) -> tuple[bool, str]:
    """Resolve ``host`` and check that every address is local. Blocking (DNS).

    A trusted *name* still has to resolve to local or trusted addresses: a DNS
    answer that moves to a public address makes the destination down.

    Returns:
        ``(ok, detail)`` where detail explains a refusal.
    """
    ip = _literal_ip(host)
    if ip is not None:
        ok = address_is_local(ip, trusted)
        return ok, "" if ok else f"{host} is not a local address"
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return False, f"cannot resolve {host}: {exc.strerror or exc}"
    addresses = {str(info[4][0]) for info in infos}
    if not addresses:
        return False, f"{host} resolved to no address"
    for address in sorted(addresses):
        addr = ipaddress.ip_address(address.split("%", 1)[0])
        if not address_is_local(addr, trusted):
            return False, (
                f"{host} resolves to public address {address}; refusing to treat it as local"
            )
    return True, ""
