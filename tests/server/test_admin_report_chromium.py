"""The admin page's privacy report panel, in a real Chromium (the page's own script and CSP)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import ADMIN_TOKEN, LiveProxy
from tests.server.test_admin_ui_chromium import (  # noqa: F401 (fixtures)
    _open_with_token,
    _post_chat,
    browser,
    page,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_the_report_panel_states_that_no_sensitive_request_left_in_chromium(
    page: Any,  # noqa: F811 (fixture)
    proxy: LiveProxy,
) -> None:
    assert _post_chat(proxy, "Summarise: the sea is large.").status_code == 200
    assert _post_chat(proxy, "Write to jane.roe@example.org").status_code == 200

    _open_with_token(page, proxy, ADMIN_TOKEN)

    statement = page.get_by_test_id("report-statement")
    statement.wait_for()
    page.wait_for_function(
        "document.querySelector('[data-testid=report-statement]').textContent.length > 0"
    )
    assert statement.text_content().startswith("No sensitive request")
    assert statement.get_attribute("data-ok") == "true"
    rows = page.get_by_test_id("report-row")
    assert rows.count() == 2
    reasons = {rows.nth(i).locator("td").nth(2).text_content() for i in range(rows.count())}
    assert reasons == {"none", "detector:email"}
    assert page.errors == []
