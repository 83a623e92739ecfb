"""The dashboard opened from `python -m runtime dashboard --with-key` (the key
in the URL's fragment, dropped from the address bar once kept), running a
query as a user whose identity is not Latin-1: the page sends it as base64 of
its UTF-8 JSON, as `Authorization: Convex <key>:<base64>` wants (the
browser's btoa alone throws on such text); an identity the server would
not take (no issuer) is refused in the page, which stays logged in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import chromium, new_page, screenshot
from tests.support.dashboard_app import write_dashboard_app
from tests.support.devserver import DevServer, dev_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("dashboard-identity")
    with dev_server(write_dashboard_app(root), root / "data") as s:
        yield s


def test_key_from_the_fragment_and_a_unicode_identity(server: DevServer) -> None:
    console: list[str] = []
    with chromium() as browser:
        page = new_page(browser, console=console)
        page.goto(f"{server.url}/_dashboard/#key={server.admin_key}")
        page.wait_for_selector("#app:not([hidden])")
        assert server.admin_key not in page.url

        page.goto(f"{server.url}/_dashboard/#functions")
        page.click("tr[data-path='notes:whoami'] button.run")
        # No issuer: said in the page (the server would read the header as a
        # wrong admin key, and the page would log out).
        page.fill("#run-identity", '{"subject": "李-ユーザー"}')
        page.click("#run-go")
        page.wait_for_selector("#run-result.error")
        assert '"issuer"' in page.locator("#run-result").inner_text()
        assert page.locator("#app").is_visible()

        page.fill(
            "#run-identity",
            '{"subject": "李-ユーザー", "issuer": "https://id.例え.jp", "name": "Zoë"}',
        )
        page.click("#run-go")
        page.wait_for_selector("#run-result.ok, #run-result.error")
        screenshot(page, "dashboard-run-as-unicode-user")
        assert page.locator("#run-result").inner_text().strip() == '"李-ユーザー"'
        assert console == []
