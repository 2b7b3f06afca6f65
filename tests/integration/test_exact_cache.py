"""L1 exact cache through the proxy, with the official SDK as the client."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import orjson
import pytest
import redis
from openai import AsyncOpenAI, OpenAI

from tests.conftest import TEST_KEY_PREFIX
from tests.support.admin import tenant
from tests.support.clients import caller_headers
from tests.support.upstream import FakeUpstream

MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def ask(client: OpenAI, **overrides: Any) -> tuple[str, str | None, dict[str, str]]:
    """(content, X-Cache, headers) of one chat completion."""
    params: dict[str, Any] = {"model": "fake-model", "messages": MESSAGES, **overrides}
    raw = client.chat.completions.with_raw_response.create(**params)
    completion = raw.parse()
    return completion.choices[0].message.content or "", raw.headers.get("x-cache"), dict(raw.headers)


def test_second_identical_request_is_an_l1_hit(client: OpenAI, upstream: FakeUpstream) -> None:
    first, first_status, _ = ask(client)
    second, second_status, headers = ask(client)
    assert (first_status, second_status) == ("MISS", "HIT-L1")
    assert second == first == "Fake reply #1 to: What is the capital of France?"
    assert int(headers["age"]) >= 0
    assert upstream.calls() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.2},
        {"model": "fake-model-mini"},
        {"tools": TOOLS},
        {"max_tokens": 50},
        {"seed": 7},
        {"messages": [{"role": "user", "content": "What is the capital of Spain?"}]},
        {"messages": [{"role": "system", "content": "Be terse."}, *MESSAGES]},
    ],
    ids=["temperature", "model", "tools", "max_tokens", "seed", "prompt", "system_prompt"],
)
def test_a_changed_answer_parameter_is_a_miss(client: OpenAI, upstream: FakeUpstream, change: dict[str, Any]) -> None:
    ask(client, temperature=0.7)
    changed = {"temperature": 0.7, **change}
    content, status, _ = ask(client, **changed)
    assert status == "MISS"
    assert content.startswith("Fake reply #2")
    assert upstream.calls() == 2


def test_user_field_and_integral_float_do_not_change_the_key(client: OpenAI, upstream: FakeUpstream) -> None:
    ask(client, temperature=1, user="alice")
    _, status, _ = ask(client, temperature=1.0, user="bob")
    assert status == "HIT-L1"
    assert upstream.calls() == 1


def test_legacy_completions_are_cached(client: OpenAI, upstream: FakeUpstream) -> None:
    first = client.completions.with_raw_response.create(model="fake-model", prompt="Say hi")
    second = client.completions.with_raw_response.create(model="fake-model", prompt="Say hi")
    assert [first.headers["x-cache"], second.headers["x-cache"]] == ["MISS", "HIT-L1"]
    assert second.parse().choices[0].text == first.parse().choices[0].text
    assert upstream.calls("/v1/completions") == 1


def test_embeddings_are_cached_exactly_in_both_encodings(client: OpenAI, upstream: FakeUpstream) -> None:
    as_base64 = client.embeddings.with_raw_response.create(model="fake-embed", input=["a cat", "a dog"])
    again = client.embeddings.with_raw_response.create(model="fake-embed", input=["a cat", "a dog"])
    as_floats = client.embeddings.with_raw_response.create(
        model="fake-embed", input=["a cat", "a dog"], encoding_format="float"
    )
    assert [as_base64.headers["x-cache"], again.headers["x-cache"], as_floats.headers["x-cache"]] == [
        "MISS",
        "HIT-L1",
        "MISS",
    ]
    vectors = [item.embedding for item in again.parse().data]
    assert vectors == [item.embedding for item in as_base64.parse().data]
    for cached, fresh in zip(vectors, [item.embedding for item in as_floats.parse().data], strict=True):
        assert cached == pytest.approx(fresh)
    assert upstream.calls("/v1/embeddings") == 2


def test_cached_embedding_is_the_stored_base64_payload(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    body = {"model": "fake-embed", "input": "hello", "encoding_format": "base64"}
    headers = caller_headers(api_key, upstream)
    miss = httpx.post(proxy_url + "/v1/embeddings", json=body, headers=headers)
    hit = httpx.post(proxy_url + "/v1/embeddings", json=body, headers=headers)
    assert hit.headers["x-cache"] == "HIT-L1"
    assert hit.json() == miss.json()
    assert len(base64.b64decode(hit.json()["data"][0]["embedding"])) % 4 == 0


def test_async_client_gets_hits_too(async_client: AsyncOpenAI, upstream: FakeUpstream) -> None:
    async def run() -> list[str | None]:
        statuses = []
        for _ in range(3):
            raw = await async_client.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES)
            statuses.append(raw.headers.get("x-cache"))
        await async_client.close()
        return statuses

    assert asyncio.run(run()) == ["MISS", "HIT-L1", "HIT-L1"]
    assert upstream.calls() == 1


def test_a_json_hit_sends_the_stored_answer_bytes_as_they_are(
    proxy_url: str, api_key: str, upstream: FakeUpstream, redis_client: redis.Redis
) -> None:
    # The stored answer is rewritten with other (valid) formatting: a hit that decoded and encoded it again would
    # answer compact JSON; one that sends the ready bytes answers exactly these.
    headers = caller_headers(api_key, upstream)
    body = {"model": "fake-model", "messages": MESSAGES}
    first = httpx.post(proxy_url + "/v1/chat/completions", json=body, headers=headers)
    assert first.headers["x-cache"] == "MISS"
    [key] = redis_client.keys(f"{TEST_KEY_PREFIX}:l1:{tenant(api_key)}:*")
    head, marker, answer = redis_client.get(key).partition(b',"response":')
    spaced = orjson.dumps(orjson.loads(answer[:-1]), option=orjson.OPT_INDENT_2)
    redis_client.set(key, head + marker + spaced + b"}", keepttl=True)

    second = httpx.post(proxy_url + "/v1/chat/completions", json=body, headers=headers)
    assert second.headers["x-cache"] == "HIT-L1"
    assert second.content == spaced
    assert orjson.loads(second.content) == first.json()
    assert upstream.calls() == 1
