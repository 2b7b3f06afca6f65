"""GET /metrics: counters and histograms move with real traffic (scraped and parsed with prometheus-client)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from openai import APIStatusError, OpenAI
from prometheus_client.parser import text_string_to_metric_families

from llmproxy.app import create_app
from llmproxy.embeddings.embedder import ModelLoader
from llmproxy.settings import EmbeddingSettings
from tests.conftest import proxy_settings
from tests.support.clients import openai_sdk
from tests.support.servers import free_port, serve_in_thread
from tests.support.upstream import FakeUpstream

MODEL = "gpt-4o-mini-2024-07-18"  # priced through its prefix, gpt-4o-mini
CHAT = "/v1/chat/completions"
QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(proxy: str) -> Samples:
    """Every sample of the text exposition, by (sample name, labels)."""
    response = httpx.get(proxy + "/metrics")
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def scrape_until(proxy: str, done: Callable[[Samples], bool], timeout_s: float = 10.0) -> Samples:
    """Scrape until `done` holds: a stream is reported once its response has ended, just after the client's read."""
    deadline = time.monotonic() + timeout_s
    samples = scrape(proxy)
    while not done(samples) and time.monotonic() < deadline:
        time.sleep(0.02)
        samples = scrape(proxy)
    return samples


def stage_count(samples: Samples, stage: str) -> float:
    return value(samples, "llmproxy_stage_duration_seconds_count", stage=stage)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when the series does not exist yet (Prometheus semantics for a counter)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def ask(client: OpenAI, text: str, model: str = MODEL, **options: Any) -> Any:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **options
    )
    return raw


@pytest.fixture
def proxy(start_proxy: Callable[..., AbstractContextManager[str]]) -> Iterator[str]:
    """A proxy of this test's own, so its counters start at zero."""
    with start_proxy() as url:
        yield url


@pytest.fixture
def sdk(proxy: str, api_key: str, upstream: FakeUpstream) -> Iterator[OpenAI]:
    with openai_sdk(proxy, api_key, upstream) as client:
        yield client


def test_scrape_is_prometheus_text_or_openmetrics_on_request(proxy: str) -> None:
    text = httpx.get(proxy + "/metrics")
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain; version=")
    openmetrics = httpx.get(proxy + "/metrics", headers={"accept": "application/openmetrics-text"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


def test_miss_l1_hit_and_l2_hit_are_counted_with_stages_tokens_and_cost(
    proxy: str, sdk: OpenAI, upstream: FakeUpstream
) -> None:
    first = ask(sdk, QUESTION)
    usage = first.parse().usage
    assert [ask(sdk, text).headers["x-cache"] for text in (QUESTION, PARAPHRASE)] == ["HIT-L1", "HIT-L2"]
    samples = scrape(proxy)

    for result in ("miss", "hit_l1", "hit_l2"):
        labels = {"endpoint": CHAT, "model": MODEL, "result": result, "route": "none"}
        assert value(samples, "llmproxy_requests_total", **labels) == 1, result
        count = value(samples, "llmproxy_request_duration_seconds_count", endpoint=CHAT, result=result)
        assert count == 1, result
    # Three L1 lookups; the L1 hit needed no embedding and no L2 search; only the miss went upstream.
    stage_counts = {
        stage: value(samples, "llmproxy_stage_duration_seconds_count", stage=stage)
        for stage in ("l1", "embed", "l2", "upstream", "write", "total")
    }
    assert stage_counts == {"l1": 3, "embed": 2, "l2": 2, "upstream": 1, "write": 1, "total": 3}
    assert value(samples, "llmproxy_upstream_responses_total", upstream="default", status="200") == 1
    assert value(samples, "llmproxy_cache_writes_total", outcome="stored") == 1
    # Both hits served the cached answer's tokens; gpt-4o-mini's default price is 0.15 / 0.60 USD per 1M.
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    assert value(samples, "llmproxy_cached_tokens_total", model=MODEL, kind="prompt") == 2 * prompt
    assert value(samples, "llmproxy_cached_tokens_total", model=MODEL, kind="completion") == 2 * completion
    expected_cost = 2 * (prompt * 0.15 + completion * 0.60) / 1_000_000
    assert value(samples, "llmproxy_cost_saved_usd_total", model=MODEL) == pytest.approx(expected_cost)
    assert upstream.calls() == 1


def test_streams_record_time_to_first_byte_for_misses_and_hits(proxy: str, sdk: OpenAI) -> None:
    for n in range(2):
        with sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True
        ) as stream:
            assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        # Wait until this stream is reported (after its write-back), so the second one can hit.
        samples = scrape_until(proxy, lambda got, n=n: stage_count(got, "total") == n + 1)
    assert value(samples, "llmproxy_stream_first_byte_seconds_count", result="miss") == 1
    assert value(samples, "llmproxy_stream_first_byte_seconds_count", result="hit_l1") == 1
    assert value(samples, "llmproxy_cache_writes_total", outcome="stored") == 1


def test_upstream_errors_and_bad_requests_count_as_errors_and_are_not_written(
    proxy: str, sdk: OpenAI, upstream: FakeUpstream
) -> None:
    with pytest.raises(APIStatusError):
        ask(sdk, f"fail {uuid.uuid4().hex}", extra_headers={"X-Fake-Status": "500"})
    assert httpx.post(proxy + "/v1/chat/completions", content=b"{not json").status_code == 400
    samples = scrape(proxy)
    assert value(samples, "llmproxy_requests_total", endpoint=CHAT, model=MODEL, result="error", route="none") == 1
    assert value(samples, "llmproxy_requests_total", endpoint=CHAT, model="unknown", result="error", route="none") == 1
    assert value(samples, "llmproxy_upstream_responses_total", upstream="default", status="500") == 1
    assert value(samples, "llmproxy_cache_writes_total", outcome="stored") == 0


def test_model_labels_are_bounded(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(metrics={"max_model_labels": 2}) as url, openai_sdk(url, api_key, upstream) as sdk:
        for model in ("model-a", "model-b", "model-c", "model-d"):
            ask(sdk, QUESTION, model=model)
        samples = scrape(url)
    models = {dict(labels)["model"] for name, labels in samples if name == "llmproxy_requests_total"}
    assert models == {"model-a", "model-b", "other"}
    assert value(samples, "llmproxy_requests_total", endpoint=CHAT, model="other", result="miss", route="none") == 2


def test_redis_outage_is_counted_as_fail_open_and_requests_still_succeed(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    with start_proxy(redis_url=nothing_listens) as url, openai_sdk(url, api_key, upstream) as sdk:
        assert ask(sdk, QUESTION).headers["x-cache"] == "BYPASS"
        samples = scrape(url)
    assert value(samples, "llmproxy_errors_total", component="redis", operation="read") == 1
    assert value(samples, "llmproxy_fail_open_total", component="redis") == 1
    assert value(samples, "llmproxy_requests_total", endpoint=CHAT, model=MODEL, result="bypass", route="none") == 1
    assert upstream.calls() == 1


class BrokenModel:
    """The real model, except that it fails to embed: an embedder outage."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("model failure (test)")


def test_embedder_failure_is_counted_and_skips_only_the_semantic_cache(
    redis_url: str, upstream_url: str, model_loader: ModelLoader, api_key: str, upstream: FakeUpstream
) -> None:
    def broken_loader(settings: EmbeddingSettings) -> Any:
        return BrokenModel(model_loader(settings))

    app = create_app(proxy_settings(redis_url, upstream_url + "/v1"), model_loader=broken_loader)
    with serve_in_thread(app) as url, openai_sdk(url, api_key, upstream) as sdk:
        assert [ask(sdk, QUESTION).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT-L1"]
        samples = scrape(url)
    assert value(samples, "llmproxy_errors_total", component="embedder", operation="embed") == 1
    assert value(samples, "llmproxy_fail_open_total", component="embedder") == 1
    assert upstream.calls() == 1


def test_passthrough_requests_are_counted_under_one_endpoint_label(proxy: str, sdk: OpenAI) -> None:
    assert [model.id for model in sdk.models.list()]
    labels = {"endpoint": "passthrough", "model": "unknown", "result": "bypass", "route": "none"}
    # Reported once the relayed body has ended, just after the client read it.
    samples = scrape_until(proxy, lambda got: value(got, "llmproxy_requests_total", **labels) == 1)
    assert value(samples, "llmproxy_requests_total", **labels) == 1
    assert value(samples, "llmproxy_upstream_responses_total", upstream="default", status="200") == 1
