"""Invalidation after Redis evicted part of an answer's records (simulated: the keys are deleted by hand).

Under maxmemory an answer can lose its catalog document, its L2 record or its L1 entry independently. Whatever
survives, every matching answer must go: the dry run counts it once, the real run deletes it everywhere, and asking
again is a miss. Answers that do not match stay as they were.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from openai import OpenAI

from tests.support.admin import AdminProxy, Population, Snapshot, chat, embed, stored_id, tenant
from tests.support.stored_answers import store_aged_answers
from tests.support.upstream import FakeUpstream

CAPITAL = "What is the capital of France?"
REVERSE = "How do I reverse a list in Python?"
REVERSE_PARAPHRASE = "What is the way to reverse a Python list?"
BOIL = "At what temperature does water boil?"
FAMILY_KEYS = {"l1": "{prefix}:l1:{scope}:{id}", "l2": "{prefix}:l2:{scope}:{id}", "cat": "{prefix}:cat:{id}"}


@dataclass
class Answer:
    """One cached answer: its id and scope, how to ask for it again, and which of its records were evicted."""

    id: str
    scope: str
    ask_again: Callable[[], str]
    evicted: tuple[str, ...] = ()


def cached(admin: AdminProxy, ask: Callable[[], str], scope: str) -> Answer:
    return Answer(stored_id(admin, ask), scope, ask)


def evict(admin: AdminProxy, answer: Answer, *families: str) -> None:
    """Delete some of the answer's records, as maxmemory eviction would."""
    keys = [FAMILY_KEYS[family].format(prefix=admin.prefix, scope=answer.scope, id=answer.id) for family in families]
    assert admin.redis.delete(*keys) == len(keys)
    answer.evicted = families


@pytest.fixture
def population(admin_proxy: AdminProxy, upstream: FakeUpstream) -> Population[Answer]:
    alice, bob = f"sk-alice-{uuid.uuid4().hex}", f"sk-bob-{uuid.uuid4().hex}"
    a, b = admin_proxy.sdk(alice), admin_proxy.sdk(bob)
    ta, tb = tenant(alice), tenant(bob)
    asks: dict[str, tuple[Callable[[], str], str]] = {
        "a_plain": (lambda: chat(a, CAPITAL), ta),
        "a_team": (lambda: chat(a, CAPITAL, namespace="team"), f"{ta}/team"),
        "a_mini": (lambda: chat(a, CAPITAL, model="fake-model-mini"), ta),
        "a_embed": (lambda: embed(a, CAPITAL), ta),
        "a_other": (lambda: chat(a, BOIL), ta),
        "b_team": (lambda: chat(b, CAPITAL, namespace="team"), f"{tb}/team"),
        "b_plain": (lambda: chat(b, REVERSE), tb),
    }
    answers = {name: cached(admin_proxy, ask, scope) for name, (ask, scope) in asks.items()}
    evict(admin_proxy, answers["a_plain"], "cat")  # L1 and L2 left
    evict(admin_proxy, answers["a_team"], "cat", "l2")  # L1 alone
    evict(admin_proxy, answers["a_mini"], "l1", "cat")  # an L2 record alone
    evict(admin_proxy, answers["a_embed"], "cat")  # L1 alone (embeddings have no L2 record)
    evict(admin_proxy, answers["a_other"], "l2")  # L1 and catalog left
    evict(admin_proxy, answers["b_plain"], "cat")
    return Population(answers, alice, bob)


def check_invalidation(admin: AdminProxy, body: dict[str, Any], expected: frozenset[str]) -> None:
    """Dry run, then the real thing: every record of `expected` goes, the dry run counted them; the rest stays."""
    before = admin.snapshot()
    dry = admin.invalidate(**body, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["matched"], dry.json()["deleted"]) == (len(expected), 0)
    assert admin.snapshot() == before
    real = admin.invalidate(**body)
    assert real.status_code == 200, real.text
    assert (real.json()["matched"], real.json()["deleted"]) == (len(expected), len(expected))
    assert_removed(before, admin.snapshot(), expected)


def assert_removed(before: Snapshot, after: Snapshot, expected: frozenset[str]) -> None:
    assert expected <= before["l1"] | before["l2"] | before["cat"]
    for family in before:
        assert after[family] == before[family] - expected, family


def assert_served(population: Population[Answer], deleted: frozenset[str]) -> None:
    """Deleted answers are misses; the others are hits wherever their L1 entry survived."""
    for name, answer in population.entries.items():
        if answer.id in deleted:
            assert answer.ask_again() == "MISS", name
        elif "l1" not in answer.evicted:
            assert answer.ask_again() == "HIT-L1", name


MODES: dict[str, tuple[Callable[[Population[Answer]], dict[str, Any]], list[str]]] = {
    "model": (lambda p: {"model": "fake-model-mini"}, ["a_mini"]),
    "namespace": (lambda p: {"namespace": "team"}, ["a_team", "b_team"]),
    "tenant": (lambda p: {"tenant": tenant(p.alice)}, ["a_plain", "a_team", "a_mini", "a_embed", "a_other"]),
    "scope": (lambda p: {"scope": tenant(p.alice)}, ["a_plain", "a_mini", "a_embed", "a_other"]),
    "kind-embedding": (lambda p: {"kind": "embedding"}, ["a_embed"]),
    "kind-chat": (lambda p: {"kind": "chat"}, ["a_plain", "a_team", "a_mini", "a_other", "b_team", "b_plain"]),
    "tenant-and-model": (
        lambda p: {"tenant": tenant(p.alice), "model": "fake-model"},
        ["a_plain", "a_team", "a_other"],
    ),
}


@pytest.mark.parametrize("mode", MODES)
def test_invalidation_deletes_matching_answers_whatever_was_evicted(
    admin_proxy: AdminProxy, population: Population[Answer], mode: str
) -> None:
    body_for, names = MODES[mode]
    check_invalidation(admin_proxy, body_for(population), population.ids(*names))
    assert_served(population, population.ids(*names))


def test_invalidation_by_age_finds_old_answers_without_their_catalog_documents(
    admin_proxy: AdminProxy, upstream: FakeUpstream, redis_url: str, api_key: str
) -> None:
    scope = tenant(api_key)
    old = asyncio.run(
        store_aged_answers(redis_url, admin_proxy.prefix, scope, ["old one", "old two", "old three"], 7_200)
    )
    for answer_id, families in zip(old, [("cat",), ("cat", "l2"), ("l1", "cat")], strict=True):
        evict(admin_proxy, Answer(answer_id, scope, lambda: ""), *families)
    fresh = cached(admin_proxy, lambda: chat(admin_proxy.sdk(api_key), "a fresh question"), scope)
    evict(admin_proxy, fresh, "cat")
    check_invalidation(admin_proxy, {"older_than": "1h"}, frozenset(old))
    assert admin_proxy.snapshot() == {"l1": {fresh.id}, "l2": {fresh.id}, "cat": frozenset()}
    assert fresh.ask_again() == "HIT-L1"


def cached_with_copy_without_catalog(admin: AdminProxy, sdk: OpenAI, scope: str) -> tuple[Answer, str]:
    """REVERSE cached, then its paraphrase served from L2 and promoted into L1 under its own key; both catalog
    documents evicted. The original answer and the copy's id."""
    original = cached(admin, lambda: chat(sdk, REVERSE), scope)
    before = admin.ids("l1")
    assert chat(sdk, REVERSE_PARAPHRASE) == "HIT-L2"
    (copy_id,) = admin.ids("l1") - before
    evict(admin, original, "cat")
    evict(admin, Answer(copy_id, scope, lambda: ""), "cat")
    return original, copy_id


def test_invalidation_by_prompt_takes_answers_and_copies_whose_catalog_documents_were_evicted(
    admin_proxy: AdminProxy, population: Population[Answer]
) -> None:
    a = admin_proxy.sdk(population.alice)
    scope = tenant(population.alice)
    original, copy_id = cached_with_copy_without_catalog(admin_proxy, a, scope)
    check_invalidation(admin_proxy, {"prompt": REVERSE, "tenant": scope}, frozenset({original.id, copy_id}))
    assert chat(a, REVERSE_PARAPHRASE) == "MISS"
    assert_served(population, frozenset())


def test_deleting_an_entry_without_its_catalog_document_takes_it_and_its_copies(
    admin_proxy: AdminProxy, population: Population[Answer]
) -> None:
    a = admin_proxy.sdk(population.alice)
    scope = tenant(population.alice)
    original, copy_id = cached_with_copy_without_catalog(admin_proxy, a, scope)
    response = admin_proxy.http.delete(f"/admin/entries/{original.id}")
    assert (response.status_code, response.json()) == (200, {"deleted": 2, "audited": True})
    assert not {original.id, copy_id} & (admin_proxy.ids("l1") | admin_proxy.ids("l2"))
    assert admin_proxy.http.delete(f"/admin/entries/{original.id}").status_code == 404
    assert original.ask_again() == "MISS"
    assert_served(population, frozenset())


def test_an_answer_without_a_catalog_document_is_not_listed_but_is_invalidated(
    admin_proxy: AdminProxy, population: Population[Answer], redis_client: redis.Redis
) -> None:
    listed = {entry["id"] for entry in admin_proxy.entries(tenant=tenant(population.alice))["entries"]}
    assert listed == population.ids("a_other")  # the one alice answer whose catalog document and L1 entry are left
    check_invalidation(admin_proxy, {"tenant": tenant(population.alice)}, population.ids(*MODES["tenant"][1]))


def test_an_answer_whose_header_is_longer_than_the_first_read_is_read_whole(
    admin_proxy: AdminProxy, upstream: FakeUpstream, api_key: str
) -> None:
    long_model = "fake-model-" + "x" * 1_500  # the fields before the response no longer fit in HEADER_BYTES
    scope = tenant(api_key)
    answer = cached(admin_proxy, lambda: chat(admin_proxy.sdk(api_key), CAPITAL, model=long_model), scope)
    evict(admin_proxy, answer, "cat")
    check_invalidation(admin_proxy, {"kind": "chat", "tenant": scope}, frozenset({answer.id}))
    assert answer.ask_again() == "MISS"
