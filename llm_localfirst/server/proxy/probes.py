"""``GET /healthz`` and ``GET /readyz``: what load balancers and containers ask.

``/healthz`` (liveness) says only that the process answers HTTP. ``/readyz``
(readiness) says whether the proxy can do its job: a policy is loaded, the audit
store answers and can be written (every request must leave a row), and which
destinations are up. Both are unauthenticated, so they must never reveal anything
private: destination names and up/down only, no URLs, models, hosts, paths,
keys, error details or counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from ...audit import AuditFilter
from ...router import Router

__all__ = ["liveness", "readiness"]

log = logging.getLogger("llm_localfirst.proxy")

#: Longest a readiness check may wait on the audit store or a probe.
CHECK_TIMEOUT_S = 2.0


def liveness() -> dict[str, Any]:
    """The ``/healthz`` body: the process is up and serving."""
    return {"status": "ok"}


def _audit_writable(router: Router) -> bool:
    """The store answers a one-row read, its writer runs, and a file store can be written."""
    if router.lifecycle.writer.closed:
        return False
    store = router.audit
    store.query(AuditFilter(limit=1))
    path = getattr(store, "path", None)
    if path is not None:
        target = path if os.path.exists(path) else os.path.dirname(path) or "."
        return os.access(target, os.W_OK)
    return True


async def readiness(router: Router) -> tuple[int, dict[str, Any]]:
    """The ``/readyz`` status and body: 200 when ready, 503 (with what is wrong) when not.

    Ready means a policy is loaded and the audit store is writable. Destinations
    are reported (``{"name": {"up": bool}}``) but do not decide readiness: a proxy
    whose local model is down still serves what may go elsewhere, and still
    refuses, with an audit row, what may not.
    """
    checks: dict[str, str] = {}
    policy = getattr(router, "policy", None)
    checks["policy"] = "ok" if policy is not None and policy.destinations else "not loaded"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            writable = await asyncio.to_thread(_audit_writable, router)
    except Exception as exc:  # any failure means "not writable"; the detail stays in the log
        log.warning("readiness: audit store check failed (%s)", type(exc).__name__)
        writable = False
    checks["audit"] = "ok" if writable else "not writable"
    destinations: dict[str, dict[str, bool]] = {}
    if policy is not None:
        with contextlib.suppress(TimeoutError):  # a slow probe leaves the cached state
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                if router.health.stale():
                    await router.health.refresh()
        destinations = {name: {"up": router.health.usable(name)} for name in policy.destinations}
    ready = all(v == "ok" for v in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": checks,
        "destinations": destinations,
    }
    return (200 if ready else 503), body
