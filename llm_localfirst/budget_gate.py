"""The policy's budgets against the shared store: scope, leases, reserve, settle, status.

This module owns how a cloud call is held against the budgets in its scope. Each
process takes a *lease* (a slice of the budget) from the shared store with one
atomic conditional update, and serves the reservations of its calls from that lease
in memory; when a lease runs short it takes another. Settled spend is written back
in batches (every 128 calls or 100 ms, at a lease refill, on status and on close).

Why the bound holds: the store grants a lease only if spent + reserved + lease <=
limit (SQLite ``BEGIN IMMEDIATE``, PostgreSQL one conditional ``UPDATE``), and a
process lets a call start only if its estimate fits in what its leases still hold.
So, summed over every instance, spent + in flight never passes the limit, and
recorded spend can pass it only by what calls in flight spend beyond their
estimate. The estimate is an upper bound of input tokens (UTF-8 bytes) plus
``max_tokens`` (1024 when the caller sets none). Near the limit a lease shrinks to
one call's estimate, so no instance hoards the last of a budget; an idle lease is
handed back within about half a second (``Spend`` runs a flusher thread), and the
lease of an instance that died is reaped ``LEASE_TTL`` (1 h) after its last write.
It must never read the environment nor decide routes.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from .budget import (
    DEFAULT_OUTPUT_ESTIMATE,
    MICROS_PER_USD,
    Price,
    Usage,
    cost_micros,
    period_start,
)

if TYPE_CHECKING:
    from .audit.budget_store import BudgetStore
    from .policy.schema import BudgetSpec

__all__ = ["BudgetGate", "BudgetState", "Reservation", "exceeded_message"]

#: A lease covers this many calls' estimates, capped at 1/LEASE_SHARE of the limit.
LEASE_CALLS = 64
LEASE_SHARE = 8
#: Settled spend is written back after this many calls or seconds.
FLUSH_CALLS = 128
FLUSH_SECONDS = 0.1
#: A lease untouched this long is handed back at the next flush.
IDLE_SECONDS = 0.2
#: A holder's lease rows expire this long after its last write (a crashed instance's
#: share comes back after this); live holders refresh them every LEASE_TTL / 4.
LEASE_TTL = 3600.0


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one cloud call holds against each budget in scope until it settles."""

    destination: str
    periods: tuple[tuple[str, str], ...]  # (budget name, period key)
    micros: int
    tokens: int
    price: Price | None
    gate: BudgetGate | None = None  # the gate that holds it (a reload installs a new one)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One budget's current period, for ``budget status``, the admin API and metrics."""

    name: str
    period: str
    period_start: str
    on_exceeded: str
    limit_usd: float | None
    limit_tokens: int | None
    limit_calls: int | None
    spent_micros: int
    spent_tokens: int
    spent_calls: int
    reserved_micros: int
    reserved_tokens: int
    reserved_calls: int
    scope: Mapping[str, list[str] | None]

    @property
    def spent_usd(self) -> float:
        """USD spent this period."""
        return self.spent_micros / MICROS_PER_USD

    @property
    def remaining(self) -> dict[str, float | int | None]:
        """What is left of each limit, leases and calls in flight counted as used."""
        usd = tokens = calls = None
        if self.limit_usd is not None:
            used = (self.spent_micros + self.reserved_micros) / MICROS_PER_USD
            usd = max(0.0, self.limit_usd - used)
        if self.limit_tokens is not None:
            tokens = max(0, self.limit_tokens - self.spent_tokens - self.reserved_tokens)
        if self.limit_calls is not None:
            calls = max(0, self.limit_calls - self.spent_calls - self.reserved_calls)
        return {"usd": usd, "tokens": tokens, "calls": calls}

    @property
    def exhausted(self) -> bool:
        """Whether a limit is reached by settled spend alone."""
        limit = _limit_micros(self.limit_usd)
        return (
            (limit is not None and self.spent_micros >= limit)
            or (self.limit_tokens is not None and self.spent_tokens >= self.limit_tokens)
            or (self.limit_calls is not None and self.spent_calls >= self.limit_calls)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (``/admin/budgets``, ``budget status --json``)."""
        return {
            "name": self.name,
            "period": self.period,
            "period_start": self.period_start,
            "on_exceeded": self.on_exceeded,
            "scope": dict(self.scope),
            "limit_usd": self.limit_usd,
            "limit_tokens": self.limit_tokens,
            "limit_calls": self.limit_calls,
            "spent_usd": round(self.spent_usd, 6),
            "spent_micros": self.spent_micros,
            "spent_tokens": self.spent_tokens,
            "spent_calls": self.spent_calls,
            "reserved_micros": self.reserved_micros,
            "reserved_tokens": self.reserved_tokens,
            "reserved_calls": self.reserved_calls,
            "remaining": self.remaining,
            "exhausted": self.exhausted,
        }


class _Lease:
    """This process's slice of one budget period: held in the store, used by calls here."""

    __slots__ = ("beat", "held", "last_take", "release", "spent", "used")

    def __init__(self) -> None:
        self.held = [0, 0, 0]  # micros, tokens, calls reserved in the store by this process
        self.used = [0, 0, 0]  # of which calls in flight here hold this much
        self.spent = [0, 0, 0]  # settled, not yet written back
        self.release = [0, 0, 0]  # reserved to hand back to the store, not yet written
        self.last_take = 0.0
        self.beat = time.monotonic()  # last write of this lease's row in the store

    def fits(self, need: tuple[int, int, int]) -> bool:
        held, used = self.held, self.used
        return all(held[i] - used[i] >= need[i] for i in range(3))


class BudgetGate:
    """The policy's budgets against a shared store: scope, reserve, settle, status.

    Args:
        specs: The policy's ``budgets``.
        prices: Destination name -> :class:`Price` (policy ``price`` and ``LF_PRICES``).
        cloud: Names of the cloud destinations.
        store: Where counters live; every instance sharing it shares the budgets.
    """

    def __init__(
        self,
        specs: Iterable[BudgetSpec],
        prices: Mapping[str, Price],
        cloud: Iterable[str],
        store: BudgetStore,
    ) -> None:
        self.specs = tuple(specs)
        self.prices = dict(prices)
        self.store = store
        self._by_name = {s.name: s for s in self.specs}
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._lock = threading.Lock()
        self._store_lock = threading.Lock()  # one store round trip at a time per process
        self._pending = 0
        self._flushed = time.monotonic()
        #: Who this process is in ``lf_budget_leases`` (host, pid, a random part).
        self.holder = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"
        cloud_names = frozenset(cloud)
        # Destination -> the budgets whose scope holds it (keys are checked per call).
        self._by_dest: dict[str, tuple[BudgetSpec, ...]] = {
            name: tuple(
                s
                for s in self.specs
                if s.scope.destinations is None or name in s.scope.destinations
            )
            for name in cloud_names
        }

    def in_scope(self, destination: str, key: str | None) -> tuple[BudgetSpec, ...]:
        """The budgets a call to ``destination`` by client key ``key`` counts against."""
        specs = self._by_dest.get(destination)
        if not specs:
            return ()
        return tuple(s for s in specs if s.scope.keys is None or key in s.scope.keys)

    def estimate(self, destination: str, tokens_in: int, max_tokens: int | None) -> tuple[int, int]:
        """``(micro-USD, tokens)`` reserved for a call before it runs."""
        tokens_out = max_tokens if max_tokens is not None else DEFAULT_OUTPUT_ESTIMATE
        price = self.prices.get(destination)
        micros = cost_micros(price, tokens_in, tokens_out) if price else 0
        return micros, tokens_in + tokens_out

    # ------------------------------------------------------------------ reserve

    def try_reserve(
        self,
        destination: str,
        key: str | None,
        tokens_in: int,
        max_tokens: int | None,
        *,
        now: datetime | None = None,
    ) -> Reservation | Literal[False] | None:
        """Reserve from this process's leases, in memory; ``False`` when a lease is short.

        Returns:
            A :class:`Reservation`, ``None`` (no budget in scope), or ``False``: call
            :meth:`reserve` (which may take a new lease from the store).
        """
        specs = self.in_scope(destination, key)
        if not specs:
            return None
        micros, tokens = self.estimate(destination, tokens_in, max_tokens)
        needs = [_held(spec, micros, tokens) for spec in specs]
        periods = tuple((s.name, period_start(s.period, now)) for s in specs)
        with self._lock:
            leases = [self._leases.get(p) for p in periods]
            if not all(
                lease is not None and lease.fits(need)
                for lease, need in zip(leases, needs, strict=True)
            ):
                return False
            stamp = time.monotonic()
            for lease, need in zip(leases, needs, strict=True):
                assert lease is not None
                _add(lease.used, need)
                lease.last_take = stamp
        return Reservation(destination, periods, micros, tokens, self.prices.get(destination), self)

    def reserve(
        self,
        destination: str,
        key: str | None,
        tokens_in: int,
        max_tokens: int | None,
        *,
        now: datetime | None = None,
    ) -> Reservation | BudgetSpec | None:
        """Reserve an estimate against every budget in scope (blocking: may use the store).

        Returns:
            A :class:`Reservation` (``None`` when no budget applies), or the first
            :class:`BudgetSpec` that had no room (nothing stays reserved then).
        """
        got = self.try_reserve(destination, key, tokens_in, max_tokens, now=now)
        if got is not False:
            return got
        specs = self.in_scope(destination, key)
        micros, tokens = self.estimate(destination, tokens_in, max_tokens)
        taken: list[tuple[tuple[str, str], tuple[int, int, int]]] = []
        with self._store_lock:
            self._flush_locked()
            for spec in specs:
                key_period = (spec.name, period_start(spec.period, now))
                need = _held(spec, micros, tokens)
                if not self._take(spec, key_period, need):
                    self._untake(taken)
                    return spec
                taken.append((key_period, need))
        return Reservation(
            destination,
            tuple(p for p, _ in taken),
            micros,
            tokens,
            self.prices.get(destination),
            self,
        )

    def _take(
        self, spec: BudgetSpec, key_period: tuple[str, str], need: tuple[int, int, int]
    ) -> bool:
        """Use this process's lease, or take a new one from the store (under the store lock)."""
        with self._lock:
            lease = self._leases.setdefault(key_period, _Lease())
            if lease.fits(need):
                _add(lease.used, need)
                lease.last_take = time.monotonic()
                return True
            short = [max(0, need[i] - (lease.held[i] - lease.used[i])) for i in range(3)]
        limits = (_limit_micros(spec.limit_usd), spec.limit_tokens, spec.limit_calls)
        chunk = [
            0 if limit is None else max(short[i], min(need[i] * LEASE_CALLS, limit // LEASE_SHARE))
            for i, limit in enumerate(limits)
        ]
        for ask in (chunk, short):  # a whole lease if it fits, else just this call
            name, period = key_period
            amount = (ask[0], ask[1], ask[2])
            if self.store.reserve(name, period, amount, limits, holder=self.holder, ttl=LEASE_TTL):
                with self._lock:
                    lease.beat = time.monotonic()
                    _add(lease.held, ask)
                    _add(lease.used, need)
                    lease.last_take = time.monotonic()
                return True
        return False

    def _untake(self, taken: list[tuple[tuple[str, str], tuple[int, int, int]]]) -> None:
        with self._lock:
            for key_period, need in taken:
                _sub(self._leases[key_period].used, need)

    # ------------------------------------------------------------------ settle

    def settle(self, reservation: Reservation, usage: Usage | None) -> tuple[int | None, bool]:
        """Account a finished call in memory (``usage`` None: nothing was spent).

        Returns:
            ``(cost in micro-USD or None, whether a flush is due)``.
        """
        if usage is None:
            cost, spent = None, (0, 0, 0)
        else:
            price = reservation.price
            cost = cost_micros(price, usage.input_tokens, usage.output_tokens) if price else None
            spent = (cost or 0, usage.total_tokens, 1)
        specs = self._by_name
        with self._lock:
            for key_period in reservation.periods:
                lease = self._leases[key_period]
                _sub(
                    lease.used, _held(specs[key_period[0]], reservation.micros, reservation.tokens)
                )
                # The store moves what was spent from reserved to spent; it can release
                # no more than this process holds (an overshoot is spent, not reserved).
                moved = [min(spent[i], lease.held[i]) for i in range(3)]
                _sub(lease.held, moved)
                _add(lease.release, moved)
                _add(lease.spent, spent)
            self._pending += 1
            due = self._pending >= FLUSH_CALLS or time.monotonic() - self._flushed >= FLUSH_SECONDS
        return cost, due

    def flush(self, *, release_all: bool = False) -> None:
        """Write settled spend back, and hand back idle leases (all of them on close)."""
        with self._store_lock:
            self._flush_locked(release_all=release_all)

    def _flush_locked(self, *, release_all: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            writes = []
            for key_period, lease in self._leases.items():
                if release_all or (now - lease.last_take >= IDLE_SECONDS):
                    idle = [max(0, lease.held[i] - lease.used[i]) for i in range(3)]
                    _sub(lease.held, idle)
                    _add(lease.release, idle)
                beat = any(lease.held) and now - lease.beat >= LEASE_TTL / 4
                if any(lease.release) or any(lease.spent) or beat:
                    writes.append((key_period, _triple(lease.release), _triple(lease.spent)))
                    lease.release = [0, 0, 0]
                    lease.spent = [0, 0, 0]
                    lease.beat = now
            self._pending = 0
            self._flushed = now
        for (name, period), release, spent in writes:
            self.store.settle(name, period, release, spent, holder=self.holder, ttl=LEASE_TTL)

    @property
    def holding(self) -> bool:
        """Whether this process holds any lease or has spend not yet written back."""
        with self._lock:
            return self._pending > 0 or any(
                any(lease.held) or any(lease.spent) for lease in self._leases.values()
            )

    # ------------------------------------------------------------------ status

    def status(self, *, now: datetime | None = None) -> list[BudgetState]:
        """Every budget's current period (after writing this process's spend back)."""
        self.flush()
        states = []
        for spec in self.specs:
            key_period = period_start(spec.period, now)
            row = self.store.read(spec.name, key_period)
            states.append(
                BudgetState(
                    spec.name,
                    spec.period,
                    key_period,
                    spec.on_exceeded,
                    spec.limit_usd,
                    spec.limit_tokens,
                    spec.limit_calls,
                    *row,
                    scope={"destinations": spec.scope.destinations, "keys": spec.scope.keys},
                )
            )
        return states


def _held(spec: BudgetSpec, micros: int, tokens: int) -> tuple[int, int, int]:
    """What a call holds of one budget: its estimate, in the units the budget limits."""
    return (
        micros if spec.limit_usd is not None else 0,
        tokens if spec.limit_tokens is not None else 0,
        1 if spec.limit_calls is not None else 0,
    )


def _triple(values: list[int]) -> tuple[int, int, int]:
    return values[0], values[1], values[2]


def _add(into: list[int], amount: Iterable[int]) -> None:
    for i, value in enumerate(amount):
        into[i] += value


def _sub(into: list[int], amount: Iterable[int]) -> None:
    for i, value in enumerate(amount):
        into[i] -= value


def _limit_micros(limit_usd: float | None) -> int | None:
    return None if limit_usd is None else round(limit_usd * MICROS_PER_USD)


def exceeded_message(spec: BudgetSpec, destination: str) -> str:
    """The one sentence a refusal carries."""
    limits = ", ".join(
        f"{label} {value:g}"
        for label, value in (
            ("limit_usd", spec.limit_usd),
            ("limit_tokens", spec.limit_tokens),
            ("limit_calls", spec.limit_calls),
        )
        if value is not None
    )
    return (
        f"budget {spec.name!r} is spent for this {spec.period} ({limits}); "
        f"the call to cloud destination {destination!r} was not sent"
    )
