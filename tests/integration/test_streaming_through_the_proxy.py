"""Streaming through the proxy: SSE pass-through, assembly for the cache, replay in either format."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.support.upstream import FakeUpstream

MESSAGES: list[Any] = [{"role": "user", "content": "Tell me about streams please"}]
WEATHER_TOOL: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def stream_chat(client: OpenAI, **overrides: Any) -> tuple[list[Any], str | None]:
    """All parsed chunks of a streamed chat completion, and its X-Cache header."""
    params: dict[str, Any] = {"model": "fake-model", "messages": MESSAGES, "stream": True, **overrides}
    raw = client.chat.completions.with_raw_response.create(**params)
    with raw.parse() as stream:
        return list(stream), raw.headers.get("x-cache")


def text_of(chunks: list[Any]) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def json_chat(client: OpenAI, **overrides: Any) -> tuple[Any, str | None]:
    params: dict[str, Any] = {"model": "fake-model", "messages": MESSAGES, **overrides}
    raw = client.chat.completions.with_raw_response.create(**params)
    return raw.parse(), raw.headers.get("x-cache")


def test_stream_miss_then_stream_hit(client: OpenAI, upstream: FakeUpstream) -> None:
    fresh, first_status = stream_chat(client)
    cached, second_status = stream_chat(client)
    assert (first_status, second_status) == ("MISS", "HIT-L1")
    assert text_of(cached) == text_of(fresh) == "Fake reply #1 to: Tell me about streams please"
    assert cached[0].choices[0].delta.role == "assistant"
    assert cached[-1].choices[0].finish_reason == "stop"
    assert upstream.calls() == 1


def test_usage_chunk_only_when_asked(client: OpenAI, upstream: FakeUpstream) -> None:
    without_usage, _ = stream_chat(client)
    with_usage, status = stream_chat(client, stream_options={"include_usage": True})
    assert status == "HIT-L1"
    assert all(not chunk.usage for chunk in without_usage), "the usage chunk we asked upstream for must be hidden"
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert with_usage[-1].usage.completion_tokens == len(text_of(with_usage).split())


def test_stream_miss_serves_a_later_json_request(client: OpenAI, upstream: FakeUpstream) -> None:
    streamed, _ = stream_chat(client)
    completion, status = json_chat(client)
    assert status == "HIT-L1"
    assert completion.choices[0].message.content == text_of(streamed)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert upstream.calls() == 1


def test_json_miss_serves_a_later_stream_request(client: OpenAI, upstream: FakeUpstream) -> None:
    completion, _ = json_chat(client)
    streamed, status = stream_chat(client, stream_options={"include_usage": True})
    assert status == "HIT-L1"
    assert text_of(streamed) == completion.choices[0].message.content
    assert streamed[-1].usage.total_tokens == completion.usage.total_tokens
    assert upstream.calls() == 1


def test_streamed_tool_call_is_replayed_as_json_and_as_stream(client: OpenAI, upstream: FakeUpstream) -> None:
    tool_args: dict[str, Any] = {"tools": WEATHER_TOOL, "tool_choice": "required"}
    streamed, _ = stream_chat(client, **tool_args)
    completion, json_status = json_chat(client, **tool_args)
    replayed, stream_status = stream_chat(client, **tool_args)
    assert (json_status, stream_status) == ("HIT-L1", "HIT-L1")
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"input": "Tell me about streams please"}
    assert completion.choices[0].finish_reason == "tool_calls"
    fragments = [c.choices[0].delta.tool_calls for c in replayed if c.choices and c.choices[0].delta.tool_calls]
    assert "".join(f[0].function.arguments or "" for f in fragments) == call.function.arguments
    assert fragments[0][0].id == call.id
    assert len([c for c in streamed if c.choices and c.choices[0].finish_reason == "tool_calls"]) == 1
    assert upstream.calls() == 1


def test_streamed_legacy_completion_is_cached(client: OpenAI, upstream: FakeUpstream) -> None:
    def run() -> tuple[str, str | None]:
        raw = client.completions.with_raw_response.create(model="fake-model", prompt="Once upon", stream=True)
        with raw.parse() as stream:
            return "".join(chunk.choices[0].text for chunk in stream if chunk.choices), raw.headers.get("x-cache")

    fresh, cached = run(), run()
    assert (fresh[1], cached[1]) == ("MISS", "HIT-L1")
    assert cached[0] == fresh[0] == "Fake completion #1 for: Once upon"


def test_first_chunk_reaches_the_client_before_the_upstream_finishes(client: OpenAI, upstream: FakeUpstream) -> None:
    # 8 words at 400 ms apart take ~3 s upstream; a buffering proxy would hold the first chunk that long.
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="fake-model", messages=MESSAGES, stream=True, extra_headers={"X-Fake-Chunk-Delay-Ms": "400"}
    )
    with raw.parse() as stream:
        first_content = next(chunk for chunk in stream if chunk.choices and chunk.choices[0].delta.content)
        first_at = time.monotonic() - started
        rest = list(stream)
    total = time.monotonic() - started
    assert first_content.choices[0].delta.content
    assert rest, "the stream went on after the first chunk"
    assert first_at < total / 2


def test_abandoned_stream_is_not_cached(client: OpenAI, upstream: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="fake-model", messages=MESSAGES, stream=True, extra_headers={"X-Fake-Chunk-Delay-Ms": "200"}
    )
    stream = raw.parse()
    next(iter(stream))
    stream.close()
    _, status = stream_chat(client)
    assert status == "MISS"
    assert upstream.calls() == 2


@pytest.mark.parametrize(
    "fault", [{"X-Fake-Stream-Error-After": "2"}, {"X-Fake-Drop-After": "2"}, {"X-Fake-Malformed-Sse": "1"}]
)
def test_broken_upstream_stream_raises_in_the_sdk_and_is_not_cached(
    client: OpenAI, upstream: FakeUpstream, fault: dict[str, str]
) -> None:
    with pytest.raises(openai.APIError):
        stream_chat(client, extra_headers=fault)
    _, status = stream_chat(client)
    assert status == "MISS"
    assert upstream.calls() == 2


def test_upstream_error_on_a_stream_request_is_relayed_and_not_cached(client: OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        stream_chat(client, extra_headers={"X-Fake-Status": "500"})
    assert raised.value.status_code == 500
    _, status = stream_chat(client)
    assert status == "MISS"
