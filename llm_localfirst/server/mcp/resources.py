"""The MCP resources: decisions, one decision, the savings ledger, the policy, health.

This module owns the read-only views an MCP client can open:

- ``audit://decisions``: recent routing decisions, newest first; the template
  ``audit://decisions{?face,destination,outcome,locality,since,until,limit}``
  filters them;
- ``audit://decisions/{id}``: one decision;
- ``audit://savings``: the savings ledger (:func:`~llm_localfirst.agents.savings_report`);
- ``policy://current``: the active policy with secrets redacted;
- ``status://destinations``: destination health, freshly probed when stale.

Every view is JSON. Decisions are read from the router's audit store, the same
store the proxy, the CLI and the Python API write to, so a client sees decisions
made anywhere on the machine. Blocking reads run on a worker thread (the SDK runs
sync resource functions there).

It must never write to the audit store, show prompt or completion text (the log
holds none), or show a secret.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from ...agents.savings import savings_report
from ...audit.store import MAX_LIMIT, AuditFilter
from ...router import Router

__all__ = ["redacted_policy", "register_resources"]

JSON = "application/json"
#: Rows returned when the client gives no ``limit``.
DEFAULT_LIMIT = 50
_ID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
_FLUSH_SECONDS = 5.0


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def _bad(message: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=message)


def decisions_json(
    router: Router,
    *,
    face: str | None = None,
    destination: str | None = None,
    outcome: str | None = None,
    locality: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: str | int | None = None,
) -> str:
    """Recent decisions as JSON: ``{"filter": ..., "count": n, "decisions": [...]}``.

    Raises:
        MCPError: ``INVALID_PARAMS`` for a bad filter value (the message names it).
    """
    try:
        rows = int(limit) if limit not in (None, "") else DEFAULT_LIMIT
    except (TypeError, ValueError):
        raise _bad(f"limit must be an integer between 1 and {MAX_LIMIT}, got {limit!r}") from None
    if locality not in (None, "", "local", "cloud"):
        raise _bad(f"locality must be 'local' or 'cloud', got {locality[:40]!r}")
    try:
        flt = AuditFilter(
            face=face or None,
            destination=destination or None,
            outcome=outcome or None,
            locality=locality or None,
            since=since or None,
            until=until or None,
            limit=rows,
        )
    except ValueError as exc:
        raise _bad(str(exc)) from None
    router.flush(_FLUSH_SECONDS)
    records = router.audit.query(flt)
    return _dump(
        {
            "filter": {
                k: v
                for k, v in (
                    ("face", flt.face),
                    ("destination", flt.destination),
                    ("outcome", flt.outcome),
                    ("locality", flt.locality),
                    ("since", flt.since),
                    ("until", flt.until),
                )
                if v
            },
            "limit": flt.limit,
            "count": len(records),
            "decisions": [r.to_dict() for r in records],
        }
    )


def redacted_policy(router: Router) -> dict[str, Any]:
    """The active policy as data, safe to show.

    A policy names the environment variables that hold keys (``api_key_env``), never
    the keys; URLs lose any query string or fragment, where some servers take a key.
    """
    data = router.policy.redacted()
    for dest in data.get("destinations", {}).values():
        url = dest.get("base_url")
        if isinstance(url, str):
            parts = urlsplit(url)
            dest["base_url"] = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return {
        "source": router.policy_source,
        "policy": data,
        "note": "API keys are never included; api_key_env names the variable that holds one.",
    }


def register_resources(server: MCPServer[Any], router: Router) -> None:
    """Add the resources and templates to ``server``, bound to ``router``."""

    @server.resource(
        "audit://decisions",
        name="decisions",
        title="Recent routing decisions",
        mime_type=JSON,
        description=(
            f"The {DEFAULT_LIMIT} most recent routing decisions on this machine, "
            "newest first, from every face (MCP, proxy, Python, CLI, worker). No "
            "prompt text is ever stored. Filter with audit://decisions?face=mcp"
            "&destination=local&outcome=refused&limit=20."
        ),
    )
    def decisions() -> str:
        return decisions_json(router)

    @server.resource(
        "audit://decisions/{id}",
        name="decision",
        title="One routing decision",
        mime_type=JSON,
        description="One decision by its audit id (as returned by every tool).",
    )
    def decision(id: str) -> str:
        record = router.audit.get(id) if _ID.match(id) else None
        if record is None:
            router.flush(_FLUSH_SECONDS)
            record = router.audit.get(id) if _ID.match(id) else None
        if record is None:
            raise ResourceNotFoundError(f"no decision with id {id[:80]!r}")
        return _dump(record.to_dict())

    @server.resource(
        "audit://decisions{?face,destination,outcome,locality,since,until,limit}",
        name="decisions_filtered",
        title="Routing decisions, filtered",
        mime_type=JSON,
        description=(
            "Decisions filtered by face (python, cli, mcp, proxy, worker), "
            "destination, outcome (ok, error, refused, dry_run, cancelled), "
            "locality (local, cloud), since/until (ISO-8601) and limit (1-1000)."
        ),
    )
    def decisions_filtered(
        face: str | None = None,
        destination: str | None = None,
        outcome: str | None = None,
        locality: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: str | None = None,
    ) -> str:
        return decisions_json(
            router,
            face=face,
            destination=destination,
            outcome=outcome,
            locality=locality,
            since=since,
            until=until,
            limit=limit,
        )

    @server.resource(
        "audit://savings",
        name="savings",
        title="Savings ledger",
        mime_type=JSON,
        description=(
            "Tokens processed on local models (all faces, and per face) and what "
            "they would have cost on the policy's reference cloud model; and, under "
            "'delegation', the cloud tokens directors never spent: the whole source "
            "when the worker read paths itself, only the answer for inline source."
        ),
    )
    def savings() -> str:
        return _dump(savings_report(router).to_dict())

    @server.resource(
        "policy://current",
        name="policy",
        title="Active routing policy",
        mime_type=JSON,
        description=(
            "The routing policy in force: destinations (the allowlist), "
            "rules, default, sensitivity settings. Secrets redacted."
        ),
    )
    def policy() -> str:
        return _dump(redacted_policy(router))

    @server.resource(
        "status://destinations",
        name="destinations",
        title="Destination health",
        mime_type=JSON,
        description=(
            "Whether each destination is up (local ones are probed when "
            "the cached result is stale), its locality and breaker state."
        ),
    )
    async def destinations() -> str:
        await router.health.refresh()
        return _dump(
            {
                "policy_source": router.policy_source,
                "local": list(router.policy.local_names),
                "destinations": router.health.snapshot(),
            }
        )
