"""The circuit breaker end to end: after N failures the proxy answers 503 without calling the upstream,
and after the reset time one trial request decides whether it closes again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import openai
import pytest

from tests.support.clients import caller_headers, openai_sdk
from tests.support.servers import free_port
from tests.support.upstream import FakeUpstream, metric

THRESHOLD = 2
SHORT_RESET_S = 0.3  # tests of the trial poll until it is admitted
LONG_RESET_S = 60.0  # tests of the open state are done long before it ends
POLL_TIMEOUT_S = 10.0
CHAT = "/v1/chat/completions"

StartProxy = Callable[..., AbstractContextManager[str]]


@contextmanager
def breaker_proxy(start_proxy: StartProxy, reset_s: float) -> Iterator[str]:
    upstream = {"breaker_failure_threshold": THRESHOLD, "breaker_reset_s": reset_s, "max_retries": 0}
    with start_proxy(upstream=upstream, semantic={"enabled": False}) as url:
        yield url


def chat(proxy: str, api_key: str, fake: FakeUpstream, **fake_headers: str) -> httpx.Response:
    """A chat request with a prompt never asked before (so never a cache hit)."""
    body = {"model": "fake-model", "messages": [{"role": "user", "content": f"Question {uuid.uuid4().hex}"}]}
    headers = caller_headers(api_key, fake) | fake_headers
    return httpx.post(proxy + CHAT, json=body, headers=headers, timeout=30)


def is_breaker_refusal(response: httpx.Response) -> bool:
    return response.status_code == 503 and response.json()["error"]["code"] == "upstream_unavailable"


def first_admitted(send: Callable[[], httpx.Response]) -> httpx.Response:
    """Send until the breaker lets a request through (its reset time passed); each refusal costs no upstream call."""
    deadline = time.monotonic() + POLL_TIMEOUT_S
    response = send()
    while is_breaker_refusal(response) and time.monotonic() < deadline:
        time.sleep(0.05)  # a poll interval, not a guess: the loop ends when a request is admitted
        response = send()
    return response


def breaker_state(proxy: str) -> float:
    return metric(proxy, "llmproxy_upstream_breaker_state", upstream="default")


def open_breaker(proxy: str, api_key: str, upstream: FakeUpstream) -> None:
    for _ in range(THRESHOLD):
        assert chat(proxy, api_key, upstream, **{"X-Fake-Status": "500"}).status_code == 500
    assert upstream.calls() == THRESHOLD


def test_open_breaker_fails_fast_without_calling_the_upstream(
    start_proxy: StartProxy, api_key: str, upstream: FakeUpstream
) -> None:
    with breaker_proxy(start_proxy, LONG_RESET_S) as proxy:
        assert breaker_state(proxy) == 0
        open_breaker(proxy, api_key, upstream)

        refused = chat(proxy, api_key, upstream)
        assert is_breaker_refusal(refused)
        error: dict[str, Any] = refused.json()["error"]
        assert error["type"] == "server_error" and error["message"] and error["param"] is None
        assert LONG_RESET_S - 10 <= int(refused.headers["retry-after"]) <= LONG_RESET_S  # the remaining open time
        with openai_sdk(proxy, api_key, upstream) as sdk:
            with pytest.raises(openai.InternalServerError) as raised:
                sdk.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "Up again?"}])
        assert raised.value.status_code == 503 and raised.value.code == "upstream_unavailable"
        # Pass-through routes go through the same client, hence the same breaker.
        assert is_breaker_refusal(httpx.get(proxy + "/v1/models", headers=caller_headers(api_key, upstream)))
        assert breaker_state(proxy) == 2
        assert metric(proxy, "llmproxy_upstream_breaker_opened_total", upstream="default") == 1
    assert (upstream.calls(), upstream.calls("/v1/models")) == (THRESHOLD, 0)


def test_after_the_reset_time_a_successful_trial_closes_it(
    start_proxy: StartProxy, api_key: str, upstream: FakeUpstream
) -> None:
    with breaker_proxy(start_proxy, SHORT_RESET_S) as proxy:
        open_breaker(proxy, api_key, upstream)
        trial = first_admitted(lambda: chat(proxy, api_key, upstream))
        assert trial.status_code == 200
        assert upstream.calls() == THRESHOLD + 1  # the refused polls never reached it
        assert chat(proxy, api_key, upstream).status_code == 200
        assert breaker_state(proxy) == 0


def test_failed_trial_opens_it_again(start_proxy: StartProxy, api_key: str, upstream: FakeUpstream) -> None:
    with breaker_proxy(start_proxy, SHORT_RESET_S) as proxy:
        open_breaker(proxy, api_key, upstream)
        trial = first_admitted(lambda: chat(proxy, api_key, upstream, **{"X-Fake-Status": "502"}))
        assert trial.status_code == 502  # the upstream's own answer, relayed
        # Open again (it turns half-open only when a request comes, so this holds however slow the machine).
        assert breaker_state(proxy) == 2
        assert metric(proxy, "llmproxy_upstream_breaker_opened_total", upstream="default") == 2
    assert upstream.calls() == THRESHOLD + 1


def test_unreachable_upstream_opens_it_after_retries(
    start_proxy: StartProxy, api_key: str, upstream: FakeUpstream
) -> None:
    closed_port = f"http://127.0.0.1:{free_port()}/v1"
    breaker = {"breaker_failure_threshold": THRESHOLD, "breaker_reset_s": LONG_RESET_S}
    with start_proxy(upstream_api_url=closed_port, upstream=breaker, semantic={"enabled": False}) as url:
        statuses = [chat(url, api_key, upstream).status_code for _ in range(THRESHOLD + 1)]
        retries = metric(url, "llmproxy_upstream_retries_total", upstream="default", reason="connection")
    assert statuses == [502] * THRESHOLD + [503]
    assert retries == 2 * THRESHOLD  # each failed request made its retries; the refused one made none
