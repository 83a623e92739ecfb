"""Headless Chromium for the browser tests, driven by Playwright.

Debian's Chromium (`make chromium`), not Playwright's own download, which
cannot be fetched here. The flags keep it off the network: without them it
keeps calling Google's hosts, and this machine refuses each connection.
Screenshots go to build/test-artifacts/screenshots/, kept after the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("PYCONVEX_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "build" / "test-artifacts" / "screenshots"
FLAGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 30_000


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright `Browser` on Debian's Chromium; closed on exit."""
    if not CHROMIUM.is_file():
        raise RuntimeError(f"no Chromium at {CHROMIUM}: run `make chromium` (Debian's package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=FLAGS, timeout=TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, *, console: list[str] | None = None) -> Any:
    """A page in a fresh context (its own storage: a second user). Console
    messages and page errors are appended to `console`, for failure output."""
    page = browser.new_context(viewport={"width": 1000, "height": 800}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    if console is not None:
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    return page


def screenshot(page: Any, name: str) -> Path:
    """Save a PNG of the page as a test artifact; returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
