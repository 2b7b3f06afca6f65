"""The console's entries page in headless Chromium against a real proxy, Redis Stack and fake upstream: finding an
entry by its prompt, its stored answer, deleting it, invalidating with a dry run first, flushing, the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from openai import OpenAI
from playwright.sync_api import Browser, Locator, expect

from tests.support.admin import ADMIN_TOKEN, AdminProxy, chat, tenant
from tests.support.console import ConsolePage, console_page
from tests.support.upstream import FakeUpstream

QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"
OTHER = "What is the capital of France?"
THIRD = "Explain the difference between TCP and UDP."
OLD_MODEL = "fake-model-old"


@pytest.fixture
def sdk(admin_proxy: AdminProxy, upstream: FakeUpstream) -> OpenAI:
    return admin_proxy.sdk(f"sk-{uuid.uuid4().hex}")


@pytest.fixture
def console(browser: Browser, admin_proxy: AdminProxy) -> Iterator[ConsolePage]:
    with console_page(browser, admin_proxy.url) as tab:
        tab.open("entries")
        tab.sign_in(ADMIN_TOKEN)
        expect(tab.page.get_by_role("heading", name="Entries", level=1)).to_be_visible()
        yield tab


def region(console: ConsolePage, name: str) -> Locator:
    return console.page.get_by_role("region", name=name, exact=True)


def test_an_entry_found_by_its_prompt_shows_its_answer_and_once_deleted_is_a_miss(
    browser: Browser, admin_proxy: AdminProxy, sdk: OpenAI
) -> None:
    answer = sdk.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": QUESTION}])
    chat(sdk, OTHER, namespace="team")
    with console_page(browser, admin_proxy.url) as console:
        console.open("entries")
        console.sign_in(ADMIN_TOKEN)
        page = console.page
        expect(page.locator("#entries-summary")).to_have_text("2 entries; showing 1–2.")
        page.get_by_label("Prompt contains").fill("reverse list")
        page.get_by_label("Prompt contains").press("Enter")
        expect(page.locator("#entries-summary")).to_have_text("1 entry matching the search; showing 1–1.")
        (row,) = console.rows("entries-table")
        prompt, model, scope, namespace, kind, layer, age, ttl, actions = row
        assert (prompt, model, scope, namespace, kind, layer) == (
            QUESTION,
            "fake-model",
            tenant(sdk.api_key)[:8] + "…",
            "–",
            "chat",
            "L1 + L2",
        )
        assert age.endswith(" s") and ttl in {"1 d", "23 h 59 min"}  # the default TTL, a day, has just begun
        page.get_by_role("button", name=f"View entry: {QUESTION}").click()
        dialog = page.get_by_role("dialog", name="Entry")
        expect(dialog).to_be_visible()
        expect(dialog.locator("[data-answer]")).to_have_text(answer.choices[0].message.content or "")
        dialog.get_by_role("button", name="Delete this entry").click()
        confirm = page.get_by_role("dialog", name="Delete this entry?")
        expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()  # Enter alone never deletes
        confirm.get_by_role("button", name="Delete entry", exact=True).click()
        expect(page.locator("#entries-summary")).to_contain_text("Deleted the entry.")
        expect(page.locator("#entries-table td.empty")).to_have_text("No cached answers match.")
        console.assert_no_errors()
    assert chat(sdk, QUESTION) == "MISS"
    assert chat(sdk, OTHER, namespace="team") == "HIT-L1"  # the other entry stayed
    (event, *_) = admin_proxy.audit()
    assert (event["who"], event["action"], event["deleted"]) == ("console", "delete", 1)


def test_a_row_delete_asks_first_and_cancel_keeps_the_entry(
    console: ConsolePage, admin_proxy: AdminProxy, sdk: OpenAI
) -> None:
    chat(sdk, QUESTION)
    page = console.page
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name=f"Delete entry: {QUESTION}").click()
    confirm = page.get_by_role("dialog", name="Delete this entry?")
    expect(confirm).to_contain_text(QUESTION)
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    assert admin_proxy.entries()["total"] == 1
    console.assert_no_errors()


def test_a_dry_run_counts_then_the_confirmed_invalidation_deletes_and_both_are_audited(
    console: ConsolePage, admin_proxy: AdminProxy, sdk: OpenAI
) -> None:
    for text in (QUESTION, OTHER):
        chat(sdk, text, model=OLD_MODEL)
    chat(sdk, THIRD)
    page = console.page
    invalidate = region(console, "Invalidate")
    invalidate.get_by_label("Model").fill(OLD_MODEL)
    invalidate.get_by_role("button", name="Count matches (dry run)").click()
    expect(page.locator("#invalidate-result")).to_have_text(
        f"Dry run: 2 entries match model “{OLD_MODEL}”. Nothing was deleted."
    )
    assert admin_proxy.entries()["total"] == 3
    invalidate.get_by_role("button", name="Delete 2 matching entries").click()
    confirm = page.get_by_role("dialog", name="Delete the matching entries?")
    expect(confirm).to_contain_text("The dry run counted 2 cached answers")
    confirm.get_by_role("button", name="Delete 2 entries").click()
    expect(page.locator("#invalidate-result")).to_have_text(f"Deleted 2 entries model “{OLD_MODEL}”.")
    expect(page.locator("#entries-summary")).to_have_text("1 entry; showing 1–1.")
    assert [row[1] for row in console.rows("entries-table")] == ["fake-model"]
    assert chat(sdk, QUESTION, model=OLD_MODEL) == "MISS"
    console.go("Audit log")
    expect(page.locator("#audit-status")).to_have_text("The latest 2 changes, newest first.")
    columns = [row[1:] for row in console.rows("audit-table")]  # the time aside
    assert columns == [
        ["console", "127.0.0.1", "invalidate", f"model = {OLD_MODEL}", "2", "2", "no"],
        ["console", "127.0.0.1", "invalidate", f"model = {OLD_MODEL}", "2", "0", "yes"],
    ]
    console.assert_no_errors()


def test_changing_the_conditions_after_a_dry_run_asks_for_a_new_count(console: ConsolePage, sdk: OpenAI) -> None:
    chat(sdk, QUESTION, model=OLD_MODEL)
    invalidate = region(console, "Invalidate")
    invalidate.get_by_label("Model").fill(OLD_MODEL)
    invalidate.get_by_role("button", name="Count matches (dry run)").click()
    run = invalidate.get_by_role("button", name="Delete 1 matching entry")
    expect(run).to_be_enabled()
    invalidate.get_by_label("Namespace").fill("team")
    expect(invalidate.get_by_role("button", name="Delete matching entries")).to_be_disabled()
    expect(console.page.locator("#invalidate-result")).to_be_hidden()
    console.assert_no_errors()


def test_invalidation_by_a_similar_prompt_counts_the_paraphrased_answer(
    console: ConsolePage, admin_proxy: AdminProxy, sdk: OpenAI
) -> None:
    chat(sdk, QUESTION)
    chat(sdk, OTHER)
    invalidate = region(console, "Invalidate")
    invalidate.get_by_label("Similar to prompt").fill(PARAPHRASE)
    invalidate.get_by_role("button", name="Count matches (dry run)").click()
    expect(console.page.locator("#invalidate-result")).to_have_text(
        f"Dry run: 1 entry matches similar to “{PARAPHRASE}”. Nothing was deleted."
    )
    invalidate.get_by_role("button", name="Delete 1 matching entry").click()
    console.page.get_by_role("dialog").get_by_role("button", name="Delete 1 entry").click()
    expect(console.page.locator("#entries-summary")).to_have_text("1 entry; showing 1–1.")
    assert [entry["prompt"] for entry in admin_proxy.entries()["entries"]] == [OTHER]
    console.assert_no_errors()


def test_an_invalidation_without_a_condition_shows_the_refusal(console: ConsolePage) -> None:
    region(console, "Invalidate").get_by_role("button", name="Count matches (dry run)").click()
    expect(console.page.locator("#invalidate-message")).to_contain_text("Give at least one condition")
    console.assert_no_errors("Failed to load resource: the server responded with a status of 400")


def test_flush_waits_for_the_typed_confirmation(console: ConsolePage, admin_proxy: AdminProxy, sdk: OpenAI) -> None:
    chat(sdk, QUESTION)
    chat(sdk, OTHER)
    flush = region(console, "Flush the cache")
    button = flush.get_by_role("button", name="Flush every entry")
    expect(button).to_be_disabled()
    flush.get_by_label("Type flush-all to confirm").fill("flush all")
    expect(button).to_be_disabled()
    flush.get_by_label("Type flush-all to confirm").fill("flush-all")
    expect(button).to_be_enabled()
    button.click()
    expect(console.page.locator("#flush-result")).to_have_text("Flushed: 2 entries deleted.")
    expect(console.page.locator("#entries-table td.empty")).to_be_visible()
    assert admin_proxy.entries()["total"] == 0
    assert admin_proxy.audit()[0]["action"] == "flush"
    console.assert_no_errors()


def test_entries_page_through_newest_first(console: ConsolePage, sdk: OpenAI) -> None:
    prompts = [f"Question number {index} about lists" for index in range(27)]
    for text in prompts:
        chat(sdk, text)
    page = console.page
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#entries-summary")).to_have_text("27 entries; showing 1–25.")
    assert console.rows("entries-table")[0][0] == prompts[-1]
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#entries-summary")).to_have_text("27 entries; showing 26–27.")
    assert [row[0] for row in console.rows("entries-table")] == [prompts[1], prompts[0]]
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    expect(page.locator("#entries-page")).to_have_text("Page 2 of 2")
    console.assert_no_errors()
