"""Per-request cache controls: bypass, no-store, TTL and their bounds."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
import redis
from openai import OpenAI

from llmproxy.proxy.scope import scope_id
from tests.conftest import TEST_KEY_PREFIX
from tests.support.admin import tenant
from tests.support.upstream import FakeUpstream
from tests.support.waiting import eventually

MESSAGES: list[Any] = [{"role": "user", "content": "How long do cached answers live?"}]


def ask(client: OpenAI, **headers: str) -> tuple[str, str | None]:
    raw = client.chat.completions.with_raw_response.create(
        model="fake-model", messages=MESSAGES, extra_headers=headers or None
    )
    return raw.parse().choices[0].message.content or "", raw.headers.get("x-cache")


def test_no_cache_skips_the_lookup_and_stores_the_fresh_answer(client: OpenAI, upstream: FakeUpstream) -> None:
    ask(client)
    fresh, status = ask(client, **{"Cache-Control": "no-cache"})
    again, again_status = ask(client)
    assert status == "BYPASS" and fresh.startswith("Fake reply #2")
    assert again_status == "HIT-L1" and again == fresh
    assert upstream.calls() == 2


def test_no_store_does_not_store_a_miss(client: OpenAI, upstream: FakeUpstream) -> None:
    assert ask(client, **{"Cache-Control": "no-store"})[1] == "MISS"
    assert ask(client)[1] == "MISS"
    assert ask(client, **{"Cache-Control": "no-store"})[1] == "HIT-L1"
    assert upstream.calls() == 2


def entry_keys(redis_client: redis.Redis, api_key: str, namespace: str | None = None) -> list[bytes]:
    scope = scope_id(tenant(api_key), namespace)
    return list(redis_client.scan_iter(match=f"{TEST_KEY_PREFIX}:l1:{scope}:*", count=10_000))


def test_ttl_header_sets_the_lifetime_and_the_entry_expires(
    client: OpenAI, api_key: str, upstream: FakeUpstream, redis_client: redis.Redis
) -> None:
    ask(client, **{"X-LLMProxy-TTL": "1"})
    assert eventually(lambda: len(entry_keys(redis_client, api_key)) == 1)  # written after the response
    [key] = entry_keys(redis_client, api_key)
    assert 0 < redis_client.pttl(key) <= 1000
    assert ask(client)[1] == "HIT-L1"
    deadline = time.monotonic() + 5
    while redis_client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ask(client)[1] == "MISS"
    assert upstream.calls() == 2


def test_ttl_is_clamped_to_the_operator_maximum(client: OpenAI, api_key: str, redis_client: redis.Redis) -> None:
    ask(client, **{"X-LLMProxy-TTL": str(10**9), "X-LLMProxy-Namespace": "clamp"})
    assert eventually(lambda: len(entry_keys(redis_client, api_key, "clamp")) == 1)
    [key] = entry_keys(redis_client, api_key, "clamp")
    assert 30 * 86_400 - 60 < redis_client.ttl(key) <= 30 * 86_400


@pytest.mark.parametrize(
    "headers",
    [{"X-LLMProxy-TTL": "soon"}, {"X-LLMProxy-TTL": "-5"}, {"X-LLMProxy-Namespace": "no spaces/allowed"}],
)
def test_malformed_control_headers_are_a_400(client: OpenAI, headers: dict[str, str]) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        ask(client, **headers)
    assert raised.value.body is not None
    assert raised.value.body["param"] in {"X-LLMProxy-TTL", "X-LLMProxy-Namespace"}  # type: ignore[index]
