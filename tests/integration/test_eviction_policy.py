"""Redis eviction policies: what the proxy warns about, which keys carry a TTL, and invalidation under real eviction.

Each test that needs a server setting runs a Redis Stack of its own (tests/support/redis_servers.py): the session Redis
keeps its defaults (noeviction, no maxmemory).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from openai import OpenAI
from redis.asyncio import Redis as AsyncRedis

from llmproxy.cache.catalog.index import Catalog
from llmproxy.cache.catalog.invalidation import Invalidation, Invalidator
from llmproxy.cache.catalog.query import EntryFilter
from llmproxy.cache.keys import request_key
from llmproxy.protocols.chat import CHAT
from tests.support.admin import ADMIN_TOKEN, AdminProxy, chat, embed, tenant
from tests.support.clients import openai_sdk
from tests.support.redis_servers import redis_stack
from tests.support.upstream import FakeUpstream

StartProxy = Callable[..., AbstractContextManager[str]]
ALLKEYS_WARNING = "can evict keys without a TTL"
WITH_TTL = {"l1", "l2", "cat", "lease"}  # cache keys: answers, L2 records, catalog documents, single-flight leases
WITHOUT_TTL = {"audit", "ts"}  # the audit stream and the traffic history (TimeSeries)
FILL_PROMPTS = 150
CHOICES = 64  # the fake echoes the prompt in every choice: about 20 KB per answer, so Redis fills quickly


def test_cache_keys_carry_a_ttl_and_the_audit_log_and_history_none(
    admin_proxy: AdminProxy, upstream: FakeUpstream, api_key: str
) -> None:
    sdk = admin_proxy.sdk(api_key)
    assert chat(sdk, "How do I reverse a list in Python?") == "MISS"
    assert chat(sdk, "What is the way to reverse a Python list?") == "HIT-L2"  # a promoted copy
    assert embed(sdk, "some text") == "MISS"
    assert admin_proxy.invalidate(model="no-such-model", dry_run=True).status_code == 200  # an audit event
    families: dict[str, set[int]] = {}
    for key in admin_proxy.redis.scan_iter(match=f"{admin_proxy.prefix}:*", count=1000):
        family = key.decode().removeprefix(f"{admin_proxy.prefix}:").split(":")[0]
        families.setdefault(family, set()).add(int(admin_proxy.redis.pttl(key)))
    assert {"l1", "l2", "cat", "audit", "ts"} <= families.keys() <= WITH_TTL | WITHOUT_TTL
    for family, ttls in families.items():
        assert all(ttl > 0 for ttl in ttls) if family in WITH_TTL else ttls == {-1}, (family, ttls)


@pytest.mark.parametrize(
    ("policy", "warned"),
    [("allkeys-lru", True), ("allkeys-lfu", True), ("allkeys-random", True), ("volatile-lru", False)],
)
def test_readyz_names_the_eviction_policy_and_warns_under_one_that_evicts_keys_without_ttl(
    tmp_path: Path, start_proxy: StartProxy, caplog: pytest.LogCaptureFixture, policy: str, warned: bool
) -> None:
    with redis_stack(tmp_path, "--maxmemory-policy", policy) as url:
        with caplog.at_level(logging.WARNING), start_proxy(redis_url=url, semantic={"enabled": False}) as proxy:
            ready = httpx.get(proxy + "/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")  # a risk, not an outage
    assert ready.json()["checks"]["redis_eviction_policy"] == policy
    warnings = ready.json().get("warnings", [])
    logged = [record.getMessage() for record in caplog.records if ALLKEYS_WARNING in record.getMessage()]
    if warned:
        assert len(warnings) == 1 and policy in warnings[0] and ALLKEYS_WARNING in warnings[0], warnings
        assert len(logged) == 1 and policy in logged[0], logged  # once, at startup
    else:
        assert (warnings, logged) == ([], [])


def test_a_redis_that_forbids_config_still_has_its_policy_read_from_info(
    tmp_path: Path, start_proxy: StartProxy
) -> None:
    with redis_stack(tmp_path, "--maxmemory-policy", "allkeys-lru") as url:
        with start_proxy(redis_url=restricted_user(url, "-config"), semantic={"enabled": False}) as proxy:
            ready = httpx.get(proxy + "/readyz").json()
    assert ready["checks"]["redis_eviction_policy"] == "allkeys-lru"
    assert len(ready["warnings"]) == 1


def test_a_redis_that_forbids_config_and_info_has_an_unknown_policy(tmp_path: Path, start_proxy: StartProxy) -> None:
    with redis_stack(tmp_path, "--maxmemory-policy", "allkeys-lru") as url:
        with start_proxy(redis_url=restricted_user(url, "-config", "-info"), semantic={"enabled": False}) as proxy:
            ready = httpx.get(proxy + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"redis": "ok", "redis_breaker": "closed", "redis_eviction_policy": "unknown"},
    }


def restricted_user(url: str, *denied: str) -> str:
    """The URL of a new ACL user allowed everything but the denied commands, as managed Redis services do."""
    with redis.Redis.from_url(url) as client:
        client.acl_setuser("proxy", enabled=True, passwords=["+secret"], keys=["*"], channels=["*"],
                           commands=["+@all", *denied])  # fmt: skip
    return url.replace("redis://", "redis://proxy:secret@")


def test_a_dry_run_counts_answers_without_catalog_documents_while_redis_refuses_writes(
    tmp_path: Path, start_proxy: StartProxy, upstream: FakeUpstream
) -> None:
    prefix, api_key = "full", f"sk-{uuid.uuid4().hex}"
    with redis_stack(tmp_path) as url, closing(redis.Redis.from_url(url)) as client:
        with start_proxy(redis_url=url, redis={"key_prefix": prefix}) as proxy:
            sdk = openai_sdk(proxy, api_key, upstream)
            assert [big_chat(sdk, prompt) for prompt in WARM_UP] == ["MISS"] * len(WARM_UP)
        ids = [key.decode().rpartition(":")[2] for key in client.scan_iter(match=f"{prefix}:l1:*")]
        client.delete(*(f"{prefix}:cat:{entry_id}" for entry_id in sorted(ids)[:4]))  # as if evicted
        client.config_set("maxmemory", 1)  # noeviction (the default): every write is refused from now on
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set(f"{prefix}:probe", "x")
        counted = asyncio.run(dry_run(url, prefix, EntryFilter(model="fake-model")))
        client.config_set("maxmemory", 0)
    assert counted == Invalidation(len(ids), 0)


async def dry_run(url: str, prefix: str, entry_filter: EntryFilter) -> Invalidation:
    client = AsyncRedis.from_url(url)
    try:
        return await Invalidator(client, prefix, Catalog(client, prefix), None, None).by_filter(entry_filter, True)
    finally:
        await client.aclose()


def test_under_real_allkeys_lru_eviction_invalidation_leaves_no_matching_answer(
    tmp_path: Path, start_proxy: StartProxy, upstream: FakeUpstream
) -> None:
    prefix, api_key = "evict", f"sk-{uuid.uuid4().hex}"
    with redis_stack(tmp_path) as url, closing(redis.Redis.from_url(url)) as client:
        with start_proxy(redis_url=url, redis={"key_prefix": prefix}, admin={"token": ADMIN_TOKEN}) as proxy:
            with closing(AdminProxy(proxy, prefix, client, upstream)) as admin:
                sdk = admin.sdk(api_key)
                for prompt in WARM_UP:  # the vector index allocates its first block of 1,024 vectors (~1.5 MB)
                    assert big_chat(sdk, prompt) == "MISS"
                # Room for about 70 more answers: asking 150 makes Redis evict keys of some answers, at random.
                client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + 2**20)
                client.config_set("maxmemory-policy", "allkeys-lru")
                with ThreadPoolExecutor(4) as pool:
                    assert set(pool.map(lambda prompt: big_chat(sdk, prompt), FILL)) == {"MISS"}
                assert int(client.info("stats")["evicted_keys"]) > 0
                before = admin.snapshot()
                assert before["l1"] - before["cat"], "no answer lost its catalog document: nothing was tested"
                dry = admin.invalidate(model="fake-model", dry_run=True).json()
                real = admin.invalidate(model="fake-model").json()
                left = {family: len(ids) for family, ids in admin.snapshot().items()}
                assert left == {"l1": 0, "l2": 0, "cat": 0}, f"of {len(before['l1'])} answers in L1, left: {left}"
                assert 0 < real["deleted"] <= dry["matched"]  # recording the dry run may have evicted some more
                client.config_set("maxmemory", 0)  # no more eviction: what is asked again is stored again
                ids = {request_key(CHAT, tenant(api_key), body(prompt)): prompt for prompt in WARM_UP + FILL}
                survivors = [ids[entry_id] for entry_id in sorted(before["l1"])[:20]]
                assert [big_chat(sdk, prompt) for prompt in survivors] == ["MISS"] * len(survivors)


WARM_UP = [f"warm-up question number {number}" for number in range(10)]
FILL = [f"fill question number {number}" for number in range(FILL_PROMPTS)]


def body(prompt: str) -> dict[str, Any]:
    return {"model": "fake-model", "messages": [{"role": "user", "content": prompt}], "n": CHOICES}


def big_chat(sdk: OpenAI, prompt: str) -> str:
    request = body(prompt)
    raw = sdk.chat.completions.with_raw_response.create(
        model=request["model"], messages=request["messages"], n=request["n"]
    )
    return str(raw.headers["x-cache"])
