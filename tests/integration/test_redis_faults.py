"""Redis failing under a running proxy: killed, restarted, paused. Requests never fail because of the cache,
and caching resumes by itself once Redis is back.

Each test runs its own Redis Stack process (stopped or paused by pid), never the session one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from llmproxy.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from tests.conftest import FakeUpstream
from tests.redis_servers import paused
from tests.servers import free_port

# Short enough that recovery is quick to observe; the request timeout below is far above the Redis budget.
FAULT_SETTINGS = {"breaker_failure_threshold": 2, "breaker_reset_s": 0.2, "socket_timeout_s": 0.25}
CLIENT_TIMEOUT_S = 10.0
RECOVERY_DEADLINE_S = 20.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis Stack on a fixed port of its own, so it can be stopped and started again at the same URL."""
    server = EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path / "redis", port=free_port()))
    server.start()
    try:
        yield server
    finally:
        server.stop()


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
    with OpenAI(base_url=proxy + "/v1", api_key=api_key, max_retries=0, timeout=CLIENT_TIMEOUT_S) as sdk:
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
    with OpenAI(base_url=proxy + "/v1", api_key=api_key, max_retries=0, timeout=CLIENT_TIMEOUT_S) as sdk:
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
        OpenAI(base_url=proxy + "/v1", api_key=api_key, max_retries=0, timeout=CLIENT_TIMEOUT_S) as sdk,
    ):
        ask(sdk, "warm the connection pool")
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
