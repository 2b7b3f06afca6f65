"""Errors the proxy produces are OpenAI-shaped with fitting statuses; upstream errors are relayed, never cached."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import TEST_MAX_BODY_BYTES
from tests.support.clients import caller_headers, openai_sdk
from tests.support.servers import free_port
from tests.support.upstream import FakeUpstream

MESSAGES: list[Any] = [{"role": "user", "content": "Is this going to fail?"}]


def post_raw(
    proxy_url: str, api_key: str, fake: FakeUpstream, content: bytes, path: str = "/v1/chat/completions"
) -> httpx.Response:
    headers = caller_headers(api_key, fake) | {"content-type": "application/json"}
    return httpx.post(proxy_url + path, content=content, headers=headers)


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""], ids=["broken", "array", "empty"])
def test_unparseable_body_is_a_400_in_openai_shape(
    proxy_url: str, api_key: str, upstream: FakeUpstream, body: bytes
) -> None:
    error = assert_openai_error(post_raw(proxy_url, api_key, upstream, body), 400)
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": "fake-model"}, "messages"),
        ({"model": "fake-model", "messages": []}, "messages"),
        ({"model": "fake-model", "messages": [{"content": "hi"}]}, "messages.0.role"),
        ({"model": "fake-model", "messages": MESSAGES, "temperature": "hot"}, "temperature"),
        ({"model": "fake-model", "messages": MESSAGES, "stream": "yes"}, "stream"),
    ],
)
def test_missing_or_mistyped_field_raises_bad_request_in_the_sdk(
    client: OpenAI, upstream: FakeUpstream, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.post("/chat/completions", body=body, cast_to=httpx.Response)
    assert raised.value.param == param
    assert upstream.calls() == 0


def test_embeddings_without_input_are_a_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.post("/embeddings", body={"model": "fake-embed"}, cast_to=httpx.Response)
    assert raised.value.code == "missing_required_parameter"


def test_oversized_body_is_a_413(client: OpenAI, upstream: FakeUpstream) -> None:
    huge = [{"role": "user", "content": "x" * (TEST_MAX_BODY_BYTES + 1)}]
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="fake-model", messages=huge)
    assert raised.value.status_code == 413
    assert raised.value.code == "request_too_large"
    assert upstream.calls() == 0


def test_oversized_chunked_body_is_a_413(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    def body() -> Any:
        yield b'{"model": "fake-model", "messages": [{"role": "user", "content": "'
        yield b"y" * (TEST_MAX_BODY_BYTES + 1)
        yield b'"}]}'

    response = httpx.post(proxy_url + "/v1/chat/completions", content=body(), headers=caller_headers(api_key, upstream))
    assert_openai_error(response, 413)


@pytest.mark.parametrize(
    ("status", "error_class", "attempts"),
    [(500, openai.InternalServerError, 1), (429, openai.RateLimitError, 3), (400, openai.BadRequestError, 1)],
)
def test_upstream_error_is_relayed_unchanged_and_not_cached(
    client: OpenAI, upstream: FakeUpstream, status: int, error_class: type[openai.APIStatusError], attempts: int
) -> None:
    # A 429 is retried first (here without waiting), the others are relayed at once (test_upstream_retries).
    faults = {"X-Fake-Status": str(status), "X-Fake-Retry-After": "0"}
    with pytest.raises(error_class) as raised:
        client.chat.completions.create(model="fake-model", messages=MESSAGES, extra_headers=faults)
    assert raised.value.status_code == status
    assert raised.value.message.startswith("Error code: ")
    assert upstream.calls() == attempts
    raw = client.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES)
    assert raw.headers["x-cache"] == "MISS"
    assert upstream.calls() == attempts + 1


def test_error_body_with_status_200_is_a_502_and_not_cached(client: OpenAI, upstream: FakeUpstream) -> None:
    # More 200s that are not answers (truncated, HTML, on streams too): test_hostile_upstream.py.
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="fake-model", messages=MESSAGES, extra_headers={"X-Fake-Status": "200"})
    assert raised.value.status_code == 502 and "fake error status 200" in raised.value.message
    second = client.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES)
    assert second.headers["x-cache"] == "MISS"
    assert upstream.calls() == 2


def test_miss_headers_are_not_duplicated(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES)
    names = [name.lower() for name, _ in raw.headers.multi_items()]
    assert names.count("date") == 1 and names.count("server") == 1


def test_unreachable_upstream_is_a_502(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(upstream_api_url=f"http://127.0.0.1:{free_port()}/v1") as url:
        sdk = openai_sdk(url, api_key, upstream)
        with pytest.raises(openai.InternalServerError) as raised:
            sdk.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert raised.value.status_code == 502
    assert raised.value.code == "upstream_unreachable"


def test_upstream_timeout_is_a_504(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(upstream={"read_timeout_s": 0.3}) as url:
        sdk = openai_sdk(url, api_key, upstream)
        with pytest.raises(openai.InternalServerError) as raised:
            sdk.chat.completions.create(
                model="fake-model", messages=MESSAGES, extra_headers={"X-Fake-Latency-Ms": "3000"}
            )
    assert raised.value.status_code == 504
    assert raised.value.code == "upstream_timeout"


def test_unknown_route_and_wrong_method_are_openai_shaped(proxy_url: str) -> None:
    assert_openai_error(httpx.get(proxy_url + "/nope"), 404)
    assert_openai_error(httpx.post(proxy_url + "/healthz"), 405)
