"""The OpenAPI 3.1 document of the proxy's own endpoints (``GET /openapi.json``).

Hand-written, because the ``/v1`` routes are raw ASGI handlers that no schema
generator can see. Bodies of the OpenAI endpoints are described loosely (the
proxy passes unknown fields through); what the document pins down is what the
proxy adds: the routing headers, the decision headers, the error shape, the
admin API and its authentication. A test checks that every served route is
documented and every documented route is served.
"""

from __future__ import annotations

from typing import Any

from ... import __version__

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_ROUTING_HEADERS = [
    {
        "name": "x-lf-sensitive",
        "in": "header",
        "schema": {"type": "string"},
        "description": "true/1/yes/on: the request is sensitive and runs only on local models.",
    },
    {
        "name": "x-sensitive",
        "in": "header",
        "schema": {"type": "string"},
        "description": "Alias of x-lf-sensitive.",
    },
    {
        "name": "x-lf-kind",
        "in": "header",
        "schema": {"type": "string", "enum": ["bulk", "reason", "auto"]},
        "description": "What sort of work this is; rules match on it.",
    },
    {
        "name": "x-lf-tags",
        "in": "header",
        "schema": {"type": "string"},
        "description": "Comma-separated tags (a-z 0-9 . _ : / -, up to 32).",
    },
    {
        "name": "x-lf-ab-key",
        "in": "header",
        "schema": {"type": "string", "maxLength": 256},
        "description": "Sticky A/B key; the body's `user` is used when absent.",
    },
]
_DECISION_HEADERS = {
    "x-lf-destination": {"description": "Destination that answered.", "schema": {"type": "string"}},
    "x-lf-decision-id": {
        "description": "Audit row id (GET /admin/decisions/{id}).",
        "schema": {"type": "string"},
    },
    "x-lf-fell-back": {
        "description": "true when a fallback destination answered.",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    "x-lf-locality": {
        "description": "local or cloud.",
        "schema": {"type": "string", "enum": ["local", "cloud"]},
    },
}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Invalid request",
        401: "Missing or wrong key",
        403: "Privacy refusal",
        404: "Unknown model or path",
        413: "Body over LF_MAX_BODY_BYTES",
        429: "Upstream rate limit",
        501: "Not available",
        502: "Upstream failure",
        503: "Sensitive request and no local destination (local_unavailable)",
        504: "Upstream timeout",
    }
    return {
        str(s): {"description": text[s], "content": {"application/json": {"schema": _ERROR}}}
        for s in statuses
    }


def _model_call(summary: str, *, sse: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if sse:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return {
        "post": {
            "summary": summary,
            "tags": ["openai"],
            "security": [{"clientKey": []}, {}],
            "parameters": _ROUTING_HEADERS,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "model": {
                                    "type": "string",
                                    "description": "'auto' or an allowlisted destination name",
                                }
                            },
                            "additionalProperties": True,
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "The destination's answer, in OpenAI shape.",
                    "headers": _DECISION_HEADERS,
                    "content": content,
                },
                **_errors(400, 401, 403, 404, 413, 429, 502, 503, 504),
            },
        }
    }


def _admin(
    summary: str,
    *,
    method: str = "get",
    params: list[Any] | None = None,
    content: str = "application/json",
) -> dict[str, Any]:
    return {
        method: {
            "summary": summary,
            "tags": ["admin"],
            "security": [{"adminToken": []}],
            "parameters": params or [],
            "responses": {
                "200": {"description": "OK", "content": {content: {"schema": {}}}},
                **_errors(400, 401, 404),
            },
        }
    }


_FILTERS = [
    {"name": n, "in": "query", "schema": s}
    for n, s in (
        ("face", {"type": "string", "enum": ["python", "cli", "mcp", "proxy", "worker"]}),
        ("destination", {"type": "string"}),
        ("outcome", {"type": "string", "enum": ["ok", "error", "refused", "dry_run", "cancelled"]}),
        ("locality", {"type": "string", "enum": ["local", "cloud"]}),
        ("sensitive", {"type": "boolean"}),
        ("since", {"type": "string", "format": "date-time"}),
        ("until", {"type": "string", "format": "date-time"}),
    )
]
_PAGING = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
    },
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
]


def openapi_document(*, admin: bool) -> dict[str, Any]:
    """The OpenAPI document; the admin paths are listed only when the admin API is on."""
    paths: dict[str, Any] = {
        "/v1/chat/completions": _model_call(
            "Chat completion (stream with `stream: true`).", sse=True
        ),
        "/v1/completions": _model_call("Legacy text completion.", sse=True),
        "/v1/embeddings": _model_call("Embeddings (the privacy pin applies)."),
        "/v1/responses": _model_call("Responses API, for destinations with responses_api: true."),
        "/v1/models": {
            "get": {
                "summary": "The allowlist plus 'auto'.",
                "tags": ["openai"],
                "security": [{"clientKey": []}, {}],
                "responses": {"200": {"description": "Model list"}, **_errors(401)},
            }
        },
        "/v1/models/{model}": {
            "get": {
                "summary": "One allowlisted model.",
                "tags": ["openai"],
                "security": [{"clientKey": []}, {}],
                "parameters": [
                    {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "Model"}, **_errors(401, 404)},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics.",
                "tags": ["ops"],
                "security": [{"clientKey": []}, {}],
                "responses": {
                    "200": {"description": "Text exposition format", "content": {"text/plain": {}}}
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "tags": ["ops"],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness (no key needed): the process serves HTTP.",
                "tags": ["ops"],
                "responses": {"200": {"description": '{"status": "ok"}'}},
            }
        },
        "/readyz": {
            "get": {
                "summary": (
                    "Readiness (no key needed): policy loaded, audit store writable, "
                    "and which destinations are up (names and up/down only)."
                ),
                "tags": ["ops"],
                "responses": {
                    "200": {"description": "Ready"},
                    "503": {"description": "Not ready; `checks` says what failed"},
                },
            }
        },
    }
    if admin:
        paths |= {
            "/admin/decisions": _admin("Audit rows, newest first.", params=_FILTERS + _PAGING),
            "/admin/decisions/{id}": _admin(
                "One audit row with its attempts.",
                params=[
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
            ),
            "/admin/export.csv": _admin(
                "Matching audit rows as CSV.", params=_FILTERS, content="text/csv"
            ),
            "/admin/health": _admin("Destination health."),
            "/admin/savings": _admin("Savings ledger."),
            "/admin/budgets": _admin(
                "Every policy budget's current period: spent, reserved (leases and calls in "
                "flight), remaining, and 0.2.0's per-process limits with their ledger."
            ),
            "/admin/report": _admin(
                "Counts by face x locality x sensitivity reason, and whether any sensitive "
                "request reached a non-local destination, from a verified hash chain.",
                params=[f for f in _FILTERS if f["name"] in ("since", "until")],
            ),
            "/admin/reload": _admin("Reload the policy the server started with.", method="post"),
            "/admin/ui": {
                "get": {
                    "summary": "Admin UI page (asks for the token).",
                    "tags": ["admin"],
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llm-localfirst proxy",
            "version": __version__,
            "description": "OpenAI-compatible, policy-routed proxy. Sensitive requests "
            "run only on local models; every request is audited.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "clientKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of LF_PROXY_KEYS (optional on loopback).",
                },
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "LF_ADMIN_TOKEN.",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "type", "param", "code"],
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "param": {"type": ["string", "null"]},
                                "code": {"type": ["string", "null"]},
                            },
                        }
                    },
                }
            },
        },
    }
