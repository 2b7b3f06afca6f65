"""The web console in headless Chromium against a real proxy, Redis Stack and fake upstream: signing in, the
overview's figures and charts, refused tokens, a disabled admin API, history off, signing out, the keyboard."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
import redis
from playwright.sync_api import Browser, expect

from tests.support.admin import ADMIN_TOKEN, AdminProxy, chat, running_admin_proxy
from tests.support.console import REFUSED, ConsolePage, console_page, stats_totals, wait_for
from tests.support.upstream import FakeUpstream

QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"
WRONG_TOKEN = "not-the-admin-token-0123"
# A dollar a token, so the dollars saved read like the tokens saved.
PRICES = {"fake-model": {"input_usd_per_1m": 1_000_000, "output_usd_per_1m": 1_000_000}}
TOKEN_KEY = "llmproxy.admin-token"
StartProxy = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def proxy(
    start_proxy: StartProxy, key_prefix: str, redis_client: redis.Redis, upstream: FakeUpstream
) -> Iterator[AdminProxy]:
    with running_admin_proxy(start_proxy, key_prefix, redis_client, upstream, metrics={"prices": PRICES}) as running:
        yield running


@pytest.fixture
def console(browser: Browser, proxy: AdminProxy) -> Iterator[ConsolePage]:
    with console_page(browser, proxy.url) as tab:
        yield tab


def send_traffic(proxy: AdminProxy) -> None:
    """A miss, two exact hits and a paraphrase hit, all in the traffic history."""
    sdk = proxy.sdk(f"sk-{uuid.uuid4().hex}")
    assert [chat(sdk, QUESTION) for _ in range(3)] == ["MISS", "HIT-L1", "HIT-L1"]
    assert chat(sdk, PARAPHRASE) == "HIT-L2"
    wait_for(lambda: stats_totals(proxy)["requests"] == 4, "the four requests in the history")


def test_signing_in_shows_the_traffic_sent_in_figures_charts_and_tables(
    console: ConsolePage, proxy: AdminProxy
) -> None:
    send_traffic(proxy)
    tokens = stats_totals(proxy)["tokens_saved"]
    assert tokens > 0
    console.open()
    console.sign_in(ADMIN_TOKEN)
    page = console.page
    expect(page.locator('[data-kpi="requests"] .value')).to_have_text("4")
    assert console.kpi("hit-rate") == "75%"
    assert console.kpi_detail("hit-rate") == "L1 50% · L2 25%"
    assert re.fullmatch(r"[\d.,]+ m?s", console.kpi("latency"))
    assert console.kpi("tokens") == f"{tokens:,}"
    assert console.kpi("dollars") == f"${tokens:,.2f}"
    chart = page.get_by_role("img", name="Requests by cache result", exact=True)
    expect(chart).to_be_visible()
    expect(chart).to_have_accessible_description(
        re.compile(re.escape("L1 hits (exact) 2, L2 hits (semantic) 1, Misses 1, Bypasses 0, Errors 0"))
    )
    assert chart.locator("rect.bar").count() >= 3  # one per result, or more when the minute turned meanwhile
    page.get_by_text("Requests by cache result: as a table").click()
    rows = page.locator("figure", has=chart).locator("tbody tr")
    cells = [[int(cell) for cell in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]
    assert [sum(column) for column in zip(*cells, strict=True)] == [2, 1, 1, 0, 0]
    assert page.get_by_role("img", name="Hit rate by layer", exact=True).locator("circle").count() >= 3
    assert console.rows("models") == [["fake-model", "4", "3", "75%", f"{tokens:,}", f"${tokens:,.2f}"]]
    console.assert_no_errors()


def test_the_health_panels_show_redis_entries_breakers_and_fail_open(console: ConsolePage, proxy: AdminProxy) -> None:
    send_traffic(proxy)
    console.open()
    console.sign_in(ADMIN_TOKEN)
    expect(console.page.locator('[data-fact="entries"] dd')).to_have_text("2")  # the answer and its promoted copy
    assert (console.fact("redis-status"), console.fact("redis-breaker")) == ("ok", "closed")
    assert re.fullmatch(r"[\d.]+ (KiB|MiB|GiB)", console.fact("memory"))
    assert console.fact("eviction-policy") == "noeviction"
    tables = console.page.locator("#breakers table")
    assert tables.nth(0).locator("tbody tr").all_inner_texts() == ["default\tclosed\t0", "anthropic\tclosed\t0"]
    assert tables.nth(1).locator("tbody tr").all_inner_texts() == ["redis\t0", "embedder\t0"]
    console.assert_no_errors()


def test_another_range_shows_the_same_traffic_over_its_own_buckets(console: ConsolePage, proxy: AdminProxy) -> None:
    send_traffic(proxy)
    console.open()
    console.sign_in(ADMIN_TOKEN)
    page = console.page
    expect(page.locator('[data-kpi="requests"] .value')).to_have_text("4")
    page.get_by_label("1 h", exact=True).focus()
    page.keyboard.press("ArrowRight")  # radio buttons: the arrow keys choose the next range
    expect(page.locator("#overview-status")).to_contain_text("Traffic over the last 24 hours")
    expect(page.get_by_label("24 h", exact=True)).to_be_checked()
    assert console.kpi("requests") == "4"
    page.get_by_label("30 d", exact=True).check()
    expect(page.locator("#overview-status")).to_contain_text("Traffic over the last 30 days")
    assert console.kpi("requests") == "4"
    console.assert_no_errors()


def test_a_wrong_token_is_refused_and_not_kept(console: ConsolePage) -> None:
    console.open()
    console.sign_in(WRONG_TOKEN)
    page = console.page
    expect(page.locator("#sign-in-message")).to_contain_text("Wrong token: the proxy refused it (401)")
    expect(page.get_by_role("navigation", name="Sections")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    console.sign_in(ADMIN_TOKEN)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == ADMIN_TOKEN
    console.assert_no_errors(REFUSED.format(status=401))  # Chromium's own line for the refused call


def test_a_token_the_proxy_stops_accepting_signs_the_console_out(console: ConsolePage) -> None:
    console.open()
    console.page.evaluate(f"sessionStorage.setItem('{TOKEN_KEY}', '{WRONG_TOKEN}')")  # as if the token was rotated
    console.page.reload()
    expect(console.page.locator("#sign-in-message")).to_contain_text("no longer accepts this token (401)")
    assert console.page.evaluate("sessionStorage.length") == 0
    console.assert_no_errors(REFUSED.format(status=401))


def test_signing_out_forgets_the_token(console: ConsolePage) -> None:
    console.open()
    console.sign_in(ADMIN_TOKEN)
    page = console.page
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Admin token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_label("Admin token")).to_be_focused()
    console.assert_no_errors()


def test_with_the_admin_api_disabled_the_page_says_how_to_enable_it(
    browser: Browser, start_proxy: StartProxy, key_prefix: str
) -> None:
    with start_proxy(redis={"key_prefix": key_prefix}, semantic={"enabled": False}) as url:  # no admin token
        with console_page(browser, url) as console:
            console.open()
            console.sign_in("any-token-at-all-0123")
            message = console.page.locator("#sign-in-message")
            expect(message).to_contain_text("The admin API is off on this proxy (403)")
            expect(message).to_contain_text("LLMPROXY_ADMIN__TOKEN")
            assert console.page.evaluate("sessionStorage.length") == 0
            console.assert_no_errors(REFUSED.format(status=403))


def test_without_traffic_history_the_overview_says_so_and_still_shows_health(
    browser: Browser, start_proxy: StartProxy, key_prefix: str, redis_client: redis.Redis, upstream: FakeUpstream
) -> None:
    off = {"timeseries": {"enabled": False}, "semantic": {"enabled": False}}
    with running_admin_proxy(start_proxy, key_prefix, redis_client, upstream, **off) as proxy:
        with console_page(browser, proxy.url) as console:
            console.open()
            console.sign_in(ADMIN_TOKEN)
            expect(console.page.locator("#overview-message")).to_contain_text("No traffic history")
            assert console.fact("redis-status") == "ok"
            assert console.fact("semantic") == "off"
            assert console.page.locator("#kpis .kpi").count() == 0
            console.assert_no_errors(REFUSED.format(status=503))


def test_the_console_works_from_the_keyboard_with_visible_focus(console: ConsolePage) -> None:
    console.open()
    page = console.page
    expect(page.get_by_label("Admin token")).to_be_focused()  # the page starts where the work is
    page.keyboard.type(ADMIN_TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_focused()
    for _ in range(10):  # back up from the heading to the navigation
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.textContent") == "Entries":
            break
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Entries", level=1)).to_be_focused()
    expect(page.get_by_role("link", name="Entries")).to_have_attribute("aria-current", "page")
    assert page.title() == "Entries · llmproxy console"
    console.assert_no_errors()
