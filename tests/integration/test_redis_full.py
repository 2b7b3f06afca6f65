"""A full Redis (`maxmemory` reached under `noeviction`): it refuses writes but still answers reads.

That is not an outage: cached answers keep being served, new answers are served but not stored (counted as
`rejected_oom`), the breaker stays closed, and the admin API's dry runs still answer. The Redis Stack is the test's
own, filled with keys of its own up to a small `maxmemory`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
import redis

from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from tests.support.admin import ADMIN_TOKEN, chat
from tests.support.clients import caller_headers, openai_sdk
from tests.support.upstream import FakeUpstream, metric

HEADROOM_BYTES = 2 * 1024 * 1024  # maxmemory above what the proxy's first entries use
FILLER = b"x" * 64 * 1024
MAX_FILLERS = 1000  # a bound on the filling loop: 64 MB, far above the headroom
# More refused writes than the breaker's threshold: if they counted as failures, it would open.
# A generous command timeout: a busy machine's slow reply must not pass for the refusals under test.
BREAKER = {"breaker_failure_threshold": 2, "breaker_reset_s": 60.0, "socket_timeout_s": 2.0}
NEW = 8


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path / "redis")) as server:
        yield server


def fill(url: str) -> None:
    """Cap memory just above what is used now, under noeviction, and write filler keys until Redis refuses one."""
    with redis.Redis.from_url(url) as client:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", used_memory(client) + HEADROOM_BYTES)
        for n in itertools.count():
            assert n < MAX_FILLERS, "Redis never refused a write"
            try:
                client.set(f"filler:{n}", FILLER)
            except redis.exceptions.OutOfMemoryError:
                break
        # Full, and it stays full: the refused command's own buffer is freed afterwards, which would leave room
        # for a small write again; well below what is used, every write is refused.
        client.config_set("maxmemory", used_memory(client) // 2)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def ask_together(proxy: str, api_key: str, fake: FakeUpstream, texts: list[str]) -> list[str]:
    """X-Cache of each question, all sent at once: their lookups come first, then their write-backs, in a row."""

    def one(text: str) -> str:
        body = {"model": "fake-model", "messages": [{"role": "user", "content": text}]}
        headers = caller_headers(api_key, fake) | {"x-fake-latency-ms": "300"}
        response = httpx.post(proxy + "/v1/chat/completions", json=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.headers["x-cache"]

    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(one, texts))


def test_a_full_redis_keeps_serving_hits_stores_nothing_new_and_the_breaker_stays_closed(
    start_proxy: Callable[..., AbstractContextManager[str]],
    own_redis: EmbeddedRedis,
    api_key: str,
    upstream: FakeUpstream,
) -> None:
    with (
        start_proxy(redis_url=own_redis.url, redis=BREAKER, admin={"token": ADMIN_TOKEN}) as proxy,
        openai_sdk(proxy, api_key, upstream, timeout=10) as sdk,
    ):
        assert [chat(sdk, "What is Redis?") for _ in range(2)] == ["MISS", "HIT-L1"]
        assert chat(sdk, "How do I reverse a list in Python?") == "MISS"
        fill(own_redis.url)
        questions = [f"A new question {n} while Redis is full" for n in range(NEW)]
        new = ask_together(proxy, api_key, upstream, questions)
        again = [chat(sdk, question) for question in questions]
        cached = chat(sdk, "What is Redis?")
        paraphrase = chat(sdk, "How can I reverse a list in Python?")  # its promotion to L1 is refused too
        rejected = metric(proxy, "llmproxy_cache_writes_total", outcome="rejected_oom")
        state = metric(proxy, "llmproxy_redis_breaker_state")
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        dry_run = httpx.post(
            proxy + "/admin/invalidate", json={"model": "fake-model", "dry_run": True}, headers=headers, timeout=10
        )
    assert new == again == ["MISS"] * NEW, "new answers are served, not stored"
    assert (cached, paraphrase) == ("HIT-L1", "HIT-L2")
    assert upstream.calls() == 2 + 2 * NEW
    assert rejected == 2 * NEW
    assert state == 0
    assert dry_run.status_code == 200, dry_run.text
    assert (dry_run.json()["matched"], dry_run.json()["deleted"]) == (2, 0)
