"""The admin API and UI: auth, audit queries, CSV export, health, savings, reload, OpenAPI."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from llm_localfirst import Router
from llm_localfirst.audit.record import COLUMNS, AuditRecord, new_id, utc_now_iso
from llm_localfirst.providers import make_provider as provider_factory
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore
from tests.server.conftest import ADMIN_TOKEN, ONE_LOCAL_POLICY, LiveProxy

ADMIN_PATHS = [
    "/admin/decisions",
    "/admin/decisions/x",
    "/admin/export.csv",
    "/admin/health",
    "/admin/savings",
    "/admin/ui",
]


def chat(proxy: LiveProxy, text: str = "hello", **headers: str) -> None:
    with proxy.client() as client:
        client.post(
            "/v1/chat/completions",
            headers=headers,
            json={"model": "auto", "messages": [{"role": "user", "content": text}]},
        )


def admin_get(proxy: LiveProxy, path: str, **params: Any) -> Any:
    with proxy.client() as client:
        response = client.get(path, params=params, headers=proxy.admin_headers())
    assert response.status_code == 200, response.text
    return response.json()


def test_the_admin_api_is_off_without_a_token(proxy_factory: Any) -> None:
    proxy = proxy_factory(admin_token=None)
    with proxy.client() as client:
        for path in ADMIN_PATHS:
            response = client.get(path, headers={"authorization": "Bearer anything"})
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"
        assert client.post("/admin/reload").status_code == 404
        paths = client.get("/openapi.json").json()["paths"]
    assert not any(p.startswith("/admin") for p in paths)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong",
        f"Basic {ADMIN_TOKEN}",
        f"Bearer {ADMIN_TOKEN}x",
        f"bearer  {ADMIN_TOKEN}",
    ],
)
def test_the_admin_api_refuses_a_missing_or_wrong_token(
    proxy: LiveProxy, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    with proxy.client() as client:
        for path in ADMIN_PATHS[:-1]:
            response = client.get(path, headers=headers)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["type"] == "authentication_error"
            assert ADMIN_TOKEN not in response.text
        assert client.post("/admin/reload", headers=headers).status_code == 401


def test_decisions_filter_and_page(proxy: LiveProxy) -> None:
    for i in range(5):
        chat(proxy, f"plain {i}")
    chat(proxy, "mail jane.doe@example.com")
    chat(proxy, "think hard", **{"x-lf-kind": "reason"})
    with proxy.client() as client:
        client.post(
            "/v1/chat/completions",
            json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
        )
    everything = admin_get(proxy, "/admin/decisions")
    assert (everything["total"], everything["limit"], everything["offset"]) == (8, 50, 0)
    ids = [r["id"] for r in everything["data"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert all("prompt" not in r and "text" not in r for r in everything["data"])

    page = admin_get(proxy, "/admin/decisions", limit=3, offset=3)
    assert [r["id"] for r in page["data"]] == ids[3:6] and page["total"] == 8
    assert admin_get(proxy, "/admin/decisions", outcome="refused")["total"] == 1
    assert admin_get(proxy, "/admin/decisions", destination="cloud")["total"] == 1
    sensitive = admin_get(proxy, "/admin/decisions", sensitive="true")
    assert sensitive["total"] == 1 and sensitive["data"][0]["sensitive_reasons"] == [
        "detector:email"
    ]
    assert admin_get(proxy, "/admin/decisions", face="mcp")["total"] == 0
    first_ts = everything["data"][-1]["ts"]
    assert admin_get(proxy, "/admin/decisions", since=first_ts)["total"] == 8
    assert admin_get(proxy, "/admin/decisions", until=first_ts)["total"] == 0


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"limit": "many"}, "limit must be an integer"),
        ({"limit": "0"}, "limit must be between"),
        ({"outcome": "great"}, "outcome must be one of"),
        ({"sensitive": "maybe"}, "sensitive must be true or false"),
        ({"since": "yesterday"}, "since must be an ISO-8601"),
        ({"colour": "red"}, "unknown query parameter"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_problem(
    proxy: LiveProxy, params: dict[str, str], needle: str
) -> None:
    with proxy.client() as client:
        response = client.get("/admin/decisions", params=params, headers=proxy.admin_headers())
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]


def test_one_decision_with_its_attempts(proxy: LiveProxy) -> None:
    proxy.local.status = 500
    chat(proxy)
    (row,) = proxy.rows()
    record = admin_get(proxy, f"/admin/decisions/{row.id}")
    assert record["id"] == row.id and record["fell_back"] is True
    assert [a["outcome"] for a in record["attempts"]] == ["http_5xx", "ok"]
    assert record["attempts"][0]["status"] == 500
    with proxy.client() as client:
        missing = client.get("/admin/decisions/does-not-exist", headers=proxy.admin_headers())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "decision_not_found"


def test_csv_export_has_every_matching_row(proxy: LiveProxy) -> None:
    for i in range(3):
        chat(proxy, f"plain {i}")
    chat(proxy, "think", **{"x-lf-kind": "reason"})
    with proxy.client() as client:
        response = client.get(
            "/admin/export.csv", params={"destination": "local"}, headers=proxy.admin_headers()
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 4 and {r[COLUMNS.index("destination")] for r in rows[1:]} == {"local"}
    assert "plain" not in response.text  # no prompt text, only its hash


def test_csv_export_pages_through_more_than_one_store_page(
    proxy: LiveProxy, memory_audit: MemoryAuditStore
) -> None:
    records = []
    for _ in range(1500):
        records.append(
            AuditRecord(
                id=new_id(),
                ts=utc_now_iso(),
                face="python",
                endpoint="complete",
                outcome="ok",
                kind="auto",
                request_model="auto",
                sensitive=False,
                sensitive_reasons=(),
                rule="default",
                arm=None,
                destination="local",
                locality="local",
                model="m",
                fell_back=False,
                attempts=(),
                error_class=None,
                error_message=None,
                tokens_in=1,
                tokens_out=1,
                latency_ms=1.0,
                prompt_sha256=None,
                prompt_chars=1,
                completion_chars=1,
                tags=(),
                metadata={},
            )
        )
    memory_audit.write_many(records)
    with proxy.client() as client:
        response = client.get("/admin/export.csv", headers=proxy.admin_headers())
    lines = response.text.strip().split("\r\n")
    assert len(lines) == 1501 and lines[0].startswith("id,")
    assert len({line.split(",")[0] for line in lines[1:]}) == 1500


def test_health_lists_every_destination(proxy: LiveProxy) -> None:
    chat(proxy)
    health = admin_get(proxy, "/admin/health")
    assert set(health["destinations"]) == {"local", "cloud"}
    assert health["destinations"]["local"]["up"] is True
    assert health["destinations"]["local"]["locality"] == "local"
    proxy.local.stop()
    proxy.router.health.invalidate("local")
    assert admin_get(proxy, "/admin/health")["destinations"]["local"]["up"] is False


def test_savings_ledger(proxy: LiveProxy) -> None:
    chat(proxy, "a long enough request to count some tokens")
    savings = admin_get(proxy, "/admin/savings")
    assert isinstance(savings, dict) and savings
    with proxy.client() as client:
        bad = client.get("/admin/savings", params={"face": "nobody"}, headers=proxy.admin_headers())
    assert bad.status_code == 400


@pytest.fixture
def file_proxy(
    proxy_factory: Any, fake_local: FakeUpstream, memory_audit: MemoryAuditStore, tmp_path: Path
) -> tuple[LiveProxy, Path]:
    path = tmp_path / "policy.yaml"
    path.write_text(ONE_LOCAL_POLICY.format(name="first", url=fake_local.base_url))
    router = Router.from_policy(path, audit=memory_audit, provider_factory=provider_factory)
    return proxy_factory(router=router), path


def test_reload_swaps_in_the_new_policy(file_proxy: tuple[LiveProxy, Path]) -> None:
    proxy, path = file_proxy
    chat(proxy)
    path.write_text(ONE_LOCAL_POLICY.format(name="second", url=proxy.local.base_url))
    with proxy.client() as client:
        response = client.post("/admin/reload", headers=proxy.admin_headers())
        assert response.status_code == 200
        assert response.json() == {
            "reloaded": True,
            "source": str(path),
            "destinations": ["second"],
            "rules": [],
        }
        after = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
        models = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert after.headers["x-lf-destination"] == "second"
    assert models == ["auto", "second"]


def test_an_invalid_policy_is_refused_with_its_exact_error_and_the_old_one_serves(
    file_proxy: tuple[LiveProxy, Path],
) -> None:
    proxy, path = file_proxy
    path.write_text(
        "version: 1\ndestinations:\n  cloudy:\n    provider: openai\n"
        "    model: m\n    base_url: http://8.8.8.8/v1\n    locality: local\n"
        "default:\n  to: [cloudy]\n"
    )
    with proxy.client() as client:
        response = client.post("/admin/reload", headers=proxy.admin_headers())
        error = response.json()["error"]
        after = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
    assert response.status_code == 400
    assert error["code"] == "policy_error"
    assert error["message"].startswith(f"invalid policy {path}")
    assert "8.8.8.8" in error["message"] and error["problems"]
    assert after.status_code == 200 and after.headers["x-lf-destination"] == "first"


def test_the_ui_page_is_served_with_a_strict_content_security_policy(proxy: LiveProxy) -> None:
    with proxy.client() as client:
        response = client.get("/admin/ui")  # no token: the page asks for it
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "'sha256-" in csp and "unsafe-inline" not in csp
    for element in (
        "token-input",
        "decisions-table",
        "download-csv",
        "health-table",
        "attempts-table",
        "filter-outcome",
        "page-next",
    ):
        assert f'id="{element}"' in response.text and f'data-testid="{element}"' in response.text
    assert ADMIN_TOKEN not in response.text


def test_the_openapi_document_matches_the_served_routes(proxy: LiveProxy) -> None:
    with proxy.client() as client:
        document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    served = {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/models",
        "/v1/models/{model}",
        "/metrics",
        "/openapi.json",
        "/healthz",
        "/readyz",
        "/admin/decisions",
        "/admin/decisions/{id}",
        "/admin/export.csv",
        "/admin/health",
        "/admin/savings",
        "/admin/reload",
        "/admin/ui",
        "/admin/report",
        "/admin/budgets",
    }
    assert set(document["paths"]) == served
    app_routes = (
        set(proxy.app._routes)
        | {"/v1/models/{model}"}
        | {route.path for route in proxy.app._fallback.routes}
    )
    assert app_routes == served
    error = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["message", "type", "param", "code"]
