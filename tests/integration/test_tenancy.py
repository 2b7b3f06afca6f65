"""Tenant isolation: API keys and namespaces partition the cache; keys are never stored."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import redis
from openai import OpenAI

from tests.conftest import TEST_KEY_PREFIX
from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream

MESSAGES: list[Any] = [{"role": "user", "content": "Summarise my private notes"}]


def status_of(client: OpenAI, **headers: str) -> str | None:
    raw = client.chat.completions.with_raw_response.create(
        model="fake-model", messages=MESSAGES, extra_headers=headers or None
    )
    return raw.headers.get("x-cache")


def test_two_api_keys_never_share_entries(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    alice, bob = openai_sdk(proxy_url, api_key, upstream), openai_sdk(proxy_url, api_key + "-bob", upstream)
    assert [status_of(alice), status_of(bob), status_of(alice), status_of(bob)] == ["MISS", "MISS", "HIT-L1", "HIT-L1"]
    assert upstream.calls() == 2


def test_namespaces_partition_one_key(client: OpenAI, upstream: FakeUpstream) -> None:
    assert status_of(client, **{"X-LLMProxy-Namespace": "team-a"}) == "MISS"
    assert status_of(client, **{"X-LLMProxy-Namespace": "team-b"}) == "MISS"
    assert status_of(client) == "MISS"
    assert status_of(client, **{"X-LLMProxy-Namespace": "team-a"}) == "HIT-L1"
    assert upstream.calls() == 3


def test_api_key_is_never_stored(client: OpenAI, api_key: str, redis_client: redis.Redis) -> None:
    status_of(client)
    keys = list(redis_client.scan_iter(match=f"{TEST_KEY_PREFIX}:*", count=1000))
    assert keys
    secret = api_key.encode()
    assert not any(secret in key for key in keys)
    assert not any(secret in stored for key in keys for stored in stored_values(redis_client, key))


def stored_values(redis_client: redis.Redis, key: bytes) -> list[bytes]:
    """Every value under a key: L1 entries are strings, L2 records are hashes."""
    kind = redis_client.type(key)
    if kind == b"hash":
        return [*redis_client.hgetall(key).values()]
    if kind == b"TSDB-TYPE":
        return []  # traffic history: numbers, labelled with the key prefix, result or model (no scope)
    return [redis_client.get(key) or b""]


def test_shared_scope_lets_keys_share_when_the_operator_says_so(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(cache={"shared_scope": True}, redis={"key_prefix": f"shared-{api_key}"}) as url:
        first, second = openai_sdk(url, api_key, upstream), openai_sdk(url, api_key + "-other", upstream)
        assert [status_of(first), status_of(second)] == ["MISS", "HIT-L1"]
        assert status_of(second, **{"X-LLMProxy-Namespace": "other"}) == "MISS"
