"""The console's routes page in headless Chromium against a real proxy with a routes file: each route with its
action, threshold and hits, and a reload that shows the validation error of a bad file."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, expect

from tests.support.admin import ADMIN_TOKEN, AdminProxy, chat, running_admin_proxy
from tests.support.console import REFUSED, ConsolePage, console_page
from tests.support.router import ROUTES, routes_file_in
from tests.support.upstream import FakeUpstream

StartProxy = Callable[..., AbstractContextManager[str]]
SMALL_TALK = "hi there, how are you doing today?"
ONE_ROUTE = """
routes:
  - name: greetings
    references: ["hello, good morning to you"]
    distance_threshold: 0.25
    action: respond
    content: "Hello!"
"""


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    return routes_file_in(tmp_path, ROUTES)


@pytest.fixture
def proxy(
    start_proxy: StartProxy, key_prefix: str, redis_client: redis.Redis, routes_file: Path, upstream: FakeUpstream
) -> Iterator[AdminProxy]:
    sections = {"router": {"routes_file": str(routes_file)}, "upstreams": {"cheap": {"base_url": upstream.api_url}}}
    with running_admin_proxy(start_proxy, key_prefix, redis_client, upstream, **sections) as running:
        yield running


@pytest.fixture
def console(browser: Browser, proxy: AdminProxy) -> Iterator[ConsolePage]:
    with console_page(browser, proxy.url) as tab:
        tab.open("routes")
        tab.sign_in(ADMIN_TOKEN)
        yield tab


def test_each_route_is_listed_with_its_action_threshold_and_traffic(browser: Browser, proxy: AdminProxy) -> None:
    sdk = proxy.sdk(f"sk-{uuid.uuid4().hex}")
    assert chat(sdk, SMALL_TALK) == "MISS"
    assert chat(sdk, "hi there, how are you doing today") == "HIT-L2"  # the same route, a paraphrase
    with console_page(browser, proxy.url) as console:
        console.open("routes")
        console.sign_in(ADMIN_TOKEN)
        expect(console.page.locator("#routes-status")).to_contain_text("4 routes from")
        assert console.rows("routes-table") == [
            ["small-talk", "forward to upstream cheap as cheap-model", "0.3", "2", "cached", "2", "1"],
            ["time-sensitive", "forward to the default upstream", "0.3", "2", "not cached", "0", "0"],
            ["identity", "respond: I am an assistant served through llmproxy.", "0.3", "2", "cached", "0", "0"],
            ["weapons", "block (403): This topic is not allowed here.", "0.3", "1", "cached", "0", "0"],
        ]
        console.assert_no_errors()


def test_a_bad_routes_file_is_refused_with_its_error_and_a_good_one_reloads(
    console: ConsolePage, routes_file: Path
) -> None:
    page = console.page
    expect(page.locator("#routes-status")).to_contain_text("4 routes from")
    routes_file.write_text(ROUTES.replace("distance_threshold: 0.3", "distance_threshold: 3", 1))
    page.get_by_role("button", name="Reload the routes file").click()
    message = page.locator("#routes-message")
    expect(message).to_contain_text("Routes not reloaded; the previous routes stay in force.")
    expect(message).to_contain_text("(small-talk).distance_threshold: Input should be less than or equal to 1")
    assert len(console.rows("routes-table")) == 4
    routes_file.write_text(ONE_ROUTE)
    page.get_by_role("button", name="Reload the routes file").click()
    expect(page.locator("#routes-status")).to_have_text("Reloaded: 1 route in force (greetings).")
    expect(message).to_be_hidden()
    assert console.rows("routes-table") == [["greetings", "respond: Hello!", "0.25", "1", "cached", "0", "0"]]
    console.assert_no_errors(REFUSED.format(status=400))


def test_without_a_router_the_routes_page_says_how_to_configure_one(browser: Browser, admin_proxy: AdminProxy) -> None:
    with console_page(browser, admin_proxy.url) as console:
        console.open("routes")
        console.sign_in(ADMIN_TOKEN)
        expect(console.page.locator("#routes-status")).to_contain_text("No semantic router is configured")
        expect(console.page.get_by_role("button", name="Reload the routes file")).to_be_disabled()
        console.assert_no_errors()
