"""The proxy's admin API and UI under ``/admin``: audit, CSV export, report, health,
savings, reload.

Every route but the UI page requires ``Authorization: Bearer $LF_ADMIN_TOKEN``,
compared in constant time. With no token configured the routes are not mounted
at all, so ``/admin/...`` answers 404 like any unknown path. The UI page itself
holds no data; it asks for the token and calls this API.

This module never returns prompt text (audit rows hold none), never accepts a
file path from a client, and runs every blocking store call in a worker thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
from base64 import b64encode
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ...audit import AuditFilter
from ...audit.export import export_csv
from ...audit.record import AuditRecord
from ...audit.store import MAX_LIMIT
from ...errors import LocalFirstError
from ...router import Router
from ..auth import BearerTokens
from .openai_wire import Unauthorized, dumps, error_body, error_payload
from .reload import PolicyReloader

__all__ = ["admin_routes", "json_response"]

Endpoint = Callable[[Request], Awaitable[Response]]

#: Most rows one CSV export writes.
EXPORT_CAP = 100_000
_FLUSH_TIMEOUT = 2.0
_FILTER_KEYS = (
    "face",
    "destination",
    "outcome",
    "locality",
    "sensitive",
    "since",
    "until",
    "limit",
    "offset",
)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded once with the proxy's encoder."""
    return Response(dumps(data), status_code=status, headers=headers, media_type="application/json")


def error_response(exc: BaseException) -> Response:
    """The OpenAI-shaped error response of an exception."""
    status, body = error_payload(exc)
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return json_response(body, status, headers)


def _bad_filter(message: str, param: str | None = None) -> Response:
    return json_response(error_body(message, status=400, code="invalid_filter", param=param), 400)


def parse_filter(params: Any, *, paged: bool = True) -> AuditFilter:
    """An ``AuditFilter`` from query parameters.

    Raises:
        ValueError: a malformed or out-of-range value (the message names it).
    """
    unknown = sorted(set(params.keys()) - set(_FILTER_KEYS))
    if unknown:
        raise ValueError(
            f"unknown query parameter(s): {', '.join(unknown)}; known: {', '.join(_FILTER_KEYS)}"
        )
    values: dict[str, Any] = {
        k: params[k]
        for k in ("face", "destination", "outcome", "locality", "since", "until")
        if params.get(k)
    }
    sensitive = params.get("sensitive")
    if sensitive:
        lowered = sensitive.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError(f"sensitive must be true or false, got {sensitive!r}")
        values["sensitive"] = lowered in ("true", "1")
    if paged:
        for key, default in (("limit", 50), ("offset", 0)):
            raw = params.get(key)
            if raw is None or raw == "":
                values[key] = default
                continue
            try:
                values[key] = int(raw)
            except ValueError:
                raise ValueError(f"{key} must be an integer, got {raw!r}") from None
    else:
        values["limit"] = MAX_LIMIT
    return AuditFilter(**values)


class AdminAPI:
    """The admin endpoints over one router.

    Args:
        router: The router whose audit log, health and policy are served.
        token: The admin token (``LF_ADMIN_TOKEN``).
        reloader: Performs ``POST /admin/reload``.
    """

    def __init__(self, router: Router, token: str, reloader: PolicyReloader) -> None:
        self._router = router
        self._tokens = BearerTokens([token])
        self._reloader = reloader

    def _guard(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode("latin-1")
            if not self._tokens.matches(given):
                return error_response(
                    Unauthorized("admin API: send 'Authorization: Bearer <LF_ADMIN_TOKEN>'")
                )
            return await endpoint(request)

        return guarded

    async def _flush(self) -> None:
        # Read-your-writes: rows of requests that already finished are visible.
        await anyio.to_thread.run_sync(self._router.flush, _FLUSH_TIMEOUT)

    async def decisions(self, request: Request) -> Response:
        """``GET /admin/decisions``: filtered, paged audit rows, newest first."""
        try:
            flt = parse_filter(request.query_params)
        except ValueError as exc:
            return _bad_filter(str(exc))
        await self._flush()
        store = self._router.audit

        def run() -> tuple[list[AuditRecord], int]:
            return store.query(flt), store.count(flt)

        records, total = await anyio.to_thread.run_sync(run)
        return json_response(
            {
                "data": [r.to_dict() for r in records],
                "total": total,
                "limit": flt.limit,
                "offset": flt.offset,
            }
        )

    async def decision(self, request: Request) -> Response:
        """``GET /admin/decisions/{id}``: one audit row with its attempts."""
        record_id = request.path_params["id"]
        await self._flush()
        record = await anyio.to_thread.run_sync(self._router.audit.get, record_id)
        if record is None:
            return json_response(
                error_body(
                    f"no decision with id {record_id[:64]!r}", status=404, code="decision_not_found"
                ),
                404,
            )
        return json_response(record.to_dict())

    async def export_csv(self, request: Request) -> Response:
        """``GET /admin/export.csv``: every matching row (up to ``EXPORT_CAP``) as CSV."""
        try:
            flt = parse_filter(request.query_params, paged=False)
        except ValueError as exc:
            return _bad_filter(str(exc))
        await self._flush()
        store = self._router.audit

        async def rows() -> AsyncIterator[bytes]:
            offset = 0
            while offset < EXPORT_CAP:
                page = dataclasses.replace(flt, limit=MAX_LIMIT, offset=offset)
                records = await anyio.to_thread.run_sync(store.query, page)
                buffer = io.StringIO(newline="")
                export_csv(records, buffer)  # formula cells escaped (CSV injection)
                text = buffer.getvalue()
                # Each page is written with the header row; the file keeps the first only.
                yield (text if offset == 0 else text.split("\r\n", 1)[1]).encode()
                if len(records) < MAX_LIMIT:
                    break
                offset += MAX_LIMIT

        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="llm-localfirst-audit.csv"'},
        )

    async def health(self, request: Request) -> Response:
        """``GET /admin/health``: every destination's cached health (stale probes refreshed)."""
        router = self._router
        with anyio.move_on_after(5):
            await router.health.refresh()
        return json_response(
            {"destinations": router.health.snapshot(), "policy_source": router.policy_source}
        )

    async def budgets(self, request: Request) -> Response:
        """``GET /admin/budgets``: every policy budget's period, spent, reserved and left."""
        router = self._router
        states = await anyio.to_thread.run_sync(router.spend.status)
        limits = router.budget
        return json_response(
            {
                "budgets": [st.to_dict() for st in states],
                "process": None
                if limits is None
                else {
                    "max_cloud_calls": limits.max_cloud_calls,
                    "max_cloud_tokens": limits.max_cloud_tokens,
                    "max_cloud_cost": limits.max_cloud_cost,
                    "ledger": router.ledger.snapshot(),
                },
            }
        )

    async def savings(self, request: Request) -> Response:
        """``GET /admin/savings``: the savings ledger (local tokens priced at cloud rates)."""
        try:
            from ...agents.savings import savings_report
        except ImportError:
            return json_response(
                error_body(
                    "the savings ledger is not available in this installation",
                    status=501,
                    code="not_implemented",
                ),
                501,
            )
        params = request.query_params
        face, since, until = (params.get(k) or None for k in ("face", "since", "until"))
        try:
            report = await anyio.to_thread.run_sync(
                lambda: savings_report(self._router, face=face, since=since, until=until)
            )
        except ValueError as exc:
            return _bad_filter(str(exc))
        data = report.to_dict() if hasattr(report, "to_dict") else report
        return json_response(data)

    async def report(self, request: Request) -> Response:
        """``GET /admin/report?since=&until=``: the ``audit report --json`` document.

        Counts by face x locality x sensitivity reason and whether any sensitive
        request reached a non-local destination, stated from a verified chain.
        """
        from ...audit import build_report

        params = request.query_params
        since, until = (params.get(k) or None for k in ("since", "until"))
        await self._flush()
        try:
            report = await anyio.to_thread.run_sync(
                lambda: build_report(self._router.audit, since=since, until=until)
            )
        except ValueError as exc:
            return _bad_filter(str(exc))
        return json_response(report.to_dict())

    async def reload(self, request: Request) -> Response:
        """``POST /admin/reload``: re-read the policy the server started with."""
        try:
            policy = await self._reloader.reload(trigger="admin")
        except LocalFirstError as exc:
            return error_response(exc)
        return json_response(
            {
                "reloaded": True,
                "source": self._reloader.source,
                "destinations": sorted(policy.destinations),
                "rules": [r.name for r in policy.rules],
            }
        )

    def routes(self, ui: Endpoint) -> list[BaseRoute]:
        """The admin routes (the UI page is not guarded: it asks for the token itself)."""
        g = self._guard
        return [
            Route("/admin/decisions", g(self.decisions), methods=["GET"]),
            Route("/admin/decisions/{id}", g(self.decision), methods=["GET"]),
            Route("/admin/export.csv", g(self.export_csv), methods=["GET"]),
            Route("/admin/health", g(self.health), methods=["GET"]),
            Route("/admin/savings", g(self.savings), methods=["GET"]),
            Route("/admin/budgets", g(self.budgets), methods=["GET"]),
            Route("/admin/report", g(self.report), methods=["GET"]),
            Route("/admin/reload", g(self.reload), methods=["POST"]),
            Route("/admin/ui", ui, methods=["GET"]),
        ]


def _ui_page() -> tuple[bytes, str]:
    """The UI page and a Content-Security-Policy allowing only its own inline code."""
    html = resources.files(__package__).joinpath("static/admin.html").read_text("utf-8")
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag in hashes:
        for body in re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S):
            digest = b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes[tag].append(f"'sha256-{digest}'")
    csp = (
        "default-src 'none'; connect-src 'self'; img-src 'self' data:; "
        f"script-src {' '.join(hashes['script'])}; style-src {' '.join(hashes['style'])}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html.encode(), csp


def admin_routes(router: Router, token: str | None, reloader: PolicyReloader) -> list[BaseRoute]:
    """The ``/admin`` routes, or none when no admin token is configured (admin off: 404)."""
    if not token:
        return []
    page, csp = _ui_page()
    headers = {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }

    async def ui(request: Request) -> Response:
        return HTMLResponse(page, headers=headers)

    return AdminAPI(router, token, reloader).routes(ui)
