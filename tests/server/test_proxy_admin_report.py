"""GET /admin/report: the audit report over the proxy's own log, same auth as the admin API."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import LiveProxy


def chat(proxy: LiveProxy, text: str, **headers: str) -> None:
    with proxy.client() as client:
        answer = client.post(
            "/v1/chat/completions",
            headers=headers,
            json={"model": "auto", "messages": [{"role": "user", "content": text}]},
        )
    assert answer.status_code == 200, answer.text


def report(proxy: LiveProxy, **params: Any) -> Any:
    with proxy.client() as client:
        answer = client.get("/admin/report", params=params, headers=proxy.admin_headers())
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_report_counts_proxy_requests_and_proves_sensitive_ones_stayed_local(
    proxy: LiveProxy,
) -> None:
    chat(proxy, "hello")
    chat(proxy, "mail alice@example.com about it")
    chat(proxy, "a private note", **{"x-lf-sensitive": "true"})

    data = report(proxy, since="2000-01-01", until="2100-01-01")

    assert data["chain_verified"] is True and data["ok"] is True
    assert data["sensitive_reached_non_local"] is False
    assert data["total"] == 3 and data["sensitive"] == 2
    faces = {(c["face"], c["locality"]) for c in data["counts"]}
    assert faces == {("proxy", "local")}
    assert any(c["reason"] == "none" and c["requests"] == 1 for c in data["counts"])
    assert data["statement"].startswith("No sensitive request between 2000-01-01")


def test_the_report_needs_the_admin_token_and_a_valid_window(proxy: LiveProxy) -> None:
    with proxy.client() as client:
        assert client.get("/admin/report").status_code == 401
        assert (
            client.get("/admin/report", headers={"authorization": "Bearer no"}).status_code == 401
        )
        bad = client.get("/admin/report", params={"since": "soon"}, headers=proxy.admin_headers())
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_filter"


def test_the_admin_page_has_the_report_panel(proxy: LiveProxy) -> None:
    with proxy.client() as client:
        page = client.get("/admin/ui").text
    assert 'data-testid="report-section"' in page and "/admin/report" in page
