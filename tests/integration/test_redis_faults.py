"""Redis failing under a running proxy: killed, restarted, paused. Requests never fail because of the cache,
and caching resumes by itself once Redis is back.

Each test runs its own Redis Stack process (stopped or paused by pid), never the session one.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

import httpx
import pytest
import redis
from openai import OpenAI

from llmproxy.store.embedded_redis import EmbeddedRedis
from tests.support.clients import caller_headers, openai_sdk
from tests.support.redis_servers import paused
from tests.support.upstream import FakeUpstream, metric

# Short enough that recovery is quick to observe; the request timeout below is far above the Redis budget.
FAULT_SETTINGS = {"breaker_failure_threshold": 2, "breaker_reset_s": 0.2, "socket_timeout_s": 0.25}
CLIENT_TIMEOUT_S = 10.0
RECOVERY_DEADLINE_S = 20.0
CROWD = 16  # concurrent requests: enough to leave many connections in the proxy's pool


@pytest.fixture
def proxy(start_proxy: Callable[..., AbstractContextManager[str]], own_redis: EmbeddedRedis) -> Iterator[str]:
    with start_proxy(redis_url=own_redis.url, redis=FAULT_SETTINGS) as url:
        yield url


def ask(sdk: OpenAI, text: str) -> str:
    """X-Cache of one chat request; raises if the request itself failed."""
    raw = sdk.chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": text}]
    )
    assert raw.parse().choices[0].message.content
    return raw.headers["x-cache"]


def caching_resumed(sdk: OpenAI) -> bool:
    """A fresh question is stored and then served from cache."""
    question = f"Is the cache back? {uuid.uuid4().hex}"
    return ask(sdk, question) == "MISS" and ask(sdk, question) == "HIT-L1"


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)  # polling for recovery; the loop ends as soon as it is seen
    return False


def test_killing_and_restarting_redis_never_fails_a_request_and_caching_resumes(
    proxy: str, own_redis: EmbeddedRedis, api_key: str, upstream: FakeUpstream
) -> None:
    with openai_sdk(proxy, api_key, upstream, timeout=CLIENT_TIMEOUT_S) as sdk:
        assert [ask(sdk, "What is Redis?") for _ in range(2)] == ["MISS", "HIT-L1"]
        own_redis.stop()
        during_outage = [ask(sdk, f"Question {n} while Redis is down") for n in range(6)]
        ready = httpx.get(proxy + "/readyz").json()
        own_redis.start()  # same port, empty: the indexes are gone too and must be recreated
        assert wait_until(lambda: caching_resumed(sdk))
        assert ask(sdk, "What is Redis?") == "MISS"  # the restarted Redis is empty
    assert during_outage == ["BYPASS"] * 6
    assert ready["status"] == "degraded"
    assert ready["checks"]["redis"] == "unreachable"


def test_paraphrases_are_served_again_after_redis_restarts(
    proxy: str, own_redis: EmbeddedRedis, api_key: str, upstream: FakeUpstream
) -> None:
    with openai_sdk(proxy, api_key, upstream, timeout=CLIENT_TIMEOUT_S) as sdk:
        own_redis.stop()
        ask(sdk, "Anyone there?")
        own_redis.start()
        assert wait_until(lambda: caching_resumed(sdk))
        assert ask(sdk, "How do I reverse a list in Python?") == "MISS"
        # The L2 index was recreated on the new server: a paraphrase is a semantic hit again.
        assert ask(sdk, "How can I reverse a list in Python?") == "HIT-L2"


def test_a_paused_redis_delays_requests_by_its_timeout_at_most_then_is_skipped(
    start_proxy: Callable[..., AbstractContextManager[str]],
    own_redis: EmbeddedRedis,
    api_key: str,
    upstream: FakeUpstream,
) -> None:
    pid = own_redis.pid
    assert pid is not None
    # A reset period longer than the five requests take: no trial call in between, so exactly two timeouts.
    settings = {**FAULT_SETTINGS, "breaker_reset_s": 3.0}
    with (
        start_proxy(redis_url=own_redis.url, redis=settings) as proxy,
        openai_sdk(proxy, api_key, upstream, timeout=CLIENT_TIMEOUT_S) as sdk,
    ):
        ask(sdk, "warm the connection pool")
        # Its write-back runs after its answer: a repeat served from L1 shows it is over before Redis stops.
        assert ask(sdk, "warm the connection pool") == "HIT-L1"
        with paused(pid):
            # Redis accepts connections but answers nothing: each command times out after socket_timeout_s,
            # twice, then the breaker opens and requests stop waiting on Redis at all.
            replies = [
                sdk.chat.completions.with_raw_response.create(
                    model="fake-model", messages=[{"role": "user", "content": f"Paused {n}"}]
                )
                for n in range(5)
            ]
            metrics = httpx.get(proxy + "/metrics").text
        assert wait_until(lambda: caching_resumed(sdk))
    assert [reply.headers["x-cache"] for reply in replies] == ["BYPASS"] * 5
    assert 'llmproxy_errors_total{component="redis",operation="read"} 2.0' in metrics
    assert 'llmproxy_cache_bypass_total{reason="redis-unavailable"} 5.0' in metrics
    assert upstream.calls() >= 6


def ask_together(proxy: str, api_key: str, fake: FakeUpstream, texts: list[str]) -> list[str]:
    """X-Cache of each question, all sent at once (slow upstream answers, so they overlap)."""

    def one(text: str) -> str:
        body = {"model": "fake-model", "messages": [{"role": "user", "content": text}]}
        headers = caller_headers(api_key, fake) | {"x-fake-latency-ms": "200"}
        response = httpx.post(proxy + "/v1/chat/completions", json=body, headers=headers, timeout=CLIENT_TIMEOUT_S)
        assert response.status_code == 200, response.text
        return response.headers["x-cache"]

    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(one, texts))


def test_after_redis_restarts_the_first_trial_closes_the_breaker_and_stale_connections_cost_nothing(
    start_proxy: Callable[..., AbstractContextManager[str]],
    own_redis: EmbeddedRedis,
    api_key: str,
    upstream: FakeUpstream,
) -> None:
    reset_s = 1.0
    # Connection errors, not timeouts, are what a killed Redis causes: a generous timeout keeps a busy machine's
    # slow reply from passing for one.
    settings = {**FAULT_SETTINGS, "breaker_reset_s": reset_s, "socket_timeout_s": 2.0}
    with (
        start_proxy(redis_url=own_redis.url, redis=settings) as proxy,
        openai_sdk(proxy, api_key, upstream, timeout=CLIENT_TIMEOUT_S) as sdk,
    ):
        assert set(
            ask_together(proxy, api_key, upstream, [f"Before {n} {uuid.uuid4().hex}" for n in range(CROWD)])
        ) == {"MISS"}
        with redis.Redis.from_url(own_redis.url) as admin:
            pooled = len(admin.client_list())
        pid = own_redis.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # by pid: the test's own server, gone without a goodbye
        own_redis.stop()  # reaps it
        outage = [ask(sdk, f"During the outage {n}") for n in range(3)]
        opened = metric(proxy, "llmproxy_redis_breaker_state")
        own_redis.start()  # same port, empty; every connection the proxy pooled before is dead
        time.sleep(reset_s)  # the breaker's reset interval passes: the next request is its trial
        trial = ask(sdk, "The first question after the restart")
        closed = metric(proxy, "llmproxy_redis_breaker_state")
        # Concurrent requests draw every pooled connection, the stale ones too.
        after = ask_together(proxy, api_key, upstream, [f"After {n} {uuid.uuid4().hex}" for n in range(CROWD)])
        again = ask(sdk, "The first question after the restart")
        bypassed = metric(proxy, "llmproxy_cache_bypass_total", reason="redis-unavailable")
        state = metric(proxy, "llmproxy_redis_breaker_state")
    assert pooled >= 4, "the traffic before the outage left several connections in the pool"
    assert outage == ["BYPASS"] * 3 and opened == 2
    assert (trial, closed) == ("MISS", 0), "the first trial after the reset went through the cache and closed it"
    assert after == ["MISS"] * CROWD
    assert again == "HIT-L1"
    assert (bypassed, state) == (3, 0), "only the requests during the outage bypassed the cache"


def test_a_pool_too_small_for_the_load_bypasses_with_its_own_reason_and_never_opens_the_breaker(
    start_proxy: Callable[..., AbstractContextManager[str]],
    key_prefix: str,
    redis_client: redis.Redis,
    api_key: str,
    upstream: FakeUpstream,
) -> None:
    # One pooled connection, and the single-flight listener holds it for good once subscribed: every request
    # waits pool_timeout_s for a connection that never comes back.
    settings = {"key_prefix": key_prefix, "max_connections": 1, "pool_timeout_s": 0.05, "breaker_failure_threshold": 2}
    with start_proxy(redis=settings, semantic={"enabled": False}, timeseries={"enabled": False}) as proxy:
        assert wait_until(
            lambda: redis_client.pubsub_numsub(f"{key_prefix}:flight") == [(f"{key_prefix}:flight".encode(), 1)]
        )
        headers = caller_headers(api_key, upstream)
        replies = [
            httpx.post(
                proxy + "/v1/chat/completions",
                json={"model": "fake-model", "messages": [{"role": "user", "content": f"Busy {n}"}]},
                headers=headers,
                timeout=CLIENT_TIMEOUT_S,
            )
            for n in range(5)
        ]
        state = metric(proxy, "llmproxy_redis_breaker_state")
        exhausted = metric(proxy, "llmproxy_cache_bypass_total", reason="redis-pool-exhausted")
    assert [(reply.status_code, reply.headers["x-cache"]) for reply in replies] == [(200, "BYPASS")] * 5
    assert {reply.headers["x-cache-bypass-reason"] for reply in replies} == {"redis-pool-exhausted"}
    assert (exhausted, state) == (5, 0)
    assert upstream.calls() == 5
