"""Invalidation through the admin API: each mode deletes exactly its entries from L1, L2 and the catalog.

Every case runs a dry run first (the right count, nothing deleted), then for real; afterwards the deleted
answers are misses and everything else is still a hit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis as AsyncRedis

from llmproxy.cache.catalog.index import Catalog
from llmproxy.cache.catalog.invalidation import Invalidation, Invalidator
from llmproxy.cache.catalog.query import EntryFilter
from tests.support.admin import (
    ADMIN_TOKEN,
    AdminProxy,
    Population,
    Snapshot,
    chat,
    drop_indexes,
    embed,
    stored_id,
    tenant,
)
from tests.support.stored_answers import store_aged_answers
from tests.support.upstream import FakeUpstream

CAPITAL = "What is the capital of France?"
REVERSE = "How do I reverse a list in Python?"
REVERSE_PARAPHRASE = "What is the way to reverse a Python list?"


@dataclass
class Entry:
    """One cached answer of the population: its id, and how to ask for it again (returns X-Cache)."""

    id: str
    ask_again: Callable[[], str]


def cached(admin: AdminProxy, ask: Callable[[], str]) -> Entry:
    return Entry(stored_id(admin, ask), ask)


@pytest.fixture
def population(admin_proxy: AdminProxy, upstream: FakeUpstream) -> Population[Entry]:
    alice, bob = f"sk-alice-{uuid.uuid4().hex}", f"sk-bob-{uuid.uuid4().hex}"
    a, b = admin_proxy.sdk(alice), admin_proxy.sdk(bob)
    asks: dict[str, Callable[[], str]] = {
        "a_plain": lambda: chat(a, CAPITAL),
        "a_team": lambda: chat(a, CAPITAL, namespace="team"),
        "a_mini": lambda: chat(a, CAPITAL, model="fake-model-mini"),
        "a_embed": lambda: embed(a, CAPITAL),
        "b_team": lambda: chat(b, CAPITAL, namespace="team"),
        "b_plain": lambda: chat(b, REVERSE),
    }
    return Population({name: cached(admin_proxy, ask) for name, ask in asks.items()}, alice, bob)


def check_invalidation(admin: AdminProxy, body: dict[str, Any], expected: frozenset[str]) -> dict[str, Any]:
    """Dry run, then the real thing: exactly `expected` leaves L1, L2 and the catalog; the rest stays."""
    before = admin.snapshot()
    dry = admin.invalidate(**body, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["dry_run"], dry.json()["matched"], dry.json()["deleted"]) == (True, len(expected), 0)
    assert admin.snapshot() == before
    real = admin.invalidate(**body)
    assert real.status_code == 200, real.text
    assert (real.json()["matched"], real.json()["deleted"]) == (len(expected), len(expected))
    assert_removed(before, admin.snapshot(), expected)
    result: dict[str, Any] = real.json()
    return result


def assert_removed(before: Snapshot, after: Snapshot, expected: frozenset[str]) -> None:
    assert expected <= before["l1"] and expected <= before["cat"]
    for family in before:
        assert after[family] == before[family] - expected, family


def assert_served(population: Population[Entry], deleted: frozenset[str]) -> None:
    for name, entry in population.entries.items():
        assert entry.ask_again() == ("MISS" if entry.id in deleted else "HIT-L1"), name


MODES: dict[str, tuple[Callable[[Population[Entry]], dict[str, Any]], list[str]]] = {
    "scope-with-namespace": (lambda p: {"scope": f"{tenant(p.alice)}/team"}, ["a_team"]),
    "scope-without-namespace": (lambda p: {"scope": tenant(p.alice)}, ["a_plain", "a_mini", "a_embed"]),
    "tenant": (lambda p: {"tenant": tenant(p.alice)}, ["a_plain", "a_team", "a_mini", "a_embed"]),
    "namespace": (lambda p: {"namespace": "team"}, ["a_team", "b_team"]),
    "model": (lambda p: {"model": "fake-model-mini"}, ["a_mini"]),
    "kind": (lambda p: {"kind": "embedding"}, ["a_embed"]),
    "tenant-and-model": (lambda p: {"tenant": tenant(p.alice), "model": "fake-model"}, ["a_plain", "a_team"]),
    "tenant-and-namespace": (lambda p: {"tenant": tenant(p.bob), "namespace": "team"}, ["b_team"]),
}


@pytest.mark.parametrize("mode", MODES)
def test_invalidation_deletes_exactly_the_matching_entries(
    admin_proxy: AdminProxy, population: Population[Entry], mode: str
) -> None:
    body_for, names = MODES[mode]
    body = body_for(population)
    result = check_invalidation(admin_proxy, body, population.ids(*names))
    assert result["filters"] == body
    assert_served(population, population.ids(*names))


def test_invalidation_by_prompt_takes_paraphrase_answers_and_their_promoted_copies(
    admin_proxy: AdminProxy, upstream: FakeUpstream, population: Population[Entry]
) -> None:
    a = admin_proxy.sdk(population.alice)
    original = cached(admin_proxy, lambda: chat(a, REVERSE))
    before = admin_proxy.ids("l1")
    assert chat(a, REVERSE_PARAPHRASE) == "HIT-L2"  # promoted into L1 under the paraphrase's own key
    (copy,) = admin_proxy.ids("l1") - before
    # Bob asked the same question, but only Alice's answers are meant.
    body = {"prompt": REVERSE, "tenant": tenant(population.alice)}
    result = check_invalidation(admin_proxy, body, frozenset({original.id, copy}))
    assert result["filters"]["distance"] == 0.16  # semantic.threshold when the body gives none
    assert chat(a, REVERSE_PARAPHRASE) == "MISS"
    assert_served(population, frozenset())


def test_invalidation_by_prompt_honours_the_distance_and_the_filters(
    admin_proxy: AdminProxy, population: Population[Entry]
) -> None:
    paraphrase = admin_proxy.invalidate(prompt="Which city is the capital of France?", distance=0.001, dry_run=True)
    assert paraphrase.json()["matched"] == 0
    # The same prompt is at distance ~0 in every partition; the model filter keeps the mini model's answer.
    body = {"prompt": CAPITAL, "distance": 0.001, "model": "fake-model"}
    check_invalidation(admin_proxy, body, population.ids("a_plain", "a_team", "b_team"))
    assert_served(population, population.ids("a_plain", "a_team", "b_team"))


def test_invalidation_by_age_uses_the_creation_time(
    admin_proxy: AdminProxy, upstream: FakeUpstream, redis_url: str, api_key: str
) -> None:
    old = asyncio.run(
        store_aged_answers(redis_url, admin_proxy.prefix, tenant(api_key), ["old one", "old two"], age_s=7_200)
    )
    fresh = cached(admin_proxy, lambda: chat(admin_proxy.sdk(api_key), "a fresh question"))
    check_invalidation(admin_proxy, {"older_than": "1h"}, frozenset(old))
    assert admin_proxy.ids("l1") == {fresh.id}
    assert fresh.ask_again() == "HIT-L1"


def test_deletions_are_counted_by_mode(admin_proxy: AdminProxy, redis_url: str, api_key: str) -> None:
    counted: list[tuple[str, int]] = []

    async def invalidate() -> None:
        client = AsyncRedis.from_url(redis_url)
        invalidator = Invalidator(
            client, admin_proxy.prefix, Catalog(client, admin_proxy.prefix), None, None, lambda *c: counted.append(c)
        )
        assert await invalidator.by_filter(EntryFilter(tenant=tenant(api_key)), dry_run=True) == Invalidation(2, 0)
        assert await invalidator.by_filter(EntryFilter(tenant=tenant(api_key)), dry_run=False) == Invalidation(2, 2)
        await client.aclose()

    asyncio.run(store_aged_answers(redis_url, admin_proxy.prefix, tenant(api_key), ["one", "two"], age_s=0))
    asyncio.run(invalidate())
    assert counted == [("tenant", 2)]  # dry runs count nothing


def test_flush_needs_confirmation_and_deletes_only_cache_keys(
    admin_proxy: AdminProxy, population: Population[Entry], redis_client: Any
) -> None:
    other = f"{admin_proxy.prefix}:history:hits"
    redis_client.set(other, "1")
    for body in ({}, {"confirm": "yes"}, {"confirm": "flush-all", "dry_run": "yes"}):
        assert admin_proxy.http.post("/admin/flush", json=body).status_code == 400
    before = admin_proxy.snapshot()
    dry = admin_proxy.http.post("/admin/flush", json={"confirm": "flush-all", "dry_run": True}).json()
    assert (dry["matched"], dry["deleted"], admin_proxy.snapshot()) == (6, 0, before)
    real = admin_proxy.http.post("/admin/flush", json={"confirm": "flush-all"}).json()
    assert (real["matched"], real["deleted"]) == (6, 6)
    assert admin_proxy.snapshot() == {"l1": frozenset(), "l2": frozenset(), "cat": frozenset()}
    assert redis_client.get(other) == b"1"
    assert [event["action"] for event in admin_proxy.audit()] == ["flush", "flush"]
    assert_served(population, population.ids(*population.entries))
    redis_client.delete(other)


def test_every_invalidation_is_audited_with_who_what_and_how_many(
    admin_proxy: AdminProxy, population: Population[Entry]
) -> None:
    actor = {"X-LLMProxy-Actor": "ops@example.com"}
    model = {"model": "fake-model-mini"}
    admin_proxy.http.post("/admin/invalidate", json={**model, "dry_run": True}, headers=actor)
    admin_proxy.http.post("/admin/invalidate", json=model)
    admin_proxy.http.delete(f"/admin/entries/{population.entries['b_plain'].id}", headers=actor)
    events = admin_proxy.audit()
    assert [(e["action"], e["who"], e["dry_run"], e["matched"], e["deleted"]) for e in events] == [
        ("delete", "ops@example.com", False, 1, 1),
        ("invalidate", "admin", False, 1, 1),
        ("invalidate", "ops@example.com", True, 1, 0),
    ]
    assert events[1]["filters"] == model
    assert events[0]["filters"] == {"id": population.entries["b_plain"].id}
    assert all(event["client"] == "127.0.0.1" and event["at"].endswith("+00:00") for event in events)


def test_a_bad_actor_header_is_refused_before_anything_is_deleted(
    admin_proxy: AdminProxy, population: Population[Entry]
) -> None:
    before = admin_proxy.snapshot()
    response = admin_proxy.http.post(
        "/admin/invalidate", json={"model": "fake-model"}, headers={"X-LLMProxy-Actor": "x" * 65}
    )
    assert (response.status_code, response.json()["error"]["param"]) == (400, "X-LLMProxy-Actor")
    assert admin_proxy.snapshot() == before
    assert admin_proxy.audit() == []


def test_catalog_and_filter_invalidation_work_without_the_semantic_layer(
    start_proxy: Callable[..., AbstractContextManager[str]],
    key_prefix: str,
    redis_client: Any,
    api_key: str,
    upstream: FakeUpstream,
) -> None:
    with start_proxy(
        redis={"key_prefix": key_prefix}, admin={"token": ADMIN_TOKEN}, semantic={"enabled": False}
    ) as url:
        with closing(AdminProxy(url, key_prefix, redis_client, upstream)) as admin:
            entry = cached(admin, lambda: chat(admin.sdk(api_key), CAPITAL))
            by_prompt = admin.invalidate(prompt=CAPITAL)
            assert (by_prompt.status_code, by_prompt.json()["error"]["param"]) == (400, "prompt")
            check_invalidation(admin, {"tenant": tenant(api_key)}, frozenset({entry.id}))
    drop_indexes(redis_client, [f"{key_prefix}:catalog"])
    redis_client.delete(f"{key_prefix}:audit")
