"""Prometheus metrics of the proxy, in a registry owned by one app (no global state).

This module owns the metric families and how they are fed: counters come from
the router's audit records (one listener call per request, only for the
``proxy`` face), latency histograms from the proxy's own clock. It must never
label a metric with anything a client controls freely (prompt text, keys, tags,
A/B keys): labels are destination names, localities, outcomes, endpoints and
detector names, all bounded by the policy.

Latency, per request:

- ``total``: from the request's arrival to the last byte of the response;
- ``upstream``: the time spent in destination attempts (for a stream: until the
  first chunk);
- ``overhead``: what the proxy and router add, i.e. total minus upstream (for a
  stream: time to first byte minus upstream time to first chunk).
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ..audit.record import AuditRecord

__all__ = ["CONTENT_TYPE_LATEST", "ProxyMetrics", "RequestClock"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0)
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
    "llm_localfirst_proxy_clock", default=None)


class ProxyMetrics:
    """The proxy's metric families, registered in their own ``CollectorRegistry``.

    Args:
        process: Also export the process collector (CPU, memory, file descriptors).
    """

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "llm_localfirst_requests", "Proxy requests by endpoint, destination, locality and "
            "outcome (one per audit row).", ["endpoint", "destination", "locality", "outcome"],
            registry=r)
        self.fallbacks = Counter(
            "llm_localfirst_fallbacks", "Requests answered by a fallback destination.",
            ["destination"], registry=r)
        self.fail_closed = Counter(
            "llm_localfirst_fail_closed", "Sensitive requests refused because no local "
            "destination could serve them (nothing was sent).", registry=r)
        self.refusals = Counter(
            "llm_localfirst_refusals", "Requests refused by the router, by error class.",
            ["error"], registry=r)
        self.detector_hits = Counter(
            "llm_localfirst_detector_hits", "Requests in which a sensitivity detector fired.",
            ["detector"], registry=r)
        self.total = Histogram(
            "llm_localfirst_request_duration_seconds", "Time from request arrival to the last "
            "response byte.", ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.upstream = Histogram(
            "llm_localfirst_upstream_duration_seconds", "Time spent in destination attempts "
            "(streams: until the first chunk).", ["endpoint"], buckets=_LATENCY_BUCKETS,
            registry=r)
        self.overhead = Histogram(
            "llm_localfirst_overhead_seconds", "Latency the proxy and router add: total minus "
            "upstream (streams: time to first byte minus upstream time to first chunk).",
            ["endpoint"], buckets=_OVERHEAD_BUCKETS, registry=r)
        self.in_flight = Gauge(
            "llm_localfirst_in_flight_requests", "Proxy requests being handled.", registry=r)
        self.reloads = Counter(
            "llm_localfirst_policy_reloads", "Policy reloads, by result.", ["result"],
            registry=r)
        if process:
            ProcessCollector(registry=r)

    # ------------------------------------------------------------------ feeding

    def listener(self, record: AuditRecord) -> None:
        """Router listener: count one audit row of the proxy face. Must be fast."""
        if record.face != "proxy":
            return
        self.requests.labels(record.endpoint, record.destination or "none",
                             record.locality or "none", record.outcome).inc()
        if record.fell_back and record.destination:
            self.fallbacks.labels(record.destination).inc()
        if record.outcome == "refused" and record.error_class:
            self.refusals.labels(record.error_class).inc()
            if record.error_class == "LocalUnavailable":
                self.fail_closed.inc()
        for reason in record.sensitive_reasons:
            if reason.startswith("detector"):
                self.detector_hits.labels(reason.partition(":")[2] or "error").inc()
        clock = _current.get()
        if clock is not None and record.attempts:
            clock.upstream_s = sum(a.latency_ms for a in record.attempts) / 1000

    @staticmethod
    def start() -> RequestClock:
        """Start the clock of the request handled by the current task."""
        clock = RequestClock(time.perf_counter())
        _current.set(clock)
        return clock

    def finish(self, endpoint: str, clock: RequestClock) -> None:
        """Observe the latency histograms of a finished request."""
        now = time.perf_counter()
        self.total.labels(endpoint).observe(now - clock.started)
        upstream = clock.upstream_s
        if upstream is None:
            return
        self.upstream.labels(endpoint).observe(upstream)
        end = clock.first_byte if clock.first_byte is not None else now
        self.overhead.labels(endpoint).observe(max(0.0, end - clock.started - upstream))

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
