"""Hostile upstreams: huge events, error events, 200s that are not answers, endless keep-alives. Never cached."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import openai
import pytest
import redis
from openai import OpenAI

from llmproxy.proxy.scope import scope_id
from tests.conftest import TEST_KEY_PREFIX
from tests.integration.test_metrics import scrape, value
from tests.support.admin import tenant
from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream

MESSAGES: list[Any] = [{"role": "user", "content": "Tell me something hostile"}]
StartProxy = Callable[..., AbstractContextManager[str]]


def entry_keys(redis_client: redis.Redis, api_key: str, prefix: str = TEST_KEY_PREFIX) -> list[bytes]:
    """The caller's L1 entries in Redis."""
    return list(redis_client.scan_iter(match=f"{prefix}:l1:{scope_id(tenant(api_key), None)}:*", count=10_000))


def stream_text(client: OpenAI, **headers: str) -> str:
    stream = client.chat.completions.create(model="fake-model", messages=MESSAGES, stream=True, extra_headers=headers)
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def x_cache_of_a_repeat(client: OpenAI) -> str | None:
    """X-Cache of the same request without faults: MISS when nothing was stored."""
    raw = client.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES)
    return raw.headers.get("x-cache")


def assert_nothing_cached(client: OpenAI, upstream: FakeUpstream, redis_client: redis.Redis, api_key: str) -> None:
    assert entry_keys(redis_client, api_key) == []
    assert x_cache_of_a_repeat(client) == "MISS"
    assert upstream.calls() == 2


# --- Item 11: one huge event, one huge answer ---------------------------------------------------------


def test_a_5_mb_event_ends_the_stream_with_an_error_while_healthz_answers(
    client: OpenAI, proxy_url: str, upstream: FakeUpstream, redis_client: redis.Redis, api_key: str
) -> None:
    # The fake sends the 5 MB event in 64 KiB slices, 20 ms apart: the proxy is busy with it for over a second.
    headers = {"X-Fake-Content-Bytes": str(5_000_000), "X-Fake-Chunk-Delay-Ms": "20"}
    first_chunk = threading.Event()
    seen: dict[str, Any] = {}

    def read_stream() -> None:
        stream = client.chat.completions.create(
            model="fake-model", messages=MESSAGES, stream=True, extra_headers=headers
        )
        try:
            for _ in stream:
                first_chunk.set()
        except openai.APIError as exc:
            seen["error"] = exc
        finally:
            seen["ended"] = time.monotonic()
            first_chunk.set()

    reader = threading.Thread(target=read_stream)
    reader.start()
    first_chunk.wait(timeout=30)
    health = httpx.get(proxy_url + "/healthz", timeout=30)
    answered = time.monotonic()
    reader.join(timeout=60)

    assert health.status_code == 200
    assert answered < seen["ended"], "/healthz was answered only after the stream had ended"
    error = seen.get("error")
    assert isinstance(error, openai.APIError), "the oversized event must end the stream with an error event"
    assert error.code == "upstream_event_too_large"
    assert_nothing_cached(client, upstream, redis_client, api_key)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_an_answer_over_max_entry_bytes_is_relayed_whole_but_not_stored(
    start_proxy: StartProxy, api_key: str, upstream: FakeUpstream, redis_client: redis.Redis, stream: bool
) -> None:
    size = 100_000
    with start_proxy(cache={"max_entry_bytes": 64 * 1024}) as url:
        sdk = openai_sdk(url, api_key, upstream)
        headers = {"X-Fake-Content-Bytes": str(size)}
        if stream:
            text = stream_text(sdk, **headers)
        else:
            reply = sdk.chat.completions.create(model="fake-model", messages=MESSAGES, extra_headers=headers)
            text = reply.choices[0].message.content or ""
        assert len(text.encode()) == size and text.startswith("Fake reply #1 to: Tell me something hostile")
        assert entry_keys(redis_client, api_key) == []
        assert x_cache_of_a_repeat(sdk) == "MISS"
        assert upstream.calls() == 2
        assert value(scrape(url), "llmproxy_cache_writes_total", outcome="too_large") == 1


# --- Item 12: error events, 200s that are not answers, keep-alives without data -----------------------


@pytest.mark.parametrize("kind", ["typed", "data"])
def test_an_error_event_before_done_raises_in_the_sdk_and_is_not_cached(
    client: OpenAI, upstream: FakeUpstream, redis_client: redis.Redis, api_key: str, kind: str
) -> None:
    with pytest.raises(openai.APIError, match="fake stream error"):
        stream_text(client, **{"X-Fake-Error-Event": kind})
    assert_nothing_cached(client, upstream, redis_client, api_key)


def test_a_typed_error_event_without_an_error_object_is_relayed_as_it_came_and_not_cached(
    client: OpenAI, upstream: FakeUpstream, redis_client: redis.Redis, api_key: str
) -> None:
    stream = client.chat.completions.create(
        model="fake-model", messages=MESSAGES, stream=True, extra_headers={"X-Fake-Error-Event": "bare"}
    )
    chunks = list(stream)
    # The SDK raises only for an error object; this one reaches the caller as a chunk of its own.
    assert chunks[-1].to_dict() == {"message": "fake stream error", "type": "server_error"}
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert_nothing_cached(client, upstream, redis_client, api_key)


@pytest.mark.parametrize(
    "fault",
    [{"X-Fake-Bad-Body": "truncated"}, {"X-Fake-Bad-Body": "html"}, {"X-Fake-Status": "200"}],
    ids=["truncated", "html", "error-object"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_200_that_is_not_an_answer_is_a_502_in_openai_shape_and_not_cached(
    client: OpenAI,
    upstream: FakeUpstream,
    redis_client: redis.Redis,
    api_key: str,
    fault: dict[str, str],
    stream: bool,
) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        if stream:
            stream_text(client, **fault)
        else:
            client.chat.completions.create(model="fake-model", messages=MESSAGES, extra_headers=fault)
    assert raised.value.status_code == 502
    assert raised.value.code == "upstream_invalid_response"
    assert isinstance(raised.value.body, dict) and set(raised.value.body) == {"message", "type", "param", "code"}
    assert_nothing_cached(client, upstream, redis_client, api_key)


def test_an_embeddings_200_that_is_not_an_answer_is_a_502(client: OpenAI, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        client.embeddings.create(model="fake-model", input="hostile", extra_headers={"X-Fake-Bad-Body": "html"})
    assert raised.value.status_code == 502
    raw = client.embeddings.with_raw_response.create(model="fake-model", input="hostile")
    assert raw.headers["x-cache"] == "MISS" and upstream.calls("/v1/embeddings") == 2


def test_keepalive_comments_without_data_past_the_read_timeout_end_the_stream_with_an_error(
    start_proxy: StartProxy, api_key: str, upstream: FakeUpstream, redis_client: redis.Redis
) -> None:
    # The fake pings every 100 ms for 3 s before its first chunk: bytes keep coming, data does not.
    with start_proxy(upstream={"read_timeout_s": 0.5}) as url:
        sdk = openai_sdk(url, api_key, upstream)
        with pytest.raises(openai.APIError) as raised:
            stream_text(sdk, **{"X-Fake-Keepalive-Ms": "3000"})
        assert raised.value.code == "upstream_timeout"
        assert_nothing_cached(sdk, upstream, redis_client, api_key)


def test_keepalive_comments_shorter_than_the_read_timeout_are_relayed_and_the_answer_cached(
    start_proxy: StartProxy, api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(upstream={"read_timeout_s": 2.0}) as url:
        sdk = openai_sdk(url, api_key, upstream)
        assert stream_text(sdk, **{"X-Fake-Keepalive-Ms": "300"}) == "Fake reply #1 to: Tell me something hostile"
        assert x_cache_of_a_repeat(sdk) == "HIT-L1"
        assert upstream.calls() == 1


def test_data_events_slower_in_all_than_the_read_timeout_are_relayed_and_cached(
    start_proxy: StartProxy, api_key: str, upstream: FakeUpstream
) -> None:
    # Eight events 300 ms apart take over 2 s against a 0.8 s timeout: each data event restarts the wait.
    with start_proxy(upstream={"read_timeout_s": 0.8}) as url:
        with openai_sdk(url, api_key, upstream) as sdk:
            assert stream_text(sdk, **{"X-Fake-Chunk-Delay-Ms": "300"}) == "Fake reply #1 to: Tell me something hostile"
            assert x_cache_of_a_repeat(sdk) == "HIT-L1"
        assert upstream.calls() == 1
