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

EXTRAS = {"openai": "openai", "anthropic": "anthropic", "mcp": "mcp",
          "pydantic-ai": "pydantic_ai", "langchain": "langchain_core",
          "server": "starlette", "postgres": "psycopg"}


def _key_status(router: Router, name: str) -> str | None:
    dest = router.policy.destinations[name]
    if dest.is_local:
        return None
    env = dest.api_key_env or ("ANTHROPIC_API_KEY" if dest.provider == "anthropic"
                               else "OPENAI_API_KEY")
    return f"{env} {'set' if os.environ.get(env) else 'NOT set'}"


def report(router: Router) -> dict[str, Any]:
    """Probe local destinations once and describe the configuration."""
    router.run_sync(router.health.refresh(force=True), timeout=30)
    health = router.health.snapshot()
    destinations = {}
    for name, dest in router.policy.destinations.items():
        destinations[name] = {
            "provider": dest.provider, "model": dest.model, "locality": dest.locality,
            "base_url": dest.url, "up": health[name]["up"], "detail": health[name]["detail"],
            "api_key": _key_status(router, name),
        }
    local_up = [n for n, d in destinations.items() if d["locality"] == "local" and d["up"]]
    return {
        "policy": router.policy_source,
        "destinations": destinations,
        "rules": [r.name for r in router.policy.rules] + ["default"],
        "detectors": list(router.policy.sensitivity.detectors),
        "sensitive_requests": ("served locally by " + ", ".join(local_up)) if local_up
        else "FAIL CLOSED: no local destination is up",
        "audit_log": router.audit.location,
        "probe_ttl_s": router.health.ttl,
        "extras": {k: importlib.util.find_spec(m) is not None for k, m in EXTRAS.items()},
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
        lines.append(f"  {name:<14} {d['locality']:<5} {d['provider']:<9} {d['model']:<24} "
                     f"{state:<10} {d['base_url']} ({d['detail']}{key})")
    lines += [f"rules:       {' -> '.join(data['rules'])}",
              f"detectors:   {', '.join(data['detectors'])}",
              f"sensitive:   {data['sensitive_requests']}",
              f"audit log:   {data['audit_log']}",
              "extras:      " + ", ".join(f"{k} {'yes' if v else 'no'}"
                                          for k, v in data["extras"].items())]
    down = [(n, d) for n, d in data["destinations"].items()
            if d["locality"] == "local" and not d["up"]]
    for name, d in data["destinations"].items():
        if d["detail"].startswith("not configured"):
            lines.append(f"hint:        '{name}' is {d['detail']}; until then work that would "
                         "go there runs on its fallback, or fails saying so")
    for name, d in down:
        lines.append(f"hint:        '{name}' is down: start your local server (for Ollama: "
                     f"`ollama serve` and `ollama pull {d['model']}`) or point "
                     "LF_LOCAL_BASE_URL / the policy at one that runs")
    return "\n".join(lines) + "\n"
