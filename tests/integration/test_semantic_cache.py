"""L2 semantic cache through the proxy: real model, real Redis Stack HNSW index, official SDK."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import redis
from openai import OpenAI

from llmproxy.proxy.scope import scope_id
from tests.conftest import TEST_KEY_PREFIX
from tests.support.admin import tenant
from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream

QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def ask(client: OpenAI, messages: list[Any], **options: Any) -> tuple[str, dict[str, str]]:
    params: dict[str, Any] = {"model": "fake-model", "messages": messages, **options}
    raw = client.chat.completions.with_raw_response.create(**params)
    return raw.parse().choices[0].message.content or "", dict(raw.headers)


def test_paraphrase_is_an_l2_hit_then_an_l1_hit(client: OpenAI, upstream: FakeUpstream) -> None:
    original, first = ask(client, user(QUESTION))
    answer, second = ask(client, user(PARAPHRASE))
    _, third = ask(client, user(PARAPHRASE))
    assert (first["x-cache"], second["x-cache"], third["x-cache"]) == ("MISS", "HIT-L2", "HIT-L1")
    assert answer == original
    assert 0.9 < float(second["x-cache-similarity"]) <= 1.0
    assert upstream.calls() == 1


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("Is coffee bad for your health?", "Is coffee not bad for your health?"),
        ("Is Python faster than Java?", "Is Java faster than Python?"),
        ("How many minutes are in 2 hours?", "How many minutes are in 3 hours?"),
        ("What is the population of Germany?", "What is the population of Austria?"),
    ],
    ids=["negation", "comparison-order", "number", "entity"],
)
def test_near_neighbour_that_changes_the_answer_is_a_miss(
    client: OpenAI, upstream: FakeUpstream, stored: str, asked: str
) -> None:
    ask(client, user(stored))
    # Even at the most permissive threshold an operator allows, the guards hold.
    _, headers = ask(client, user(asked), extra_headers={"X-LLMProxy-Threshold": "1"})
    assert headers["x-cache"] == "MISS"
    assert upstream.calls() == 2


@pytest.mark.parametrize(
    "variant",
    [
        {"messages": [{"role": "system", "content": "Answer like a pirate."}, *user(PARAPHRASE)]},
        {"messages": [*user("I use Python 2."), {"role": "assistant", "content": "Noted."}, *user(PARAPHRASE)]},
        {"model": "fake-model-mini"},
        {"temperature": 1.5},
        {"tools": [{"type": "function", "function": {"name": "reverse", "parameters": {"type": "object"}}}]},
    ],
    ids=["system-prompt", "earlier-turns", "model", "temperature", "tools"],
)
def test_paraphrase_in_another_context_is_a_miss(
    client: OpenAI, upstream: FakeUpstream, variant: dict[str, Any]
) -> None:
    ask(client, user(QUESTION))
    _, headers = ask(client, **{"messages": user(PARAPHRASE), **variant})
    assert headers["x-cache"] == "MISS"
    assert upstream.calls() == 2


def test_paraphrase_from_another_tenant_is_a_miss(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    alice = openai_sdk(proxy_url, api_key, upstream)
    bob = openai_sdk(proxy_url, api_key + "-bob", upstream)
    ask(alice, user(QUESTION))
    assert ask(bob, user(PARAPHRASE))[1]["x-cache"] == "MISS"
    assert ask(alice, user(PARAPHRASE))[1]["x-cache"] == "HIT-L2"


def test_threshold_header_can_tighten_the_match(client: OpenAI, upstream: FakeUpstream) -> None:
    ask(client, user(QUESTION))
    _, strict = ask(client, user(PARAPHRASE), extra_headers={"X-LLMProxy-Threshold": "0.001"})
    assert strict["x-cache"] == "MISS"


def test_stream_replay_of_an_l2_hit_parses_in_the_sdk(client: OpenAI, upstream: FakeUpstream) -> None:
    original, _ = ask(client, user(QUESTION))
    raw = client.chat.completions.with_raw_response.create(
        model="fake-model", messages=user(PARAPHRASE), stream=True, stream_options={"include_usage": True}
    )
    with raw.parse() as stream:
        chunks = list(stream)
    assert raw.headers["x-cache"] == "HIT-L2"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == original
    assert chunks[-1].usage is not None


def test_streamed_miss_is_stored_in_l2(client: OpenAI, upstream: FakeUpstream) -> None:
    with client.chat.completions.create(model="fake-model", messages=user(QUESTION), stream=True) as stream:
        list(stream)
    assert ask(client, user(PARAPHRASE))[1]["x-cache"] == "HIT-L2"


def test_expired_answer_leaves_the_index(client: OpenAI, upstream: FakeUpstream) -> None:
    ask(client, user(QUESTION), extra_headers={"X-LLMProxy-TTL": "1"})
    assert ask(client, user(PARAPHRASE), extra_headers={"Cache-Control": "no-store"})[1]["x-cache"] == "HIT-L2"
    deadline = time.monotonic() + 5
    status = "HIT-L2"
    while status != "MISS" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = ask(client, user(PARAPHRASE), extra_headers={"Cache-Control": "no-store"})[1]["x-cache"]
    assert status == "MISS"


def test_promoted_entry_keeps_the_original_expiry(
    client: OpenAI, upstream: FakeUpstream, redis_client: redis.Redis, api_key: str
) -> None:
    ask(client, user(QUESTION), extra_headers={"X-LLMProxy-TTL": "100"})
    ask(client, user(PARAPHRASE))  # promoted into L1 under its own key
    keys = list(redis_client.scan_iter(match=f"{TEST_KEY_PREFIX}:l1:{scope_id(tenant(api_key), None)}:*"))
    assert len(keys) == 2
    assert all(0 < redis_client.ttl(key) <= 100 for key in keys)


def test_prompts_beyond_the_model_window_are_exact_only(client: OpenAI, upstream: FakeUpstream) -> None:
    shared = " ".join(f"word{i}" for i in range(400))
    ask(client, user(shared + " Summarise the text above."))
    _, headers = ask(client, user(shared + " Translate the text above into French."))
    assert headers["x-cache"] == "MISS"


def test_index_is_created_on_a_fresh_redis_and_reused_after_a_restart(
    start_proxy: Callable[..., AbstractContextManager[str]],
    api_key: str,
    redis_client: redis.Redis,
    upstream: FakeUpstream,
) -> None:
    prefix = f"reuse-{api_key[-12:]}"
    with start_proxy(redis={"key_prefix": prefix}) as url:
        assert f"{prefix}:l2".encode() in redis_client.execute_command("FT._LIST")
        ask(openai_sdk(url, api_key, upstream), user(QUESTION))
    with start_proxy(redis={"key_prefix": prefix}) as url:
        _, headers = ask(openai_sdk(url, api_key, upstream), user(PARAPHRASE))
    assert headers["x-cache"] == "HIT-L2"


def test_l2_recreates_a_lost_index_by_itself(
    start_proxy: Callable[..., AbstractContextManager[str]],
    api_key: str,
    redis_client: redis.Redis,
    upstream: FakeUpstream,
) -> None:
    prefix = f"heal-{api_key[-12:]}"
    with start_proxy(redis={"key_prefix": prefix}) as url:
        sdk = openai_sdk(url, api_key, upstream)
        ask(sdk, user(QUESTION))
        redis_client.execute_command("FT.DROPINDEX", f"{prefix}:l2")  # keeps the documents
        statuses = [ask(sdk, user(PARAPHRASE), extra_headers={"Cache-Control": "no-store"})[1]["x-cache"]]
        deadline = time.monotonic() + 5
        while statuses[-1] != "HIT-L2" and time.monotonic() < deadline:
            statuses.append(ask(sdk, user(PARAPHRASE), extra_headers={"Cache-Control": "no-store"})[1]["x-cache"])
    assert statuses[0] == "MISS", "the request that finds the index gone still gets its answer"
    assert statuses[-1] == "HIT-L2"
