"""The dashboard in Chromium, on a real dev server: log in with the admin
key, browse and filter a table, edit a document (and see the schema refuse
a bad edit), watch a call arrive in the live log, run a function as a user,
cancel a scheduled job. Screenshots: build/test-artifacts/screenshots/dashboard-*.png."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium, new_page, screenshot
from tests.support.dashboard_app import write_dashboard_app
from tests.support.devserver import DevServer, dev_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("dashboard")
    with dev_server(write_dashboard_app(root), root / "data") as s:
        yield s


def call(s: DevServer, path: str, args: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        s.url + "/api/function",
        data=json.dumps({"path": path, "args": args}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Convex {s.admin_key}"},
    )
    with urllib.request.urlopen(req, timeout=30) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["value"]


def test_the_dashboard_in_a_browser(server: DevServer, tmp_path: Path) -> None:
    for n in range(30):
        call(server, "notes:add", {"text": f"note {n}", "n": n})
    job = call(server, "notes:later", {"text": "in an hour"})
    console: list[str] = []
    with chromium() as browser:
        page = new_page(browser, console=console)

        # A wrong key is refused; the right one (typed in) opens the dashboard.
        page.goto(server.url + "/_dashboard/")
        page.fill("#login-key", "0" * 64)
        page.click("#login button")
        page.wait_for_selector("#login-error:has-text('refused')")
        page.fill("#login-key", server.admin_key)
        page.click("#login button")

        # Data: newest first, 25 a page, older pages, a filter.
        # The login's view of the first table stays on screen until the
        # click's view replaces it: wait for the new view's documents.
        with page.expect_response(lambda r: "/api/dashboard/documents" in r.url):
            page.click("[data-table=notes]")
        page.wait_for_selector("[data-table=notes].active")
        page.wait_for_selector("text=page 1, 25 documents")
        page.wait_for_function("document.querySelectorAll('#documents tr[data-id]').length === 25")
        assert '"note 29"' in page.locator("#documents tr[data-id]").first.inner_text()
        page.click("#next-page")
        page.wait_for_selector("text=page 2, 5 documents")
        page.fill("#filter", 'text = "note 7"')
        page.click("#apply-filter")
        page.wait_for_selector("text=page 1, 1 documents")
        screenshot(page, "dashboard-data")

        # Edit: the schema refuses a string for n, then a good edit lands.
        page.click("#documents .edit")
        page.fill(".editor", '{"text": "note 7", "n": "seven"}')
        page.click(".save")
        page.wait_for_selector(".edit-error:has-text('n')")
        page.fill(".editor", '{"text": "note 7", "n": 70}')
        page.click(".save")
        page.wait_for_selector("#documents td:text-is('70')")
        screenshot(page, "dashboard-edited")

        # Logs: a call made elsewhere shows up live.
        page.click("a[data-page=logs]")
        page.wait_for_selector("#log-lines .log-line")
        call(server, "notes:add", {"text": "seen live", "n": 99})
        page.wait_for_selector("#log-lines .log-line:has-text('notes:add')")
        lines_before = page.locator("#log-lines .log-line").count()
        call(server, "notes:add", {"text": "seen live too", "n": 100})
        page.wait_for_function(
            f"document.querySelectorAll('#log-lines .log-line').length > {lines_before}"
        )
        screenshot(page, "dashboard-logs")

        # Functions: run one as a user.
        page.click("a[data-page=functions]")
        page.click("tr[data-path='notes:whoami'] .run")
        page.fill("#run-identity", '{"subject": "user-7", "issuer": "https://issuer.test"}')
        page.click("#run-go")
        page.wait_for_selector("#run-result.ok:has-text('user-7')")
        screenshot(page, "dashboard-functions")

        # Schedules: cancel the job an hour ahead.
        page.click("a[data-page=schedules]")
        page.wait_for_selector("#jobs")
        assert job in page.inner_html("#jobs"), page.inner_text("#page")
        page.click(f"#jobs tr[data-id='{job}'] .cancel")
        page.wait_for_selector(f"#jobs tr[data-id='{job}'] .state:has-text('canceled')")
        screenshot(page, "dashboard-schedules")

        for name in ("files", "schema", "environment"):
            page.click(f"a[data-page={name}]")
            page.wait_for_selector("#page h2")
            screenshot(page, f"dashboard-{name}")
    expected = ("401 (Unauthorized)", "400 (Bad Request)")  # the wrong key, the refused edit
    unexpected = [
        line
        for line in console
        if line.startswith(("error", "pageerror")) and not line.endswith(expected)
    ]
    assert not unexpected, console
