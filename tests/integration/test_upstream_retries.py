"""Upstream faults end to end: 429/502/503 and refused connections retried, the rest relayed; errors never cached.

The SDK is built with max_retries=0, so every retry the fake upstream counts is the proxy's own.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.clients import caller_headers, openai_sdk
from tests.support.servers import free_port
from tests.support.upstream import FakeUpstream, failing, metric

MODEL = "fake-model"
ATTEMPTS = "x-llmproxy-upstream-attempts"


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_503_twice_then_200_is_answered_and_cached(client: OpenAI, upstream: FakeUpstream) -> None:
    messages = ask("Retry me twice")
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages, extra_headers=failing(2))
    assert raw.status_code == 200 and raw.parse().choices[0].message.content
    assert (raw.headers["x-cache"], raw.headers[ATTEMPTS]) == ("MISS", "3")
    assert upstream.calls() == 3
    again = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
    assert again.headers["x-cache"] == "HIT-L1" and ATTEMPTS not in again.headers
    assert upstream.calls() == 3


def test_429_with_retry_after_is_retried(client: OpenAI, upstream: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=ask("Rate limited once"), extra_headers=failing(1, 429, retry_after="1")
    )
    assert raw.status_code == 200 and raw.headers[ATTEMPTS] == "2"
    assert upstream.calls() == 2


def test_429_with_retry_after_above_the_cap_is_relayed_at_once_and_not_cached(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    messages = ask("Rate limited for a minute")
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=MODEL, messages=messages, extra_headers=failing(1, 429, retry_after="60"))
    assert raised.value.response.headers["retry-after"] == "60"
    assert raised.value.code == "rate_limit_exceeded"
    assert upstream.calls() == 1
    assert client.chat.completions.with_raw_response.create(model=MODEL, messages=messages).headers["x-cache"] == "MISS"
    assert upstream.calls() == 2


@pytest.mark.parametrize(
    ("status", "retry_after", "error_class"),
    [(429, "0", openai.RateLimitError), (503, None, openai.InternalServerError)],
)
def test_persistent_retryable_error_is_relayed_after_all_retries_and_not_cached(
    client: OpenAI, upstream: FakeUpstream, status: int, retry_after: str | None, error_class: type[Exception]
) -> None:
    messages = ask(f"Always {status}")
    with pytest.raises(error_class) as raised:
        client.chat.completions.create(model=MODEL, messages=messages, extra_headers=failing(99, status, retry_after))
    assert isinstance(raised.value, openai.APIStatusError)
    assert raised.value.status_code == status and raised.value.response.headers[ATTEMPTS] == "3"
    assert raised.value.type in ("rate_limit_error", "server_error")  # the upstream's own error body
    assert upstream.calls() == 3
    assert client.chat.completions.with_raw_response.create(model=MODEL, messages=messages).headers["x-cache"] == "MISS"


def test_500_is_relayed_without_a_retry_and_not_cached(client: OpenAI, upstream: FakeUpstream) -> None:
    messages = ask("Fail with a 500")
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model=MODEL, messages=messages, extra_headers={"X-Fake-Status": "500"})
    assert raised.value.status_code == 500 and ATTEMPTS not in raised.value.response.headers
    assert upstream.calls() == 1
    assert client.chat.completions.with_raw_response.create(model=MODEL, messages=messages).headers["x-cache"] == "MISS"
    assert upstream.calls() == 2


def test_answer_slower_than_the_total_timeout_is_a_504_without_a_retry(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(upstream={"total_timeout_s": 0.5}, semantic={"enabled": False}) as url:
        sdk = openai_sdk(url, api_key, upstream)
        with pytest.raises(openai.InternalServerError) as raised:
            sdk.chat.completions.create(
                model=MODEL, messages=ask("Too slow"), extra_headers={"X-Fake-Latency-Ms": "3000"}
            )
        assert metric(url, "llmproxy_upstream_retries_total", upstream="default", reason="connection") == 0
    assert raised.value.status_code == 504 and raised.value.code == "upstream_timeout"
    assert upstream.calls() == 1


def test_refused_connection_is_retried_then_a_502(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    closed_port = f"http://127.0.0.1:{free_port()}/v1"
    with start_proxy(upstream_api_url=closed_port, semantic={"enabled": False}) as url:
        sdk = openai_sdk(url, api_key, upstream)
        with pytest.raises(openai.InternalServerError) as raised:
            sdk.chat.completions.create(model=MODEL, messages=ask("Anyone there?"))
        retries = metric(url, "llmproxy_upstream_retries_total", upstream="default", reason="connection")
    assert raised.value.status_code == 502 and raised.value.code == "upstream_unreachable"
    assert retries == 2  # max_retries: three attempts in all


def test_stream_after_a_503_is_relayed_normally(client: OpenAI, upstream: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=ask("Stream after one failure"), stream=True, extra_headers=failing(1)
    )
    assert raw.headers[ATTEMPTS] == "2"
    with raw.parse() as stream:
        chunks = list(stream)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices).startswith("Fake reply")
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert upstream.calls() == 2


def test_passthrough_without_a_body_is_retried(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    headers = caller_headers(api_key, upstream) | failing(2, 502)
    response = httpx.get(proxy_url + "/v1/models", headers=headers)
    assert response.status_code == 200 and response.headers[ATTEMPTS] == "3"
    assert upstream.calls("/v1/models") == 3


def test_passthrough_with_a_streamed_body_is_not_retried(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    headers = caller_headers(api_key, upstream) | failing(1, 503)
    response = httpx.post(proxy_url + "/v1/echo/batches", content=b"a body sent once", headers=headers)
    assert response.status_code == 503 and ATTEMPTS not in response.headers
    assert upstream.calls("/v1/echo/batches") == 1
