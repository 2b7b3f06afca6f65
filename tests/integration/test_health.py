"""/healthz and /readyz, and the cache failing open when Redis is gone."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
from openai import OpenAI

from tests.conftest import FakeUpstream
from tests.servers import free_port

MESSAGES: list[Any] = [{"role": "user", "content": "Are you there?"}]


def test_healthz_and_readyz_answer_ok(proxy_url: str) -> None:
    assert httpx.get(proxy_url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(proxy_url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok", "upstream": "ok"}


def test_without_redis_readyz_is_503_and_requests_still_succeed(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(redis_url=f"redis://127.0.0.1:{free_port()}/0") as url:
        ready = httpx.get(url + "/readyz")
        sdk = OpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0)
        statuses = [
            sdk.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES).headers["x-cache"]
            for _ in range(2)
        ]
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] == "unreachable"
    assert ready.json()["error"]["code"] == "not_ready"
    assert statuses == ["BYPASS", "BYPASS"]
    assert upstream.calls() == 2
