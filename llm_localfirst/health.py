"""Destination health: a cached async reachability probe plus a circuit breaker.

The probe result is cached for ``ttl`` seconds. Real call outcomes feed a
circuit breaker: ``threshold`` consecutive failures open it for ``cooldown``
seconds, during which the destination counts as down; after that one trial is
let through (half-open). For local destinations the probe also re-resolves the
host: if a name now resolves to a public address the destination is down, never
local. Cloud destinations are not probed (no traffic is sent to learn
reachability); only the breaker marks them down.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .registry import Destination, TrustedHosts, address_is_local, host_of, resolves_local

__all__ = ["DestinationStatus", "Health", "http_probe", "missing_credentials"]

Probe = Callable[[Destination], Awaitable[tuple[bool, str]]]
Clock = Callable[[], float]


async def http_probe(
    dest: Destination, *, trusted: TrustedHosts | None = None, limit_s: float = 2.0
) -> tuple[bool, str]:
    """``GET <base_url>/models`` on one fresh connection; any answer below 500 counts as up.

    The same HTTP client as every provider (:mod:`.providers.client`), on a
    throw-away pool so a probe never leaves a connection behind. A local
    destination is connected to only at an address that is local (or in
    ``trusted``), exactly as a real request would be.
    """
    from .providers.client import (
        ConnectError,
        LocalityError,
        Pool,
        ProtocolError,
        UpstreamTimeoutError,
    )

    parts = urlsplit(dest.url)
    secure = parts.scheme == "https"
    trust = trusted or TrustedHosts()
    pool = Pool(
        parts.hostname or "",
        parts.port or (443 if secure else 80),
        tls=secure,
        connect_timeout=min(limit_s, dest.connect_timeout + 1),
        max_connections=1,
    )
    path = (parts.path.rstrip("/") or "") + "/models"
    request = (
        f"GET {path} HTTP/1.1\r\nhost: {parts.netloc}\r\naccept: application/json\r\n"
        "connection: close\r\n\r\n"
    ).encode("latin-1")
    vet = (lambda ip: address_is_local(ip, trust)) if dest.is_local else None
    try:
        async with asyncio.timeout(limit_s):
            response = await pool.send(request, read_timeout=limit_s, vet=vet)
            await response.aclose()
    except (TimeoutError, UpstreamTimeoutError):
        return False, "unreachable: timed out"
    except LocalityError as exc:
        return False, str(exc)
    except ConnectError as exc:
        return False, f"unreachable: {exc}"
    except ProtocolError as exc:
        return False, f"not an HTTP server ({exc})"
    finally:
        pool.close()
    return response.status < 500, f"answered {response.status}"


@dataclass(slots=True)
class DestinationStatus:
    """What is known about one destination.

    Attributes:
        up: Result of the last probe (or last real outcome).
        detail: Why (``answered 200``, ``unreachable: ConnectError``, ...).
        checked_at: Clock time of the last probe; None if never probed.
        failures: Consecutive failed calls.
        open_until: Clock time until which the breaker is open.
    """

    up: bool = True
    detail: str = "not probed yet"
    checked_at: float | None = None
    failures: int = 0
    open_until: float = 0.0
    latency_ms: float | None = None
    probes: int = field(default=0)


class Health:
    """Cached health of every destination in a policy.

    Args:
        destinations: The allowlist.
        probe: Coroutine probing one destination (the router passes the provider's).
        trusted: Trusted local hosts, for the DNS re-check.
        ttl: Seconds a probe result stays fresh.
        threshold: Consecutive failures that open the breaker.
        cooldown: Seconds the breaker stays open.
        clock: Monotonic clock (tests inject a fake one).
        resolver: DNS check (tests inject one that "moves" a name to a public address).
        credentials: Says why a destination lacks a key (:func:`missing_credentials`,
            as the router passes it); such a destination is down, "not configured".
    """

    def __init__(
        self,
        destinations: Mapping[str, Destination],
        probe: Probe,
        *,
        trusted: TrustedHosts | None = None,
        ttl: float = 30.0,
        threshold: int = 3,
        cooldown: float | None = None,
        clock: Clock = time.monotonic,
        resolver: Callable[[str, TrustedHosts], tuple[bool, str]] = resolves_local,
        credentials: Callable[[Destination], str | None] | None = None,
    ) -> None:
        self.destinations = dict(destinations)
        self._probe = probe
        self.trusted = trusted or TrustedHosts()
        self.ttl = ttl
        self.threshold = threshold
        self.cooldown = ttl if cooldown is None else cooldown
        self.clock = clock
        self._resolver = resolver
        self._credentials = credentials
        self.status: dict[str, DestinationStatus] = {n: DestinationStatus() for n in destinations}
        self._locks: dict[int, asyncio.Lock] = {}
        #: Cloud destinations without a key (name -> why); down until a key appears.
        self.unconfigured: dict[str, str] = {}
        self.check_credentials()

    def check_credentials(self) -> None:
        """Re-read which cloud destinations lack a key (also done by every :meth:`refresh`)."""
        check = self._credentials
        if check is not None:
            self.unconfigured = {
                n: why for n, d in self.destinations.items() if (why := check(d)) is not None
            }

    def _needs_probe(self, name: str, now: float) -> bool:
        dest = self.destinations[name]
        st = self.status[name]
        if not dest.is_local:
            return False
        return st.checked_at is None or now - st.checked_at >= self.ttl

    def stale(self, names: Iterable[str] | None = None) -> list[str]:
        """Local destinations whose probe result is missing or older than ``ttl``."""
        now = self.clock()
        return [
            n
            for n in (names or self.destinations)
            if n in self.status and self._needs_probe(n, now)
        ]

    def is_up(self, name: str) -> bool:
        """Cached view: probe says up and the breaker is not open.

        A cloud destination without its key still counts here: routing keeps it in the
        chain, where it fails at once (no SDK import, nothing sent) and the chain fails
        over, so a preview shows where the policy sends work. :meth:`usable` also needs
        the key.
        """
        st = self.status.get(name)
        if st is None:
            return False
        if st.open_until > self.clock():
            return False
        return st.up

    def usable(self, name: str) -> bool:
        """Up (:meth:`is_up`) and configured: what health reports show as ``up``."""
        return name not in self.unconfigured and self.is_up(name)

    async def _probe_one(self, name: str) -> None:
        dest = self.destinations[name]
        st = self.status[name]
        started = self.clock()
        if dest.is_local and dest.base_url:
            host = host_of(dest.base_url)
            ok, detail = await asyncio.to_thread(self._resolver, host, self.trusted)
            if not ok:
                st.up, st.detail, st.checked_at = False, detail, self.clock()
                st.probes += 1
                return
        try:
            up, detail = await self._probe(dest)
        except Exception as exc:  # a probe that crashes means "down", never "up"
            up, detail = False, f"probe failed: {type(exc).__name__}"
        st.up, st.detail, st.checked_at = up, detail, self.clock()
        st.latency_ms = (st.checked_at - started) * 1000
        st.probes += 1
        if up and st.open_until <= st.checked_at:
            st.failures = 0

    async def refresh(self, names: Iterable[str] | None = None, *, force: bool = False) -> None:
        """Probe stale destinations (all given ones when ``force``), concurrently."""
        self.check_credentials()
        loop = asyncio.get_running_loop()
        lock = self._locks.setdefault(id(loop), asyncio.Lock())
        async with lock:  # one probe round at a time; concurrent callers share its result
            wanted = list(names or self.destinations)
            todo = [
                n
                for n in wanted
                if n in self.status
                and ((force and self.destinations[n].is_local) or n in self.stale([n]))
            ]
            if todo:
                await asyncio.gather(*(self._probe_one(n) for n in todo))

    def record_success(self, name: str) -> None:
        """A real call succeeded: close the breaker, mark up."""
        st = self.status.get(name)
        if st is not None:
            st.failures, st.open_until, st.up = 0, 0.0, True
            st.detail = "last call succeeded"

    def record_failure(self, name: str, *, hard: bool = False) -> None:
        """A real call failed. ``hard`` (connection refused/reset) marks it down at once."""
        st = self.status.get(name)
        if st is None:
            return
        now = self.clock()
        st.failures += 1
        if hard:
            st.up, st.detail, st.checked_at = False, "last call could not connect", now
        if st.failures >= self.threshold:
            st.open_until = now + self.cooldown
            st.detail = f"circuit open after {st.failures} failures"

    def invalidate(self, name: str | None = None) -> None:
        """Forget cached probe results (all, or one destination) so the next decision re-probes."""
        for n, st in self.status.items():
            if name is None or n == name:
                st.checked_at = None
                st.open_until = 0.0
                st.failures = 0

    def snapshot(self) -> dict[str, dict[str, object]]:
        """A JSON-friendly view for doctor, MCP ``status://destinations`` and the admin API."""
        now = self.clock()
        out: dict[str, dict[str, object]] = {}
        for name, st in self.status.items():
            dest = self.destinations[name]
            unconfigured = self.unconfigured.get(name)
            out[name] = {
                "up": self.usable(name),
                "locality": dest.locality,
                "provider": dest.provider,
                "model": dest.model,
                "detail": unconfigured or st.detail,
                "configured": unconfigured is None,
                "age_s": None if st.checked_at is None else round(now - st.checked_at, 3),
                "breaker": "open" if st.open_until > now else "closed",
                "failures": st.failures,
                "probe_ms": st.latency_ms,
            }
        return out


#: Where the Anthropic SDK finds credentials besides ``ANTHROPIC_API_KEY`` (its own order).
_ANTHROPIC_SOURCES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_IDENTITY_TOKEN",
    "ANTHROPIC_IDENTITY_TOKEN_FILE",
    "ANTHROPIC_CONFIG_DIR",
)


def missing_credentials(dest: Destination, environ: Mapping[str, str] | None = None) -> str | None:
    """Why a cloud destination cannot be called for want of a key, or None.

    Reads only the environment (and whether the Anthropic SDK's profile directory
    exists), never imports an SDK, so a keyless destination is known to be unusable
    before anything slow happens. Local destinations never need a key here.
    """
    env = os.environ if environ is None else environ
    if dest.is_local or (dest.api_key_env and env.get(dest.api_key_env)):
        return None
    if dest.provider == "anthropic":
        if (
            any(env.get(name) for name in _ANTHROPIC_SOURCES)
            or (Path.home() / ".config" / "anthropic").is_dir()
        ):
            return None
        wanted = dest.api_key_env or "ANTHROPIC_API_KEY"
    else:
        # A gateway at its own base_url may need no key, unless the policy names one or it
        # is OpenAI's own API.
        gateway = dest.base_url and host_of(dest.base_url) != "api.openai.com"
        if env.get("OPENAI_API_KEY") or (gateway and not dest.api_key_env):
            return None
        wanted = dest.api_key_env or "OPENAI_API_KEY"
    return f"not configured: set {wanted} (no API key in the environment)"
