"""GET /admin/stats over real HTTP: traffic written to RedisTimeSeries comes back as figures per bucket.

Samples are written with the history writer itself, into the Redis and key prefix of the proxy under test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from llmproxy.settings import TimeSeriesSettings
from llmproxy.telemetry.history import HistoryWriter
from llmproxy.telemetry.prometheus import ProxyMetrics
from llmproxy.telemetry.sample import Sample
from llmproxy.telemetry.timeseries import HistoryStore
from tests.support.clients import openai_sdk
from tests.support.redis_servers import plain_redis
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.anyio

ADMIN_TOKEN = "stats-admin-token"
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
NO_SEMANTIC = {"enabled": False}  # these proxies need no embedding model


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def stats_proxy(start_proxy: Callable[..., AbstractContextManager[str]], key_prefix: str) -> Iterator[str]:
    with start_proxy(admin={"token": ADMIN_TOKEN}, redis={"key_prefix": key_prefix}, semantic=NO_SEMANTIC) as url:
        yield url


def get_stats(proxy: str, params: dict[str, str] | None = None, headers: dict[str, str] = AUTH) -> httpx.Response:
    return httpx.get(proxy + "/admin/stats", params=params, headers=headers, timeout=10)


def assert_error(response: httpx.Response, status: int, param: str | None = None, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code


async def write_traffic(redis: Redis, key_prefix: str, minute_ms: int) -> None:
    """Five requests in two minutes: two L1 hits and a miss, then an L2 hit and an error."""
    writer = HistoryWriter(HistoryStore(redis, key_prefix, TimeSeriesSettings()), ProxyMetrics(), TimeSeriesSettings())
    writer.offer(Sample(minute_ms + 1_200, "hit_l1", "gpt-4o", 2.0, 30, 0.001))
    writer.offer(Sample(minute_ms + 1_700, "hit_l1", "gpt-4o", 4.0, 30, 0.001))
    writer.offer(Sample(minute_ms + 1_500, "miss", "gpt-4o", 294.0, 0, 0.0))
    writer.offer(Sample(minute_ms + 61_000, "hit_l2", "gpt-4o-mini", 20.0, 10, 0.0005))
    writer.offer(Sample(minute_ms + 62_000, "error", "gpt-4o", 80.0, 0, 0.0))
    await writer.flush()


def iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1_000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


async def test_stats_reflect_the_traffic_written(stats_proxy: str, redis: Redis, key_prefix: str) -> None:
    minute_ms = (int(time.time()) // 60 - 10) * 60_000
    await write_traffic(redis, key_prefix, minute_ms)
    response = get_stats(stats_proxy, {"from": str(minute_ms // 1_000), "to": str(minute_ms // 1_000 + 180)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["resolution"], body["bucket_s"]) == (iso(minute_ms), "raw", 5)
    totals = body["totals"]
    assert {name: totals[name] for name in ("requests", "hits_l1", "hits_l2", "misses", "bypasses", "errors")} == {
        "requests": 5,
        "hits_l1": 2,
        "hits_l2": 1,
        "misses": 1,
        "bypasses": 0,
        "errors": 1,
    }
    assert totals["hit_rate"] == 0.75 and totals["avg_latency_ms"] == 80.0
    assert totals["tokens_saved"] == 70 and totals["cost_saved_usd"] == pytest.approx(0.0025)
    assert body["by_model"] == {
        "gpt-4o": {"requests": 4, "hits": 2, "tokens_saved": 60, "cost_saved_usd": pytest.approx(0.002)},
        "gpt-4o-mini": {"requests": 1, "hits": 1, "tokens_saved": 10, "cost_saved_usd": 0.0005},
    }


async def test_stats_per_minute_bucket(stats_proxy: str, redis: Redis, key_prefix: str) -> None:
    minute_ms = (int(time.time()) // 60 - 10) * 60_000
    await write_traffic(redis, key_prefix, minute_ms)
    start = datetime.fromtimestamp(minute_ms / 1_000, tz=UTC).isoformat()
    body = get_stats(stats_proxy, {"from": start, "to": iso(minute_ms + 180_000), "bucket": "1m"}).json()
    assert (body["bucket_s"], body["resolution"]) == (60, "1m")  # read from the 1-minute compaction
    assert [bucket["start_ms"] for bucket in body["buckets"]] == [minute_ms, minute_ms + 60_000, minute_ms + 120_000]
    first, second, empty = body["buckets"]
    assert first["start"] == iso(minute_ms)
    assert (first["requests"], first["hit_rate"], first["avg_latency_ms"]) == (3, 2 / 3, 100.0)
    assert (second["requests"], second["hits_l2"], second["errors"], second["hit_rate"]) == (2, 1, 1, 1.0)
    assert (empty["requests"], empty["hit_rate"], empty["avg_latency_ms"], empty["tokens_saved"]) == (0, None, None, 0)


async def test_default_window_is_the_last_hour(stats_proxy: str, redis: Redis, key_prefix: str) -> None:
    minute_ms = (int(time.time()) // 60 - 10) * 60_000
    await write_traffic(redis, key_prefix, minute_ms)
    body = get_stats(stats_proxy).json()
    assert (body["bucket_s"], body["resolution"], len(body["buckets"])) in {(30, "raw", 120), (30, "raw", 121)}
    assert body["totals"]["requests"] == 5


def test_nothing_written_is_an_empty_answer(stats_proxy: str) -> None:
    body = get_stats(stats_proxy, {"from": "-10m", "bucket": "5m"}).json()
    assert body["totals"]["requests"] == 0 and body["totals"]["hit_rate"] is None
    assert body["by_model"] == {}
    assert all(bucket["requests"] == 0 for bucket in body["buckets"])


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-13-40"}, "to"),
        ({"bucket": "0"}, "bucket"),
        ({"bucket": "5 minutes"}, "bucket"),
        ({"from": "-1h", "to": "-2h"}, "from"),
        ({"from": "-30d", "bucket": "1s"}, "bucket"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(stats_proxy: str, params: dict[str, str], param: str) -> None:
    assert_error(get_stats(stats_proxy, params), 400, param, "invalid_time_range")


def test_stats_need_the_admin_token(stats_proxy: str) -> None:
    assert_error(get_stats(stats_proxy, headers={}), 401, code="invalid_api_key")
    assert_error(get_stats(stats_proxy, headers={"authorization": "Bearer wrong"}), 401, code="invalid_api_key")


def test_stats_are_forbidden_when_no_admin_token_is_configured(proxy_url: str) -> None:
    assert_error(get_stats(proxy_url), 403)


def test_stats_are_unavailable_when_history_is_disabled(
    start_proxy: Callable[..., AbstractContextManager[str]],
) -> None:
    with start_proxy(admin={"token": ADMIN_TOKEN}, semantic=NO_SEMANTIC, timeseries={"enabled": False}) as url:
        assert_error(get_stats(url), 503, code="history_unavailable")


def test_a_redis_without_timeseries_turns_history_off_and_the_proxy_still_serves(
    start_proxy: Callable[..., AbstractContextManager[str]], tmp_path: Path, api_key: str, upstream: FakeUpstream
) -> None:
    with (
        plain_redis(tmp_path) as redis_url,
        start_proxy(redis_url=redis_url, admin={"token": ADMIN_TOKEN}, semantic=NO_SEMANTIC) as url,
    ):
        assert_error(get_stats(url), 503, code="history_unavailable")
        with openai_sdk(url, api_key, upstream) as sdk:
            raw = sdk.chat.completions.with_raw_response.create(
                model="fake-model", messages=[{"role": "user", "content": "Is history needed to answer?"}]
            )
        assert raw.http_response.status_code == 200


def test_real_traffic_through_the_proxy_shows_up_in_the_stats(
    start_proxy: Callable[..., AbstractContextManager[str]], key_prefix: str, api_key: str, upstream: FakeUpstream
) -> None:
    sections: dict[str, Any] = {
        "admin": {"token": ADMIN_TOKEN},
        "redis": {"key_prefix": key_prefix},
        "timeseries": {"flush_interval_s": 0.05},
    }
    with start_proxy(**sections) as proxy, openai_sdk(proxy, api_key, upstream) as sdk:
        question = [{"role": "user", "content": "How do I reverse a list in Python?"}]
        paraphrase = [{"role": "user", "content": "What is the way to reverse a Python list?"}]
        first = sdk.chat.completions.create(model="gpt-4o", messages=question)  # type: ignore[arg-type]
        sdk.chat.completions.create(model="gpt-4o", messages=question)  # type: ignore[arg-type]
        sdk.chat.completions.create(model="gpt-4o", messages=paraphrase)  # type: ignore[arg-type]
        totals: dict[str, Any] = {}
        deadline = time.monotonic() + 10
        while totals.get("requests") != 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the writer flushes in the background: poll, never sleep a guess
            totals = get_stats(proxy, {"from": "-5m"}).json()["totals"]
    assert first.usage is not None
    tokens = 2 * (first.usage.prompt_tokens + first.usage.completion_tokens)
    assert (totals["requests"], totals["hits_l1"], totals["hits_l2"], totals["misses"]) == (3, 1, 1, 1)
    assert totals["hit_rate"] == pytest.approx(2 / 3)
    assert totals["tokens_saved"] == tokens
    cost = 2 * (first.usage.prompt_tokens * 2.50 + first.usage.completion_tokens * 10.00) / 1_000_000
    assert totals["cost_saved_usd"] == pytest.approx(cost)
