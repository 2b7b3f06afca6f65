"""The router holds when things go wrong: Redis flushed or down, the embedder slow or failing, padded prompts.

A route decision that could not be made is never cached as if it were the default route, and block routes
refuse whatever happens to Redis or to the prompt's length.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
import redis

from llmproxy.app import create_app
from llmproxy.embeddings.embedder import ModelLoader
from llmproxy.settings import EmbeddingSettings
from llmproxy.store.embedded_redis import EmbeddedRedis
from tests.conftest import proxy_settings
from tests.integration.test_metrics import scrape, value
from tests.support.clients import openai_sdk
from tests.support.router import BLOCKED_PROMPT, NO_CACHE_PROMPT, ROUTES, chat, routes_file_in
from tests.support.servers import serve_in_thread
from tests.support.upstream import FakeUpstream

LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore. "
)
PROSE = (
    "The committee met on Tuesday to review the quarterly figures. Sales in the northern region rose slightly, "
    "while costs stayed flat. Several members asked for a clearer breakdown of travel expenses. "
)
PADDING = {"lorem": LOREM * 48, "prose": PROSE * 57}  # about 2,000 tokens each
SLOW_EMBEDDING_S = 1.5
EMBED_TIMEOUT_MS = 200
UNHURRIED = {"timeout_ms": 30_000}  # what is matched, not how fast: the machine may be busy (BENCHMARKS.md has timings)


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    return routes_file_in(tmp_path, ROUTES)


def routed(start_proxy: Callable[..., AbstractContextManager[str]], routes_file: Path, **sections: Any) -> Any:
    """A proxy with the test routes (the cheap upstream of small-talk is the main fake: unused here)."""
    return start_proxy(
        router={"routes_file": str(routes_file), **sections.pop("router", {})},
        upstreams={"cheap": {"base_url": "http://127.0.0.1:9/v1"}},
        **sections,
    )


def test_routes_still_apply_after_redis_is_flushed(
    start_proxy: Callable[..., AbstractContextManager[str]],
    routes_file: Path,
    own_redis: EmbeddedRedis,
    api_key: str,
    upstream: FakeUpstream,
) -> None:
    with routed(start_proxy, routes_file, redis_url=own_redis.url) as url, openai_sdk(url, api_key, upstream) as sdk:
        with redis.Redis.from_url(own_redis.url) as client:
            client.flushall()
        with pytest.raises(openai.PermissionDeniedError):
            chat(sdk, BLOCKED_PROMPT)
        headers = [chat(sdk, NO_CACHE_PROMPT)[1] for _ in range(2)]
    assert [(h["x-cache"], h["x-llmproxy-route"]) for h in headers] == [("BYPASS", "time-sensitive")] * 2
    assert upstream.calls() == 2


def test_block_route_refuses_while_redis_is_down(
    start_proxy: Callable[..., AbstractContextManager[str]],
    routes_file: Path,
    own_redis: EmbeddedRedis,
    api_key: str,
    upstream: FakeUpstream,
) -> None:
    fast_failing = {"socket_timeout_s": 0.25, "breaker_failure_threshold": 1}
    with (
        routed(start_proxy, routes_file, redis_url=own_redis.url, redis=fast_failing) as url,
        openai_sdk(url, api_key, upstream) as sdk,
    ):
        own_redis.stop()
        for _ in range(2):  # the first request finds Redis down, the second finds its breaker open
            with pytest.raises(openai.PermissionDeniedError) as refused:
                chat(sdk, BLOCKED_PROMPT)
            assert refused.value.status_code == 403
        _, headers = chat(sdk, "How do I reverse a list in Python?")
    assert (headers["x-cache"], headers["x-llmproxy-route"]) == ("BYPASS", "default")
    assert upstream.calls() == 1


@pytest.mark.parametrize("where", ["end", "start"])
@pytest.mark.parametrize("padding", sorted(PADDING))
def test_blocked_prompt_padded_past_the_model_window_is_still_blocked(
    start_proxy: Callable[..., AbstractContextManager[str]],
    routes_file: Path,
    model_loader: ModelLoader,
    api_key: str,
    upstream: FakeUpstream,
    padding: str,
    where: str,
) -> None:
    prompt = f"{BLOCKED_PROMPT} {PADDING[padding]}" if where == "end" else f"{PADDING[padding]}{BLOCKED_PROMPT}"
    tokens = model_loader(EmbeddingSettings()).count_tokens(prompt)
    assert 1_800 <= tokens <= 2_400  # far past the 256-token window of the model
    with routed(start_proxy, routes_file, embeddings=UNHURRIED) as url, openai_sdk(url, api_key, upstream) as sdk:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            chat(sdk, prompt)
    assert refused.value.status_code == 403 and "not allowed" in refused.value.message
    assert upstream.calls() == 0


def test_no_cache_question_past_the_leading_window_keeps_a_long_prompt_out_of_the_cache(
    start_proxy: Callable[..., AbstractContextManager[str]], routes_file: Path, api_key: str, upstream: FakeUpstream
) -> None:
    prompt = PADDING["prose"] + NO_CACHE_PROMPT
    with routed(start_proxy, routes_file, embeddings=UNHURRIED) as url, openai_sdk(url, api_key, upstream) as sdk:
        headers = [chat(sdk, prompt)[1] for _ in range(2)]
    assert [(h["x-cache"], h["x-llmproxy-route"]) for h in headers] == [("BYPASS", "time-sensitive")] * 2
    assert upstream.calls() == 2


def test_long_ordinary_prompt_is_routed_to_the_default_and_cached(
    start_proxy: Callable[..., AbstractContextManager[str]], routes_file: Path, api_key: str, upstream: FakeUpstream
) -> None:
    prompt = PADDING["prose"] + "Please summarise the minutes above in three bullet points."
    with routed(start_proxy, routes_file, embeddings=UNHURRIED) as url, openai_sdk(url, api_key, upstream) as sdk:
        headers = [chat(sdk, prompt)[1] for _ in range(2)]
    assert [h["x-cache"] for h in headers] == ["MISS", "HIT-L1"]
    assert headers[0]["x-llmproxy-route"] == "default"
    assert upstream.calls() == 1


class FaultyModel:
    """The real model, made slow or failing on demand once the routes are loaded (an embedder in trouble)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.slow = threading.Event()
        self.broken = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        if self.broken.is_set():
            raise RuntimeError("model failure (test)")
        if self.slow.is_set():
            time.sleep(SLOW_EMBEDDING_S)  # the model is busy: longer than embeddings.timeout_ms
        return self._model.encode(*args, **kwargs)


@pytest.fixture
def faulty_proxy(
    redis_url: str, upstream_url: str, model_loader: ModelLoader, routes_file: Path, key_prefix: str
) -> Callable[..., AbstractContextManager[tuple[str, FaultyModel]]]:
    """`with faulty_proxy(**router) as (url, model):` a routed proxy whose model the test can slow down or break."""

    @contextmanager
    def start(**router: Any) -> Iterator[tuple[str, FaultyModel]]:
        model = FaultyModel(model_loader(EmbeddingSettings()))
        settings = proxy_settings(
            redis_url,
            upstream_url + "/v1",
            router={"routes_file": str(routes_file), **router},
            upstreams={"cheap": {"base_url": "http://127.0.0.1:9/v1"}},
            embeddings={"timeout_ms": EMBED_TIMEOUT_MS},
            redis={"key_prefix": key_prefix},
        )
        with serve_in_thread(create_app(settings, model_loader=lambda _: model)) as url:
            try:
                yield url, model
            finally:
                model.slow.clear()  # a batch still sleeping ends at once: the server stops without waiting on it

    return start


@pytest.mark.parametrize("fault", ["slow", "broken"])
def test_undecided_route_is_forwarded_but_never_cached(
    faulty_proxy: Callable[..., AbstractContextManager[tuple[str, FaultyModel]]],
    api_key: str,
    upstream: FakeUpstream,
    redis_client: redis.Redis,
    key_prefix: str,
    fault: str,
) -> None:
    with faulty_proxy() as (url, model), openai_sdk(url, api_key, upstream) as sdk:
        getattr(model, fault).set()
        headers = [chat(sdk, BLOCKED_PROMPT)[1] for _ in range(3)]
        samples = scrape(url)
    assert {(h["x-cache"], h.get("x-cache-bypass-reason"), h.get("x-llmproxy-route")) for h in headers} == {
        ("BYPASS", "route-undecided", "undecided")
    }
    assert upstream.calls() == 3  # every repeat went upstream again: nothing was cached
    assert redis_client.keys(f"{key_prefix}:l1:*") == [] and redis_client.keys(f"{key_prefix}:l2:*") == []
    reason = "timeout" if fault == "slow" else "embedder-error"
    assert value(samples, "llmproxy_router_undecided_total", reason=reason) == 3


def test_undecided_route_is_refused_when_the_operator_says_so(
    faulty_proxy: Callable[..., AbstractContextManager[tuple[str, FaultyModel]]],
    api_key: str,
    upstream: FakeUpstream,
) -> None:
    with faulty_proxy(on_undecided="block") as (url, model), openai_sdk(url, api_key, upstream) as sdk:
        model.slow.set()
        with pytest.raises(openai.PermissionDeniedError) as refused:
            chat(sdk, "How do I reverse a list in Python?")
    assert refused.value.status_code == 403
    assert refused.value.code == "route_undecided"
    assert refused.value.response.headers["x-llmproxy-route"] == "undecided"
    assert upstream.calls() == 0


def test_prompt_beyond_max_windows_is_undecided(
    start_proxy: Callable[..., AbstractContextManager[str]],
    routes_file: Path,
    api_key: str,
    upstream: FakeUpstream,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    prompt = PADDING["prose"] + BLOCKED_PROMPT  # about 2,000 tokens: more than 2 windows
    sections = {"router": {"max_windows": 2}, "redis": {"key_prefix": key_prefix}}
    with routed(start_proxy, routes_file, **sections) as url, openai_sdk(url, api_key, upstream) as sdk:
        headers = [chat(sdk, prompt)[1] for _ in range(2)]
        samples = scrape(url)
    assert [(h["x-cache"], h["x-llmproxy-route"]) for h in headers] == [("BYPASS", "undecided")] * 2
    assert upstream.calls() == 2
    assert redis_client.keys(f"{key_prefix}:l1:*") == []
    assert value(samples, "llmproxy_router_undecided_total", reason="too-long") == 2
