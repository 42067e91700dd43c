"""Prometheus metrics of the proxy, in a registry owned by one app (no global state).

This module owns the metric families and how they are fed: counters come from
the router's audit records (one listener call per request, only for the
``proxy`` face), latency histograms from the proxy's own clock. It must never
label a metric with anything a client controls freely (prompt text, keys, tags,
A/B keys): labels are destination names, localities, outcomes, endpoints, error
classes and detector names, all bounded by the code and the policy.

Latency, per request:

- ``total``: from the request's arrival to the last byte of the response;
- ``upstream``: the time spent in destination attempts (for a stream: until the
  first chunk);
- ``overhead``: what the proxy and router add, i.e. total minus upstream (for a
  stream: time to first byte minus upstream time to first chunk).

Why a custom collector rather than ``Counter(...).labels(...).inc()``: those take a
lock and build a label key on every call, which showed up as a fifth of the
proxy's own CPU time in a profile. Everything here is updated on the server's
event loop only (the listener ignores other faces), so plain numbers suffice and
``prometheus_client`` renders them at scrape time.
"""

from __future__ import annotations

import bisect
import contextvars
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ...audit.record import AuditRecord

if TYPE_CHECKING:
    from .workers import MetricsSharing

log = logging.getLogger("llm_localfirst")
__all__ = ["CONTENT_TYPE_LATEST", "ProxyMetrics", "RequestClock"]

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


@dataclass(slots=True)
class RequestClock:
    """Timing facts of one proxy request, filled in as it runs.

    Attributes:
        started: ``perf_counter`` at arrival.
        upstream_s: Seconds in destination attempts, from the audit record.
        first_byte: ``perf_counter`` when the first body byte of a stream was sent.
    """

    started: float
    upstream_s: float | None = None
    first_byte: float | None = None


# The request being handled in this task. The router calls listeners synchronously
# inside the request's own task, so the listener finds the clock of its request.
_current: contextvars.ContextVar[RequestClock | None] = contextvars.ContextVar(
    "llm_localfirst_proxy_clock", default=None
)


class _Histogram:
    """Bucket counts and a sum per label value (cumulated at scrape time)."""

    __slots__ = ("bounds", "series")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.series: dict[str, list[float]] = {}  # label -> [count per bucket..., +Inf, sum]

    def observe(self, label: str, value: float) -> None:
        row = self.series.get(label)
        if row is None:
            row = self.series[label] = [0.0] * (len(self.bounds) + 2)
        row[bisect.bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def family(self, name: str, documentation: str, label: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, documentation, labels=[label])
        for value, row in sorted(self.series.items()):
            running = 0.0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip((*map(repr, self.bounds), "+Inf"), row[:-1], strict=True):
                running += count
                buckets.append((bound, running))
            family.add_metric([value], buckets, row[-1])
        return family


class ProxyMetrics:
    """The proxy's metric families, registered in their own ``CollectorRegistry``.

    Args:
        process: Also export the process collector (CPU, memory, file descriptors).
    """

    def __init__(self, *, process: bool = True) -> None:
        self.requests: defaultdict[tuple[str, str, str, str], int] = defaultdict(int)
        self.fallbacks: defaultdict[str, int] = defaultdict(int)
        self.refusals: defaultdict[str, int] = defaultdict(int)
        self.detector_hits: defaultdict[str, int] = defaultdict(int)
        self.reloads: defaultdict[str, int] = defaultdict(int)
        self.fail_closed = 0
        self.in_flight = 0
        #: Reads every policy budget's current period (set by ``create_app``).
        self.budgets: Callable[[], list[Any]] | None = None
        #: Adds up the other workers' samples under ``serve --workers`` (else None).
        self.shared: MetricsSharing | None = None
        self.total = _Histogram(_LATENCY_BUCKETS)
        self.upstream = _Histogram(_LATENCY_BUCKETS)
        self.overhead = _Histogram(_OVERHEAD_BUCKETS)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)
        if process:
            ProcessCollector(registry=self.registry)

    # ------------------------------------------------------------------ feeding

    def listener(self, record: AuditRecord) -> None:
        """Router listener: count one audit row of the proxy face. Must be fast."""
        if record.face != "proxy":
            return
        self.requests[
            record.endpoint, record.destination or "none", record.locality or "none", record.outcome
        ] += 1
        if record.fell_back and record.destination:
            self.fallbacks[record.destination] += 1
        if record.outcome == "refused" and record.error_class:
            self.refusals[record.error_class] += 1
            if record.error_class == "LocalUnavailable":
                self.fail_closed += 1
        for reason in record.sensitive_reasons:
            if reason.startswith("detector"):
                self.detector_hits[reason.partition(":")[2] or "error"] += 1
        clock = _current.get()
        if clock is not None and record.attempts:
            clock.upstream_s = sum(a.latency_ms for a in record.attempts) / 1000

    def start(self) -> RequestClock:
        """Start the clock of the request handled by the current task."""
        clock = RequestClock(time.perf_counter())
        _current.set(clock)
        self.in_flight += 1
        return clock

    def finish(self, endpoint: str, clock: RequestClock) -> None:
        """Observe the latency histograms of a finished request."""
        self.in_flight -= 1
        now = time.perf_counter()
        self.total.observe(endpoint, now - clock.started)
        upstream = clock.upstream_s
        if upstream is None:
            return
        self.upstream.observe(endpoint, upstream)
        end = clock.first_byte if clock.first_byte is not None else now
        self.overhead.observe(endpoint, max(0.0, end - clock.started - upstream))

    def reloaded(self, result: str) -> None:
        """Count one policy reload attempt (``ok`` or ``error``)."""
        self.reloads[result] += 1

    # ------------------------------------------------------------------ exposition

    def collect(self) -> Iterator[Metric]:
        """The metric families (``prometheus_client`` collector protocol)."""
        p = "llm_localfirst_"
        requests = CounterMetricFamily(
            p + "requests",
            "Proxy requests by endpoint, destination, locality and outcome (one per audit row).",
            labels=["endpoint", "destination", "locality", "outcome"],
        )
        for key, count in sorted(self.requests.items()):
            requests.add_metric(list(key), count)
        yield requests
        yield self._counter(
            p + "fallbacks",
            "Requests answered by a fallback destination.",
            "destination",
            self.fallbacks,
        )
        yield CounterMetricFamily(
            p + "fail_closed",
            "Sensitive requests refused because no local destination "
            "could serve them (nothing was sent).",
            value=self.fail_closed,
        )
        yield self._counter(
            p + "refusals",
            "Requests refused by the router, by error class.",
            "error",
            self.refusals,
        )
        yield self._counter(
            p + "detector_hits",
            "Requests in which a sensitivity detector fired.",
            "detector",
            self.detector_hits,
        )
        yield self._counter(
            p + "policy_reloads", "Policy reloads, by result.", "result", self.reloads
        )
        yield GaugeMetricFamily(
            p + "in_flight_requests", "Proxy requests being handled.", value=self.in_flight
        )
        yield self.total.family(
            p + "request_duration_seconds",
            "Time from request arrival to the last response byte.",
            "endpoint",
        )
        yield self.upstream.family(
            p + "upstream_duration_seconds",
            "Time spent in destination attempts (streams: until the first chunk).",
            "endpoint",
        )
        yield self.overhead.family(
            p + "overhead_seconds",
            "Latency the proxy and router add: "
            "total minus upstream (streams: time to first byte minus "
            "upstream time to first chunk).",
            "endpoint",
        )
        yield from self._budget_gauges(p)

    def _budget_gauges(self, p: str) -> Iterator[Metric]:
        """Spend and what is left of each policy budget (read from the shared store)."""
        states = []
        if self.budgets is not None:
            try:
                states = self.budgets()
            except Exception as exc:  # a scrape must not fail on a store hiccup
                log.warning("budget gauges unavailable (%s)", type(exc).__name__)
        families = {
            name: GaugeMetricFamily(p + name, doc, labels=["budget", "period"])
            for name, doc in (
                ("budget_spent_usd", "Settled cloud spend this period, USD."),
                (
                    "budget_reserved_usd",
                    "Cloud spend reserved (instances' leases and calls in flight), USD.",
                ),
                ("budget_remaining_usd", "USD left of the budget this period."),
                ("budget_spent_tokens", "Settled cloud tokens this period."),
                ("budget_remaining_tokens", "Tokens left of the budget this period."),
                ("budget_spent_calls", "Settled cloud calls this period."),
                ("budget_remaining_calls", "Calls left of the budget this period."),
            )
        }
        for st in states:
            labels = [st.name, st.period]
            remaining = st.remaining
            families["budget_spent_usd"].add_metric(labels, st.spent_micros / 1e6)
            families["budget_reserved_usd"].add_metric(labels, st.reserved_micros / 1e6)
            families["budget_spent_tokens"].add_metric(labels, st.spent_tokens)
            families["budget_spent_calls"].add_metric(labels, st.spent_calls)
            for unit in ("usd", "tokens", "calls"):
                if remaining[unit] is not None:
                    families[f"budget_remaining_{unit}"].add_metric(labels, remaining[unit])
        yield from families.values()

    @staticmethod
    def _counter(
        name: str, documentation: str, label: str, values: dict[str, int]
    ) -> CounterMetricFamily:
        family = CounterMetricFamily(name, documentation, labels=[label])
        for value, count in sorted(values.items()):
            family.add_metric([value], count)
        return family

    def render(self) -> bytes:
        """The text exposition format of every metric (every worker's, when shared)."""
        if self.shared is not None:
            return self.shared.render(self)
        return generate_latest(self.registry)
