"""The proxy on a real Redis Cluster (3 primaries + 3 replicas from the Redis Stack binaries), with the L2 index
and the catalog on a standalone search node beside it (redis.search_url): this Redis Stack 7.4 cannot search
across shards, and the startup probe says so."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from llmproxy.cache.catalog.answer_keys import AnswerKeys
from llmproxy.cache.catalog.index import Catalog, CatalogRecord
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.semantic import Partition, SemanticIndex, SemanticRecord
from llmproxy.cache.writeback import StorePlan, WriteBack
from llmproxy.protocols.chat import CHAT
from llmproxy.settings import HnswSettings, RedisSettings
from llmproxy.store.redis_client import create_redis
from tests.integration.test_single_flight import SLOW, ask_together, assert_one_answer, flights
from tests.support.admin import ADMIN_TOKEN, tenant
from tests.support.clients import openai_sdk
from tests.support.redis_servers import redis_stack
from tests.support.redis_topologies import Cluster, redis_cluster
from tests.support.upstream import FakeUpstream, metric
from tests.support.waiting import eventually

AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
ANSWER: Any = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "fake-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Four."}, "finish_reason": "stop"}],
}
StartProxy = Callable[..., AbstractContextManager[str]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def search_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_stack(tmp_path_factory.mktemp("search-node")) as url:
        yield url


@pytest.fixture
def on_cluster(start_proxy: StartProxy, cluster: Cluster, search_url: str, key_prefix: str) -> StartProxy:
    """Start a proxy on the cluster (with the search node unless search_url=None is given)."""

    def start(search: str | None = search_url, **sections: dict[str, Any]) -> AbstractContextManager[str]:
        redis_section = {"mode": "cluster", "key_prefix": key_prefix, "search_url": search}
        return start_proxy(redis_url=cluster.url, redis=redis_section, admin={"token": ADMIN_TOKEN}, **sections)

    return start


def ask(proxy: str, api_key: str, fake: FakeUpstream, text: str, model: str = "fake-model") -> str:
    with openai_sdk(proxy, api_key, fake) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": text}])
        return raw.headers["x-cache"]


def stored(cluster: Cluster, pattern: str) -> int:
    return sum(cluster.keys_per_primary(pattern).values())


def test_answers_spread_over_every_primary_and_hit_l1(
    on_cluster: StartProxy, cluster: Cluster, key_prefix: str, api_key: str, upstream: FakeUpstream
) -> None:
    questions = [f"What is the capital of country number {number}?" for number in range(24)]
    with on_cluster() as proxy:
        first = [ask(proxy, api_key, upstream, text) for text in questions]
        assert eventually(lambda: stored(cluster, f"{key_prefix}:l1:*") == len(questions))
        again = [ask(proxy, api_key, upstream, text) for text in questions]
    assert set(first) == {"MISS"} and set(again) == {"HIT-L1"}
    assert upstream.calls() == len(questions)
    spread = cluster.keys_per_primary(f"{key_prefix}:l1:*")
    assert len(spread) == 3 and all(count > 0 for count in spread.values()), spread


def test_an_answers_keys_share_one_hash_tag(
    on_cluster: StartProxy, cluster: Cluster, search_url: str, key_prefix: str, api_key: str, upstream: FakeUpstream
) -> None:
    with on_cluster() as proxy:
        ask(proxy, api_key, upstream, "Which river is the longest?")
        assert eventually(lambda: stored(cluster, f"{key_prefix}:l1:*") == 1)
    [node] = [node for node in cluster.primaries() if cluster.keys_per_primary(f"{key_prefix}:l1:*")[node.port]]
    with node.client() as client:
        [l1] = [key.decode() for key in client.scan_iter(match=f"{key_prefix}:l1:*")]
    request_hash = l1.rpartition(":")[2]
    assert request_hash.startswith("{") and request_hash.endswith("}") and len(request_hash) == 66
    with redis.Redis.from_url(search_url) as search:  # L2 record and catalog document: on the search node
        assert search.exists(f"{key_prefix}:l2:{l1.split(':', 2)[2]}", f"{key_prefix}:cat:{request_hash}") == 2


def test_paraphrase_hits_l2_through_the_search_node(
    on_cluster: StartProxy, api_key: str, upstream: FakeUpstream
) -> None:
    with on_cluster() as proxy:
        answers = [
            ask(proxy, api_key, upstream, "How do I reverse a list in Python?"),
            ask(proxy, api_key, upstream, "How can I reverse a list in Python?"),
        ]
        assert metric(proxy, "llmproxy_redis_cross_shard_search") == 0
    assert answers == ["MISS", "HIT-L2"]
    assert upstream.calls() == 1


def test_single_flight_across_two_proxies_on_a_cluster(
    on_cluster: StartProxy, api_key: str, upstream: FakeUpstream
) -> None:
    with on_cluster() as first, on_cluster() as second:
        answers = asyncio.run(ask_together([first, second], api_key, upstream, [False, True] * 6, SLOW))
        assert flights([first, second], "leader", "stored") == 1
    assert upstream.calls() == 1
    assert_one_answer(answers)


def test_history_and_audit_on_a_cluster(
    on_cluster: StartProxy, key_prefix: str, api_key: str, upstream: FakeUpstream
) -> None:
    with on_cluster() as proxy:
        answers = [ask(proxy, api_key, upstream, "Name a prime number above ten.") for _ in range(3)]

        def recorded() -> bool:
            totals = httpx.get(proxy + "/admin/stats", params={"from": "-10m"}, headers=AUTH).json()["totals"]
            return bool(totals["requests"] == 3 and totals["hits_l1"] == 2)

        assert eventually(recorded)
        deleted = httpx.post(proxy + "/admin/invalidate", json={"tenant": tenant(api_key)}, headers=AUTH, timeout=10)
        events = httpx.get(proxy + "/admin/audit", headers=AUTH).json()["events"]
    assert answers == ["MISS", "HIT-L1", "HIT-L1"]
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 1
    assert events[0]["action"] == "invalidate"


def test_admin_lists_invalidates_and_flushes_on_a_cluster(
    on_cluster: StartProxy, cluster: Cluster, search_url: str, key_prefix: str, api_key: str, upstream: FakeUpstream
) -> None:
    with on_cluster() as proxy:
        for number in range(12):
            ask(proxy, api_key, upstream, f"Spell the number {number} in French.", model="fake-model")
        for number in range(6):
            ask(proxy, api_key, upstream, f"Spell the number {number} in German.", model="fake-model-2")
        assert eventually(lambda: stored(cluster, f"{key_prefix}:l1:*") == 18)
        listed = httpx.get(proxy + "/admin/entries", params={"limit": 100}, headers=AUTH).json()
        french = next(entry["id"] for entry in listed["entries"] if entry["model"] == "fake-model")
        shown = httpx.get(proxy + f"/admin/entries/{french}", headers=AUTH)
        removed = httpx.delete(proxy + f"/admin/entries/{french}", headers=AUTH)
        by_model = httpx.post(proxy + "/admin/invalidate", json={"model": "fake-model-2"}, headers=AUTH, timeout=10)
        left = stored(cluster, f"{key_prefix}:l1:*")
        overview = httpx.get(proxy + "/admin/overview", headers=AUTH)
        flushed = httpx.post(proxy + "/admin/flush", json={"confirm": "flush-all"}, headers=AUTH, timeout=10)
    assert listed["total"] == 18
    assert shown.status_code == 200 and removed.status_code == 200, (shown.text, removed.text)
    assert by_model.status_code == 200 and by_model.json()["deleted"] == 6 and left == 11
    assert overview.status_code == 200, overview.text
    assert flushed.status_code == 200 and flushed.json()["deleted"] == 11, flushed.text
    assert stored(cluster, f"{key_prefix}:l1:*") == 0
    with redis.Redis.from_url(search_url) as search:
        assert not list(search.scan_iter(match=f"{key_prefix}:cat:*")) and not list(
            search.scan_iter(match=f"{key_prefix}:l2:*")
        )


def test_without_cross_shard_search_or_search_node_it_says_so_and_caches_exact_matches_only(
    on_cluster: StartProxy, api_key: str, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="llmproxy.lifespan")
    with on_cluster(search=None) as proxy:
        answers = [
            ask(proxy, api_key, upstream, "How do I sort a dict by value in Python?"),
            ask(proxy, api_key, upstream, "How can I sort a dict by value in Python?"),
            ask(proxy, api_key, upstream, "How do I sort a dict by value in Python?"),
        ]
        across = metric(proxy, "llmproxy_redis_cross_shard_search")
        listing = httpx.get(proxy + "/admin/entries", headers=AUTH)
    assert answers == ["MISS", "MISS", "HIT-L1"]  # the paraphrase is not searched on one shard
    assert across == 0
    assert listing.status_code == 503 and "search_url" in listing.text
    lines = [record.getMessage() for record in caplog.records if "cross-shard search" in record.getMessage()]
    assert len(lines) == 1 and "exact matches only" in lines[0], lines


def test_shadow_verification_tallies_its_audits_on_a_cluster(
    on_cluster: StartProxy, api_key: str, upstream: FakeUpstream
) -> None:
    # The ledger's tally is a MULTI over two of its keys: one hash tag keeps them in one slot.
    meaning = {"X-Fake-Answers": "meaning"}
    with on_cluster(semantic={"guards": False, "threshold": 0.2, "audit_rate": 1.0}) as proxy:
        with openai_sdk(proxy, api_key, upstream) as sdk:
            for text in ("How do I reset my password?", "how can I reset my password"):
                sdk.chat.completions.create(
                    model="fake-model", messages=[{"role": "user", "content": text}], extra_headers=meaning
                )
        audited = lambda: metric(proxy, "llmproxy_l2_audit_total", model="fake-model", outcome="agree") == 1  # noqa: E731
        assert eventually(audited), "the L2 hit was audited and tallied"
        response = httpx.get(proxy + "/admin/stats", headers=AUTH)
    assert response.json()["l2_precision"]["fake-model"]["agree"] == 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def write_back_on(client: Any, key_prefix: str, hash_tags: bool) -> tuple[WriteBack, ExactCache, Catalog]:
    """A write-back with L1, L2 and the catalog all on the cluster (as with Redis 8's cross-shard search)."""
    exact = ExactCache(client, key_prefix, hash_tags)
    index = SemanticIndex(client, key_prefix, dimension=4, hnsw=HnswSettings())
    catalog = Catalog(client, key_prefix, hash_tags)
    return WriteBack(redis=client, exact=exact, index=index, clock=time.time, catalog=catalog), exact, catalog


def plan_for(exact: ExactCache, request_hash: str) -> StorePlan:
    key = exact.key("tenant-1", request_hash)
    record = SemanticRecord(
        Partition("tenant-1", "fake-model", "p", "c"), "a prompt", key, np.ones(4, dtype=np.float32)
    )
    listing = CatalogRecord("tenant-1", "fake-model", CHAT.name, "a prompt", key, key)
    return StorePlan(key=key, protocol=CHAT, model="fake-model", ttl_s=60, record=record, listing=listing)


@pytest.mark.anyio
async def test_with_everything_on_the_cluster_one_answer_is_one_multi_and_deletions_go_per_answer(
    cluster: Cluster, key_prefix: str
) -> None:
    client = create_redis(RedisSettings(mode="cluster", url=cluster.url), cluster.url)
    try:
        write_back, exact, catalog = write_back_on(client, key_prefix, hash_tags=True)
        plans = [plan_for(exact, f"{number:064x}") for number in range(12)]
        outcomes = [await write_back.store(plan, ANSWER) for plan in plans]
        spread = cluster.keys_per_primary(f"{key_prefix}:l1:*")
        keys = AnswerKeys(client, key_prefix, catalog.key)
        unlinked = await keys.unlink([plan.key for plan in plans])
        untagged, untagged_exact, _ = write_back_on(client, key_prefix + "-untagged", hash_tags=False)
        crossing = await untagged.store(plan_for(untagged_exact, "ab" * 32), ANSWER)
    finally:
        await client.aclose()
    assert outcomes == ["stored"] * 12
    assert all(count > 0 for count in spread.values()) and len(spread) == 3, spread
    assert (unlinked.l1, unlinked.l2, unlinked.catalog) == (12, 12, 12)
    assert stored(cluster, f"{key_prefix}*") == 0
    assert crossing == "failed", "without the hash tag the MULTI crosses slots (CROSSSLOT): fail open"
