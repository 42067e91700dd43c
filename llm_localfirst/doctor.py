"""``llm-localfirst doctor``: what is configured, what is reachable, where the audit log is.

Builds a plain-data report from a Router (probing local destinations once) and
renders it for a terminal. Never prints secrets: only whether a key is set.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from .router import Router

__all__ = ["render", "report"]

EXTRAS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "mcp": "mcp",
    "pydantic-ai": "pydantic_ai",
    "langchain": "langchain_core",
    "server": "starlette",
    "postgres": "psycopg",
}


def _key_status(router: Router, name: str) -> str | None:
    dest = router.policy.destinations[name]
    if dest.is_local:
        return None
    env = dest.api_key_env or (
        "ANTHROPIC_API_KEY" if dest.provider == "anthropic" else "OPENAI_API_KEY"
    )
    return f"{env} {'set' if os.environ.get(env) else 'NOT set'}"


def report(router: Router) -> dict[str, Any]:
    """Probe local destinations once and describe the configuration."""
    router.lifecycle.run_sync(router.health.refresh(force=True), timeout=30)
    health = router.health.snapshot()
    destinations = {}
    for name, dest in router.policy.destinations.items():
        destinations[name] = {
            "provider": dest.provider,
            "model": dest.model,
            "locality": dest.locality,
            "base_url": dest.url,
            "up": health[name]["up"],
            "detail": health[name]["detail"],
            "api_key": _key_status(router, name),
        }
    local_up = [n for n, d in destinations.items() if d["locality"] == "local" and d["up"]]
    return {
        "policy": router.policy_source,
        "destinations": destinations,
        "rules": [r.name for r in router.policy.rules] + ["default"],
        "detectors": list(router.policy.sensitivity.detectors),
        "sensitive_requests": ("served locally by " + ", ".join(local_up))
        if local_up
        else "FAIL CLOSED: no local destination is up",
        "audit_log": router.audit.location,
        "probe_ttl_s": router.health.ttl,
        "extras": {k: importlib.util.find_spec(m) is not None for k, m in EXTRAS.items()},
        "budget": _budget_report(router),
    }


def _budget_report(router: Router) -> dict[str, Any]:
    """0.2.0's "Cloud budget" section, plus the policy's shared budgets (no store I/O)."""
    limits = router.budget
    cloud = [n for n, d in router.policy.destinations.items() if not d.is_local]
    priced = sorted(n for n in router.spend.prices if n in cloud)
    return {
        "max_cloud_calls": limits.max_cloud_calls if limits else None,
        "max_cloud_tokens": limits.max_cloud_tokens if limits else None,
        "max_cloud_cost": limits.max_cloud_cost if limits else None,
        "process_budget": limits is not None,
        "priced": priced,
        "unpriced": sorted(n for n in cloud if n not in priced),
        "budgets": [
            {
                "name": b.name,
                "period": b.period,
                "limit_usd": b.limit_usd,
                "limit_tokens": b.limit_tokens,
                "limit_calls": b.limit_calls,
                "on_exceeded": b.on_exceeded,
            }
            for b in router.policy.budgets
        ],
    }


def render(data: dict[str, Any]) -> str:
    """A terminal rendering of :func:`report`."""
    lines = [f"policy:      {data['policy']}", "destinations (the allowlist):"]
    for name, d in data["destinations"].items():
        state = "up" if d["up"] else "DOWN"
        if d["locality"] == "cloud" and d["detail"].startswith("not probed"):
            state = "not probed"
        elif d["detail"].startswith("not configured"):
            state = "not configured"
        key = f"; {d['api_key']}" if d["api_key"] and state != "not configured" else ""
        lines.append(
            f"  {name:<14} {d['locality']:<5} {d['provider']:<9} {d['model']:<24} "
            f"{state:<10} {d['base_url']} ({d['detail']}{key})"
        )
    lines += [
        f"rules:       {' -> '.join(data['rules'])}",
        f"detectors:   {', '.join(data['detectors'])}",
        f"sensitive:   {data['sensitive_requests']}",
        f"audit log:   {data['audit_log']}",
        "extras:      "
        + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in data["extras"].items()),
    ]
    lines += _render_budget(data["budget"])
    down = [
        (n, d) for n, d in data["destinations"].items() if d["locality"] == "local" and not d["up"]
    ]
    for name, d in data["destinations"].items():
        if d["detail"].startswith("not configured"):
            lines.append(
                f"hint:        '{name}' is {d['detail']}; until then work that would "
                "go there runs on its fallback, or fails saying so"
            )
    for name, d in down:
        lines.append(
            f"hint:        '{name}' is down: start your local server (for Ollama: "
            f"`ollama serve` and `ollama pull {d['model']}`) or point "
            "LF_LOCAL_BASE_URL / the policy at one that runs"
        )
    return "\n".join(lines) + "\n"


def _render_budget(b: dict[str, Any]) -> list[str]:
    lines = ["Cloud budget:"]
    if not b["process_budget"] and not b["budgets"]:
        lines.append("  (none configured — cloud usage is accounted but not capped)")
    if b["process_budget"]:
        lines += [
            f"  max_cloud_calls       = {b['max_cloud_calls']}",
            f"  max_cloud_tokens      = {b['max_cloud_tokens']}",
            f"  max_cloud_cost        = {b['max_cloud_cost']}",
        ]
    for spec in b["budgets"]:
        limits = ", ".join(
            f"{k} {spec[k]:g}"
            for k in ("limit_usd", "limit_tokens", "limit_calls")
            if spec[k] is not None
        )
        lines.append(
            f"  budget {spec['name']!r}: {limits} per {spec['period']}, "
            f"on_exceeded {spec['on_exceeded']} (shared through the audit store)"
        )
    lines.append(f"  priced models         = {', '.join(b['priced']) or '(none)'}")
    if b["unpriced"]:
        lines.append(
            f"  unpriced cloud models = {', '.join(b['unpriced'])}  (set LF_PRICES to cost them)"
        )
    return lines
