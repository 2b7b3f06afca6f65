"""A JSON answer reaches its caller before its write-back runs; the writes left waiting are bounded and counted.

Redis writes are held with `CLIENT PAUSE ... WRITE` on a Redis Stack of the test's own (reads still answer), so
what a client gets while the write-back cannot run shows whether the response waited for it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import redis

from llmproxy.store.embedded_redis import EmbeddedRedis
from tests.conftest import TEST_KEY_PREFIX, FakeUpstream
from tests.support.upstream import metric
from tests.support.waiting import eventually

CHAT = "/v1/chat/completions"
PAUSE_MS = 30_000  # ended by CLIENT UNPAUSE long before


def body(text: str) -> dict[str, Any]:
    return {"model": "fake-model", "messages": [{"role": "user", "content": text}]}


@contextmanager
def writes_paused(client: redis.Redis) -> Iterator[None]:
    client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
    try:
        yield
    finally:
        client.execute_command("CLIENT", "UNPAUSE")


def l1_keys(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter(f"{TEST_KEY_PREFIX}:l1:*"))


def gets(client: redis.Redis) -> int:
    """GET commands Redis has run so far."""
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


@contextmanager
def proxy_on(
    start_proxy: Callable[..., AbstractContextManager[str]],
    own_redis: EmbeddedRedis,
    single_flight: bool = False,
    **cache: Any,
) -> Iterator[tuple[str, redis.Redis]]:
    # A write held by the pause must wait for it rather than time out (and fail open). Single-flight takes a lease
    # (a write) before forwarding: off, unless the test holds writes only once the lease is taken.
    sections: dict[str, Any] = {
        "redis": {"socket_timeout_s": 60},
        "cache": cache,
        "single_flight": {"enabled": single_flight},
    }
    with start_proxy(redis_url=own_redis.url, **sections) as url, redis.Redis.from_url(own_redis.url) as client:
        yield url, client


def test_a_json_answer_is_sent_while_its_write_back_cannot_run_yet(
    start_proxy: Callable[..., AbstractContextManager[str]], own_redis: EmbeddedRedis, upstream: FakeUpstream
) -> None:
    headers = {"Authorization": f"Bearer sk-{uuid.uuid4().hex}", **upstream.headers}
    with proxy_on(start_proxy, own_redis) as (url, client):
        with writes_paused(client):
            # Before the change the response waited for the write, so this timed out.
            first = httpx.post(url + CHAT, json=body("What is written after?"), headers=headers, timeout=10)
            assert (first.status_code, first.headers["x-cache"]) == (200, "MISS")
            assert l1_keys(client) == []  # the write-back is still waiting for Redis
        assert eventually(lambda: len(l1_keys(client)) == 1)
        again = httpx.post(url + CHAT, json=body("What is written after?"), headers=headers, timeout=10)
        assert again.headers["x-cache"] == "HIT-L1" and again.json() == first.json()
        assert metric(url, "llmproxy_cache_write_timing_total", when="after_response") == 1
        assert metric(url, "llmproxy_cache_writes_total", outcome="stored") == 1
    assert upstream.calls() == 1


def test_a_repeat_while_the_write_back_waits_is_served_the_answer_not_sent_upstream(
    start_proxy: Callable[..., AbstractContextManager[str]], own_redis: EmbeddedRedis, upstream: FakeUpstream
) -> None:
    headers = {"Authorization": f"Bearer sk-{uuid.uuid4().hex}", **upstream.headers}
    slow = {**headers, "X-Fake-Latency-Ms": "1500"}
    answers: list[httpx.Response] = []

    def ask(into: list[httpx.Response], with_headers: dict[str, str]) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: into.append(
                httpx.post(url + CHAT, json=body("Asked twice in a row"), headers=with_headers, timeout=30)
            )
        )
        thread.start()
        return thread

    with proxy_on(start_proxy, own_redis, single_flight=True) as (url, client):
        firsts: list[httpx.Response] = []
        leader = ask(firsts, slow)
        # The leader took its lease (a write) and waits for the upstream: now hold the writes, so its write-back
        # cannot run once the answer arrives.
        assert eventually(lambda: upstream.calls() == 1)
        with writes_paused(client):
            leader.join(timeout=30)
            [first] = firsts
            reads = gets(client)
            repeat = ask(answers, headers)
            # The repeat's L1 lookup (a read) finds nothing yet; then it joins the leader's flight, whose lease
            # lasts until the write-back is over.
            assert eventually(lambda: gets(client) > reads)
            time.sleep(0.2)
        repeat.join(timeout=30)
    [second] = answers
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT-L1" and second.json() == first.json()
    assert second.headers.get("x-llmproxy-coalesced") == "1"  # served as the flight's follower
    assert upstream.calls() == 1


def test_past_the_bound_a_write_back_runs_before_its_response(
    start_proxy: Callable[..., AbstractContextManager[str]], own_redis: EmbeddedRedis, upstream: FakeUpstream
) -> None:
    headers = {"Authorization": f"Bearer sk-{uuid.uuid4().hex}", **upstream.headers}
    answers: list[httpx.Response] = []
    with proxy_on(start_proxy, own_redis, max_pending_writes=1) as (url, client):
        with writes_paused(client):
            first = httpx.post(url + CHAT, json=body("The first question"), headers=headers, timeout=10)
            assert first.headers["x-cache"] == "MISS"  # its write waits: the one place the bound allows
            second = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(url + CHAT, json=body("The second question"), headers=headers, timeout=30)
                )
            )
            second.start()
            assert eventually(lambda: upstream.calls() == 2)
        second.join(timeout=30)
        [answer] = answers
        assert answer.headers["x-cache"] == "MISS"
        # Written before it was answered: there when the answer is.
        assert eventually(lambda: len(l1_keys(client)) == 2)
        assert metric(url, "llmproxy_cache_write_timing_total", when="after_response") == 1
        assert metric(url, "llmproxy_cache_write_timing_total", when="before_response") == 1
        assert metric(url, "llmproxy_cache_writes_total", outcome="stored") == 2


def test_with_no_pending_writes_allowed_the_answer_is_stored_when_it_arrives(
    start_proxy: Callable[..., AbstractContextManager[str]], own_redis: EmbeddedRedis, upstream: FakeUpstream
) -> None:
    headers = {"Authorization": f"Bearer sk-{uuid.uuid4().hex}", **upstream.headers}
    with proxy_on(start_proxy, own_redis, max_pending_writes=0) as (url, client):
        first = httpx.post(url + CHAT, json=body("Stored first, answered second"), headers=headers, timeout=10)
        assert first.headers["x-cache"] == "MISS"
        assert len(l1_keys(client)) == 1  # no waiting: the write ran before the response
        assert metric(url, "llmproxy_cache_write_timing_total", when="before_response") == 1
