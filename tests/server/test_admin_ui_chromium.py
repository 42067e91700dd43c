"""The admin UI (``/admin/ui``) in a real headless Chromium.

Debian's ``chromium`` (``.ci/install-browser.sh``), driven by Playwright's Python
package through ``executable_path``; Playwright never downloads a browser here. A
live proxy on loopback (the ``proxy_factory`` fixture: uvicorn on a thread over
``FakeUpstream`` fakes) first handles three requests so the audit log holds one
decision of each kind the page must show: one ok, one sensitive request refused
fail-closed while the local fake is down, and one that fell back to the cloud.

When Chromium or Playwright is missing the tests skip with the reason, except in CI
(``CI`` set), where they fail: a CI run that silently skipped the browser test
would claim coverage it does not have.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import ADMIN_TOKEN, LiveProxy

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHROMIUM = os.environ.get("LF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 10_000  # every browser wait is bounded by this


def _unavailable(reason: str) -> None:
    message = f"admin UI browser test cannot run: {reason}"
    if os.environ.get("CI"):
        pytest.fail(
            f"{message}. CI must run it: run .ci/install-browser.sh and install "
            "the dev extra (playwright); never `playwright install`.",
            pytrace=False,
        )
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, launched by Playwright from the system binary."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"{CHROMIUM} not found (run .ci/install-browser.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (own context: no session storage shared) that records console errors."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    tab.errors = []

    def on_console(message: Any) -> None:
        # Failed loads are checked by URL below; everything else (script errors, CSP
        # violations) is an error.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            tab.errors.append(message.text)

    def on_response(response: Any) -> None:
        # The browser asks for /favicon.ico by itself; the page does not link one.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            tab.errors.append(f"HTTP {response.status} {response.url}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda e: tab.errors.append(f"uncaught: {e}"))
    tab.on("response", on_response)
    try:
        yield tab
    finally:
        context.close()


def _post_chat(proxy: LiveProxy, text: str, **headers: str) -> Any:
    with proxy.client() as client:
        return client.post(
            "/v1/chat/completions",
            headers=headers,
            json={"model": "auto", "messages": [{"role": "user", "content": text}]},
        )


@pytest.fixture
def three_decisions(proxy_factory: Callable[..., LiveProxy]) -> LiveProxy:
    """A proxy whose audit log holds an ok, a fail-closed and a fell-back decision."""
    proxy = proxy_factory()
    ok = _post_chat(proxy, "Summarise: the sea is large.")
    assert ok.status_code == 200, ok.text
    proxy.local.stop()  # the local destination goes down
    refused = _post_chat(proxy, "Summarise this contract.", **{"x-lf-sensitive": "true"})
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "local_unavailable"
    fell_back = _post_chat(proxy, "Summarise: the sky is blue.")
    assert fell_back.status_code == 200, fell_back.text
    assert fell_back.headers["x-lf-fell-back"] == "true"
    assert len(proxy.rows()) == 3
    return proxy


def _open_with_token(page: Any, proxy: LiveProxy, token: str) -> None:
    page.goto(f"{proxy.url}/admin/ui")
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("token-submit").click()


def test_admin_ui_lists_filters_opens_and_exports_decisions_in_chromium(
    page: Any, three_decisions: LiveProxy, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    proxy = three_decisions
    rows = {r.id: r for r in proxy.rows()}
    ok_ids = {i for i, r in rows.items() if r.outcome == "ok"}
    (refused,) = [r for r in rows.values() if r.sensitive]
    (fell_back,) = [r for r in rows.values() if r.fell_back]
    assert refused.outcome != "ok"
    assert fell_back.id in ok_ids

    page.goto(f"{proxy.url}/admin/ui")
    expect(page.get_by_test_id("token-section")).to_be_visible()
    expect(page.get_by_test_id("app")).to_be_hidden()
    _open_with_token(page, proxy, ADMIN_TOKEN)

    # The decisions are listed, newest first.
    expect(page.get_by_test_id("app")).to_be_visible()
    listed = page.get_by_test_id("decision-row")
    expect(listed).to_have_count(3, timeout=WAIT_MS)
    expect(page.get_by_test_id("decisions-total")).to_have_text("(3)")
    assert {listed.nth(i).get_attribute("data-id") for i in range(3)} == set(rows)

    # Destination health: both destinations, the stopped local one shown down.
    health = page.get_by_test_id("health-row")
    expect(health).to_have_count(2)
    local_row = page.locator('[data-testid="health-row"][data-destination="local"]')
    cloud_row = page.locator('[data-testid="health-row"][data-destination="cloud"]')
    expect(local_row.get_by_test_id("health-up")).to_have_text("down")
    expect(cloud_row.get_by_test_id("health-up")).to_have_text("up")

    # Filter by outcome: only the refused decision, then only the successful ones.
    page.get_by_test_id("filter-outcome").select_option(refused.outcome)
    page.get_by_test_id("filter-apply").click()
    expect(listed).to_have_count(1)
    expect(listed.first).to_have_attribute("data-id", refused.id)
    page.get_by_test_id("filter-outcome").select_option("ok")
    page.get_by_test_id("filter-apply").click()
    expect(listed).to_have_count(len(ok_ids))
    assert {listed.nth(i).get_attribute("data-id") for i in range(len(ok_ids))} == ok_ids

    # One decision's detail and its attempts, as the audit log holds them: the
    # fell-back one, then the refused one (its failed try at the stopped local fake).
    for record in (fell_back, refused):
        page.locator(f'[data-testid="decision-open"][data-id="{record.id}"]').click()
        expect(page.get_by_test_id("decision-detail")).to_be_visible()
        expect(page.get_by_test_id("detail-id")).to_have_text(record.id)
        expect(page.get_by_test_id("detail-outcome")).to_have_text(record.outcome)
        expect(page.get_by_test_id("detail-fell-back")).to_have_text(str(record.fell_back).lower())
        attempts = page.get_by_test_id("attempt-row")
        expect(attempts).to_have_count(len(record.attempts))
        for i, attempt in enumerate(record.attempts):
            expect(attempts.nth(i)).to_contain_text(attempt.destination)
            expect(attempts.nth(i)).to_contain_text(attempt.outcome)
        if record is fell_back:
            page.get_by_test_id("filter-outcome").select_option("")
            page.get_by_test_id("filter-apply").click()
            expect(listed).to_have_count(3)
    assert [a.destination for a in fell_back.attempts][-1] == "cloud"
    assert refused.attempts and {a.destination for a in refused.attempts} == {"local"}
    page.screenshot(path=str(tmp_path / "admin-ui.png"), full_page=True)

    # CSV download of every decision (filters reset), checked row by row.
    page.get_by_test_id("filter-reset").click()
    expect(listed).to_have_count(3)
    with page.expect_download(timeout=WAIT_MS) as download_info:
        page.get_by_test_id("download-csv").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with saved.open(newline="", encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert {r["id"] for r in exported} == set(rows)
    by_id = {r["id"]: r for r in exported}
    assert by_id[refused.id]["outcome"] == refused.outcome
    assert by_id[fell_back.id]["destination"] == fell_back.destination
    assert all("Summarise" not in value for r in exported for value in r.values())

    assert (tmp_path / "admin-ui.png").stat().st_size > 10_000
    assert page.errors == []  # no script error, no CSP violation, no failed API call


def test_admin_ui_refuses_a_wrong_token_in_chromium(page: Any, three_decisions: LiveProxy) -> None:
    from playwright.sync_api import expect

    _open_with_token(page, three_decisions, "not-the-admin-token")

    expect(page.get_by_test_id("token-error")).to_contain_text("refused")
    expect(page.get_by_test_id("token-section")).to_be_visible()
    expect(page.get_by_test_id("app")).to_be_hidden()
    expect(page.get_by_test_id("decision-row")).to_have_count(0)
    assert page.evaluate("() => sessionStorage.length") == 0
    assert any(e.startswith("HTTP 401 ") for e in page.errors)  # the server refused it
