"""/healthz and /readyz, and the cache failing open when Redis is gone."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from tests.support.clients import openai_sdk
from tests.support.servers import free_port
from tests.support.upstream import FakeUpstream

MESSAGES: list[Any] = [{"role": "user", "content": "Are you there?"}]


def test_healthz_and_readyz_answer_ok(proxy_url: str) -> None:
    assert httpx.get(proxy_url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(proxy_url + "/readyz")
    assert ready.status_code == 200
    checks = {"redis": "ok", "redis_breaker": "closed", "redis_eviction_policy": "noeviction"}
    assert ready.json() == {"status": "ready", "checks": checks}


def test_without_redis_readyz_is_degraded_but_200_and_requests_still_succeed(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    redis = {"breaker_failure_threshold": 2, "breaker_reset_s": 60}
    with start_proxy(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis=redis) as url:
        sdk = openai_sdk(url, api_key, upstream)
        replies = [
            sdk.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES) for _ in range(3)
        ]
        ready = httpx.get(url + "/readyz")
        scrape = httpx.get(url + "/metrics").text
    # Kubernetes keeps a degraded proxy in service: without its cache it still answers every request.
    assert ready.status_code == 200
    checks = {"redis": "unreachable", "redis_breaker": "open", "redis_eviction_policy": "unknown"}
    assert ready.json() == {"status": "degraded", "checks": checks}
    assert [reply.headers["x-cache"] for reply in replies] == ["BYPASS"] * 3
    assert {reply.headers["x-cache-bypass-reason"] for reply in replies} == {"redis-unavailable"}
    assert upstream.calls() == 3
    # Two failures opened the breaker; the third request did not try Redis at all.
    assert 'llmproxy_errors_total{component="redis",operation="read"} 2.0' in scrape
    assert "llmproxy_redis_breaker_state 2.0" in scrape  # open
    assert 'llmproxy_cache_bypass_total{reason="redis-unavailable"} 3.0' in scrape
