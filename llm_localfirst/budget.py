"""Prices, cost, and cloud spend ceilings held across processes.

This module owns what a call costs and whether a cloud call may start:

- :class:`Price` (USD per million tokens) and :func:`cost_micros`: the cost of a call
  in integer micro-USD (1 USD = 1,000,000), rounded up, so sums are exact.
- :class:`Ledger`: the in-process tally of 0.2.0 (calls, tokens, cost by locality).
- :class:`Budget`: 0.2.0's per-process ceilings (``LF_MAX_CLOUD_CALLS``,
  ``LF_MAX_CLOUD_TOKENS``, ``LF_MAX_CLOUD_COST``), checked against the ledger.
- :class:`Spend`: what a Router holds: the ledger, 0.2.0's budget, and the policy's
  ``budgets:`` enforced by :class:`~llm_localfirst.budget_gate.BudgetGate` against
  the shared store (reserve an estimate before a cloud call, settle the real cost
  after; see that module for the bound on overshoot).

It ships no price table: prices are configuration (the policy's ``price``, or
``LF_PRICES``). A cloud destination without a price is *unpriced*, never free. It
must never read the environment (the edges do) nor decide routes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from .errors import BudgetExceeded, PolicyError
from .request import Usage

if TYPE_CHECKING:
    from .audit.budget_store import BudgetStore
    from .budget_gate import BudgetGate, BudgetState, Reservation
    from .policy.schema import BudgetSpec, Policy

__all__ = [
    "MICROS_PER_USD",
    "Budget",
    "BudgetExceeded",
    "CallRecord",
    "Ledger",
    "Price",
    "Spend",
    "Usage",
    "cost_micros",
    "input_token_bound",
    "normalise_usage",
    "period_start",
]

#: Costs are integers in micro-USD.
MICROS_PER_USD = 1_000_000
#: Output tokens reserved for a call that sets no ``max_tokens``.
DEFAULT_OUTPUT_ESTIMATE = 1024
Period = Literal["day", "week", "month", "total"]


@dataclass(frozen=True)
class Price:
    """USD per million tokens, input and output (0.2.0's ``Price(0.8, 4.0)``)."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, usage: Usage) -> float:
        """The cost of ``usage`` in USD."""
        return (
            usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok
        ) / 1_000_000

    def micros(self, tokens_in: int, tokens_out: int) -> int:
        """The cost in micro-USD, rounded up (USD per million tokens = micro-USD per token)."""
        return cost_micros(self, tokens_in, tokens_out)


def cost_micros(price: Price, tokens_in: int, tokens_out: int) -> int:
    """Integer micro-USD for a call; rounded up so a ceiling is never undercounted."""
    return math.ceil(tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok - 1e-9)


def input_token_bound(texts: Iterable[str], messages: int, extra_bytes: int = 0) -> int:
    """An upper bound on a request's input tokens: its UTF-8 bytes, plus 8 per message.

    Byte-level BPE tokenizers (OpenAI, Anthropic, Llama) never make a token of less
    than one byte, so bytes bound tokens; 8 per message covers role and separator
    tokens. Reserving this much (not ``chars / 4``) is what keeps a budget from being
    overshot by the input side of the calls in flight.
    """
    return (
        sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) + 8 * messages + 8 + extra_bytes
    )


def prices_of(policy: Policy) -> dict[str, Price]:
    """The ``price`` of every destination that has one, by destination name."""
    return {
        name: Price(d.price.input, d.price.output)
        for name, d in policy.destinations.items()
        if d.price is not None
    }


def _first_int(raw: Mapping[str, Any], *keys: str) -> int:
    for key in keys:
        value = raw.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return 0


def normalise_usage(raw: object) -> Usage:
    """Read an OpenAI or Anthropic usage payload into :class:`Usage` (0 when absent)."""
    if not isinstance(raw, Mapping):
        return Usage()
    return Usage(
        _first_int(raw, "input_tokens", "prompt_tokens")
        + _first_int(raw, "cache_creation_input_tokens")
        + _first_int(raw, "cache_read_input_tokens"),
        _first_int(raw, "output_tokens", "completion_tokens"),
    )


# ---------------------------------------------------------------------- the 0.2.0 ledger


@dataclass(frozen=True)
class CallRecord:
    """One completed call as the ledger accounted it (``cost`` None = unpriced)."""

    model: str
    target: str
    usage: Usage
    cost: float | None


def _name_and_target(model: Any, target: str | None) -> tuple[str, str]:
    if isinstance(model, str):
        return model, target or "cloud"
    name = getattr(model, "destination", None) or getattr(model, "name", None) or str(model)
    return str(name), str(target or getattr(model, "target", "cloud"))


class Ledger:
    """An in-process running tally of calls, tokens and spend, split by locality.

    Every :class:`~llm_localfirst.Router` keeps one (``router.ledger``). It is a guard
    rail for one process; budgets shared across instances live in the audit store
    (see :mod:`llm_localfirst.budget_gate`). It keeps totals per destination, so a
    long-running server's ledger does not grow; :attr:`records` holds the most recent
    calls only.

    Args:
        prices: Destination name -> :class:`Price`.
        keep: How many recent :class:`CallRecord` to keep in :attr:`records`.
    """

    def __init__(self, prices: Mapping[str, Price] | None = None, *, keep: int = 1000) -> None:
        self.prices: dict[str, Price] = dict(prices or {})
        self._recent: deque[CallRecord] = deque(maxlen=keep)
        # (destination, target) -> [calls, input tokens, output tokens, unpriced calls]
        self._totals: dict[tuple[str, str], list[int]] = {}
        self._costs: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def record(self, model: Any, usage: Usage, *, target: str | None = None) -> CallRecord:
        """Account one completed call.

        Args:
            model: A destination name, or an object with ``name``/``destination`` and
                ``target`` (a :class:`~llm_localfirst.Decision`).
            usage: Its token counts.
            target: ``local`` or ``cloud`` when ``model`` is a plain name.
        """
        name, where = _name_and_target(model, target)
        price = self.prices.get(name)
        record = CallRecord(name, where, usage, price.cost(usage) if price else None)
        with self._lock:
            self._recent.append(record)
            row = self._totals.setdefault((name, where), [0, 0, 0, 0])
            row[0] += 1
            row[1] += usage.input_tokens
            row[2] += usage.output_tokens
            if record.cost is None:
                row[3] += 1
            else:
                self._costs[name, where] = self._costs.get((name, where), 0.0) + record.cost
        return record

    def reset(self) -> None:
        """Drop every record and total; prices are configuration and are kept."""
        with self._lock:
            self._recent.clear()
            self._totals.clear()
            self._costs.clear()

    @property
    def records(self) -> list[CallRecord]:
        """The most recent calls (up to ``keep``), oldest first."""
        with self._lock:
            return list(self._recent)

    def _rows(self, target: str | None) -> list[tuple[tuple[str, str], list[int]]]:
        with self._lock:
            return [
                (k, list(v)) for k, v in self._totals.items() if target is None or k[1] == target
            ]

    def calls(self, target: str | None = None) -> int:
        """Calls accounted (``"local"``, ``"cloud"`` or all)."""
        return sum(row[0] for _, row in self._rows(target))

    def tokens(self, target: str | None = None) -> Usage:
        """Tokens accounted (``"local"``, ``"cloud"`` or all)."""
        rows = self._rows(target)
        return Usage(sum(r[1] for _, r in rows), sum(r[2] for _, r in rows))

    def cost(self, target: str | None = None) -> float:
        """USD spent on priced calls; see :meth:`unpriced_calls` for the rest."""
        with self._lock:
            return sum(v for k, v in self._costs.items() if target is None or k[1] == target)

    def unpriced_calls(self, target: str | None = None) -> int:
        """Calls to destinations with no price (unknown cost, never counted as free)."""
        return sum(row[3] for _, row in self._rows(target))

    def by_model(self) -> dict[str, Usage]:
        """Tokens per destination."""
        totals: dict[str, Usage] = {}
        for (name, _), row in self._rows(None):
            totals[name] = totals.get(name, Usage()) + Usage(row[1], row[2])
        return totals

    def snapshot(self) -> dict[str, Any]:
        """A JSON-safe summary, for logs."""
        return {
            "calls": {
                "total": self.calls(),
                "local": self.calls("local"),
                "cloud": self.calls("cloud"),
            },
            "tokens": {
                "total": self.tokens().as_dict(),
                "local": self.tokens("local").as_dict(),
                "cloud": self.tokens("cloud").as_dict(),
            },
            "cloud_cost": self.cost("cloud"),
            "unpriced_cloud_calls": self.unpriced_calls("cloud"),
            "by_model": {name: u.as_dict() for name, u in self.by_model().items()},
        }


@dataclass(frozen=True)
class Budget:
    """0.2.0's per-process ceiling on cloud use, checked before each cloud call.

    Limits left ``None`` are not enforced; reaching a limit blocks the next cloud
    call (the overshoot is at most the one call that crossed it). ``max_cloud_cost``
    (USD) needs a price for every cloud destination. ``Router.from_env`` builds one
    from ``LF_MAX_CLOUD_CALLS`` / ``LF_MAX_CLOUD_TOKENS`` / ``LF_MAX_CLOUD_COST``:
    a ``total`` budget for the life of the process.

    Raises:
        ValueError: a limit that is not positive.
    """

    max_cloud_calls: int | None = None
    max_cloud_tokens: int | None = None
    max_cloud_cost: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_cloud_calls", "max_cloud_tokens", "max_cloud_cost"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")

    @property
    def is_empty(self) -> bool:
        """True when no limit is set."""
        return (
            self.max_cloud_calls is None
            and self.max_cloud_tokens is None
            and self.max_cloud_cost is None
        )

    def exceeded(self, ledger: Ledger) -> str | None:
        """A reason if a limit is spent, else ``None``."""
        if self.max_cloud_calls is not None:
            calls = ledger.calls("cloud")
            if calls >= self.max_cloud_calls:
                return f"cloud call budget spent: {calls:_}/{self.max_cloud_calls:_} calls"
        if self.max_cloud_tokens is not None:
            tokens = ledger.tokens("cloud").total_tokens
            if tokens >= self.max_cloud_tokens:
                return f"cloud token budget spent: {tokens:_}/{self.max_cloud_tokens:_} tokens"
        if self.max_cloud_cost is not None:
            cost = ledger.cost("cloud")
            if cost >= self.max_cloud_cost:
                return f"cloud cost budget spent: {cost:.4f}/{self.max_cloud_cost:.4f}"
        return None

    def check(self, ledger: Ledger) -> None:
        """Raise :class:`BudgetExceeded` if a limit is spent.

        Raises:
            BudgetExceeded: a limit is reached.
        """
        reason = self.exceeded(ledger)
        if reason is not None:
            raise BudgetExceeded(reason, budget="process")

    def require_prices_for(self, cloud_names: Iterable[Any], prices: Mapping[str, Price]) -> None:
        """Refuse a cost ceiling that could never fire (an unpriced cloud destination).

        Raises:
            PolicyError: ``max_cloud_cost`` is set and a cloud destination has no price.
        """
        if self.max_cloud_cost is None:
            return
        names = [n if isinstance(n, str) else getattr(n, "name", str(n)) for n in cloud_names]
        missing = sorted(n for n in names if n not in prices)
        if missing:
            raise PolicyError(
                "max_cloud_cost needs a price for every allowlisted cloud model; missing: "
                f"{', '.join(missing)}. Set LF_PRICES, e.g. '{{\"haiku\": [0.8, 4.0]}}' "
                "(input and output USD per million tokens), or use max_cloud_tokens / "
                "max_cloud_calls, which need no prices.",
                source="<budget>",
            )


# ---------------------------------------------------------------------- shared budgets


_today: tuple[float, date] = (0.0, date.min)


def _utc_today() -> date:
    """Today's UTC date, recomputed at most once a second (this runs per cloud call)."""
    global _today
    now = time.time()
    checked, day = _today
    if now - checked >= 1.0 or now < checked:
        day = datetime.fromtimestamp(now, UTC).date()
        _today = (now, day)
    return day


def period_start(period: str, now: datetime | None = None) -> str:
    """The key of the current period: its first day (UTC, ``YYYY-MM-DD``), or ``total``."""
    if period == "total":
        return "total"
    day = now.astimezone(UTC).date() if now is not None else _utc_today()
    key = _period_keys.get((period, day))
    if key is None:
        key = _period_key(period, day)
        if len(_period_keys) > 64:
            _period_keys.clear()
        _period_keys[period, day] = key
    return key


_period_keys: dict[tuple[str, date], str] = {}


def _period_key(period: str, day: date) -> str:
    if period == "week":
        day = day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    elif period == "month":
        day = day.replace(day=1)
    return day.isoformat()


def check_budget_prices(
    specs: Iterable[BudgetSpec], prices: Mapping[str, Price], cloud: Iterable[str]
) -> list[str]:
    """Problems: a USD budget whose scope holds an unpriced cloud destination."""
    problems = []
    cloud_names = list(cloud)
    for spec in specs:
        if spec.limit_usd is None:
            continue
        scope = cloud_names if spec.scope.destinations is None else spec.scope.destinations
        missing = [n for n in scope if n in cloud_names and n not in prices]
        if missing:
            problems.append(
                f"budgets {spec.name!r}: limit_usd over unpriced cloud destination(s) "
                f"{', '.join(missing)}; give them a price (policy 'price' or LF_PRICES) "
                "or use limit_tokens / limit_calls"
            )
    return problems


class Spend:
    """The router's money side: the ledger, 0.2.0's :class:`Budget` and the policy's budgets.

    The shared store is opened on the first cloud call that a budget covers (never
    at construction). Blocking stores run in a worker thread.

    Args:
        policy: The active policy (its ``budgets`` and destination prices).
        ledger: The in-process tally (its ``prices`` override the policy's).
        budget: 0.2.0's per-process ceiling, or ``None``.
        store_factory: Opens the shared counters (the audit store's database).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        ledger: Ledger,
        budget: Budget | None,
        store_factory: Callable[[], BudgetStore],
    ) -> None:
        self.ledger = ledger
        self.budget = budget
        self.prices = {**prices_of(policy), **ledger.prices}
        ledger.prices.update(self.prices)
        self.cloud = tuple(n for n, d in policy.destinations.items() if not d.is_local)
        self.local = tuple(policy.sensitivity.pin_to or policy.local_names)
        self.specs = tuple(policy.budgets)
        self._store_factory = store_factory
        self._gate: BudgetGate | None = None
        self._gate_lock = threading.Lock()
        self._flushing = False
        self._stop = threading.Event()
        if budget is not None:
            budget.require_prices_for(self.cloud, self.prices)
        problems = check_budget_prices(self.specs, self.prices, self.cloud)
        if problems:
            raise PolicyError("; ".join(problems), source="<budgets>", problems=tuple(problems))

    @property
    def active(self) -> bool:
        """Whether cloud calls need a check at all."""
        return self.budget is not None or bool(self.specs)

    @property
    def gate(self) -> BudgetGate:
        """The policy's budgets over the shared store (opened on first use)."""
        gate = self._gate
        if gate is None:
            from .budget_gate import BudgetGate

            with self._gate_lock:
                if self._gate is None:
                    self._gate = BudgetGate(
                        self.specs, self.prices, self.cloud, self._store_factory()
                    )
                    if self._gate.store.blocking:
                        self._start_flusher(self._gate)
                gate = self._gate
        return gate

    def _start_flusher(self, gate: BudgetGate) -> None:
        """A daemon thread that writes spend back and hands back idle leases twice a second,
        so an instance that goes quiet does not keep its share of a budget."""

        def run() -> None:
            while not self._stop.wait(0.5):
                if not gate.holding:
                    continue
                try:
                    gate.flush()
                except Exception as exc:  # the store is down: try again next tick
                    logging.getLogger("llm_localfirst").warning(
                        "budget write-back failed (%s); retrying", type(exc).__name__
                    )

        threading.Thread(target=run, name="lf-budget-flush", daemon=True).start()

    def cost(self, destination: str, tokens_in: int | None, tokens_out: int | None) -> int | None:
        """A call's cost in micro-USD; ``None`` when the destination has no price."""
        price = self.prices.get(destination)
        if price is None:
            return None
        return cost_micros(price, tokens_in or 0, tokens_out or 0)

    async def reserve(
        self, destination: str, key: str | None, tokens_in: int, max_tokens: int | None
    ) -> Reservation | BudgetSpec | None:
        """Check 0.2.0's budget, then reserve against the policy's budgets in scope.

        Served from this process's lease in memory; a store round trip (in a worker
        thread) only when a lease runs short.

        Returns:
            A :class:`Reservation` to settle, ``None`` (nothing to hold), or the spent
            :class:`BudgetSpec` whose ``on_exceeded`` is ``local``.

        Raises:
            BudgetExceeded: a budget is spent and says ``refuse`` (or 0.2.0's budget).
        """
        if self.budget is not None:
            self.budget.check(self.ledger)
        if not self.specs:
            return None
        gate = self.gate
        fast = gate.try_reserve(destination, key, tokens_in, max_tokens)
        if fast is not False:
            return fast
        if gate.store.blocking:
            got = await asyncio.to_thread(gate.reserve, destination, key, tokens_in, max_tokens)
        else:
            got = gate.reserve(destination, key, tokens_in, max_tokens)
        from .budget_gate import Reservation, exceeded_message

        if got is None or isinstance(got, Reservation):
            return got
        spec = got
        if spec.on_exceeded == "refuse" or not self.local:
            unit, limit = next(
                (u, v)
                for u, v in (
                    ("usd", spec.limit_usd),
                    ("tokens", spec.limit_tokens),
                    ("calls", spec.limit_calls),
                )
                if v is not None
            )
            why = "" if self.local else " (on_exceeded is local, but the policy has none)"
            raise BudgetExceeded(
                exceeded_message(spec, destination) + why,
                budget=spec.name,
                destination=destination,
                limit=float(limit),
                unit=unit,
            )
        return spec

    def settle(self, reservation: Reservation, usage: Usage | None) -> None:
        """Account a finished call (``usage`` None: not spent); write back off the loop."""
        gate = reservation.gate or self.gate
        _, due = gate.settle(reservation, usage)
        if due:
            self._flush_soon(gate)

    def _flush_soon(self, gate: BudgetGate) -> None:
        if not gate.store.blocking:
            gate.flush()
            return
        with self._gate_lock:
            if self._flushing:
                return
            self._flushing = True

        def run() -> None:
            try:
                gate.flush()
            finally:
                self._flushing = False

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            run()
            return
        loop.run_in_executor(None, run).add_done_callback(_log_settle_failure)

    def status(self) -> list[BudgetState]:
        """Every policy budget's current period (opens the store)."""
        return self.gate.status() if self.specs else []

    def close(self) -> None:
        """Write back settled spend and hand back every lease (the router is closing)."""
        self._stop.set()
        if self._gate is not None:
            try:
                self._gate.flush(release_all=True)
            except Exception as exc:  # the store may be gone; leases then stay reserved
                logging.getLogger("llm_localfirst").warning(
                    "could not hand back budget leases (%s)", type(exc).__name__
                )


def _log_settle_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logging.getLogger("llm_localfirst").warning(
            "budget settle failed (%s); its reservation stays held (counted as spent)",
            type(future.exception()).__name__,
        )
