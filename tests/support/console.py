"""The web console as tests drive it: Debian's Chromium through Playwright, and a page that records console errors.

Chromium comes from the system (`apt-get install -y chromium`, done by .ci/run and `make install`), never from
Playwright's own download; without it these tests fail, they do not skip.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.support.admin import AdminProxy

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 900}  # a laptop screen
TIMEOUT_MS = 15_000
POLL_S = 0.2
# What Chromium itself logs for a fetch the server refused; expected where a test makes the proxy refuse one.
REFUSED = "Failed to load resource: the server responded with a status of {status}"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium.

    Raises:
        AssertionError: /usr/bin/chromium is missing (install it; the tests must not pass without a browser).
    """
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)"
    expect.set_options(timeout=TIMEOUT_MS)  # assertions wait as long as actions: the suite shares two cores
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class ConsolePage:
    """One browser tab on a proxy's console, with every console error and uncaught exception it logged."""

    page: Page
    proxy_url: str
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, view: str = "") -> None:
        """Load the console (at #view when given)."""
        self.page.goto(f"{self.proxy_url}/admin/ui/" + (f"#{view}" if view else ""))

    def sign_in(self, token: str) -> None:
        """Type the token and press Enter, as a keyboard user would."""
        self.page.get_by_label("Admin token").fill(token)
        self.page.get_by_label("Admin token").press("Enter")

    def go(self, view: str) -> None:
        """Follow a navigation link, e.g. "Entries"."""
        self.page.get_by_role("navigation", name="Sections").get_by_role("link", name=view).click()

    def kpi(self, name: str) -> str:
        """The figure of one overview tile (requests, hit-rate, latency, tokens, dollars)."""
        return self.page.locator(f'[data-kpi="{name}"] .value').inner_text()

    def kpi_detail(self, name: str) -> str:
        return self.page.locator(f'[data-kpi="{name}"] .detail').inner_text()

    def fact(self, name: str) -> str:
        """One line of the Redis panel (entries, memory, redis-status, redis-breaker, ...)."""
        return self.page.locator(f'[data-fact="{name}"] dd').inner_text()

    def rows(self, container: str) -> list[list[str]]:
        """The body rows of the table inside #container, as cell texts."""
        rows = self.page.locator(f"#{container} tbody tr")
        return [[cell.strip() for cell in rows.nth(i).locator("td, th").all_inner_texts()] for i in range(rows.count())]

    def assert_no_errors(self, *allowed: str) -> None:
        """No console error and no uncaught exception, apart from lines starting with one of `allowed`."""
        unexpected = [error for error in self.errors if not any(error.startswith(line) for line in allowed)]
        assert unexpected == [], unexpected


@contextmanager
def console_page(browser: Browser, proxy_url: str) -> Iterator[ConsolePage]:
    """A fresh tab (its own session storage) on the proxy's console, in English, UTC, laptop-sized."""
    context = browser.new_context(locale="en-US", timezone_id="UTC", viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        yield ConsolePage(context.new_page(), proxy_url)
    finally:
        context.close()


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = TIMEOUT_MS / 1000) -> Any:
    """Poll check() until it returns something truthy (the history writer flushes every second).

    Raises:
        AssertionError: it did not within timeout_s.
    """
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(POLL_S)
    return value


def stats_totals(proxy: AdminProxy, window: str = "-1h") -> dict[str, Any]:
    totals: dict[str, Any] = proxy.http.get("/admin/stats", params={"from": window}).json()["totals"]
    return totals
