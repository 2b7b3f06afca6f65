"""Traffic history against a real Redis Stack: series, rules and retention, summed writes, and a writer that
never makes a request wait, even on a paused Redis."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.commands.timeseries.info import TSInfo
from starlette.applications import Starlette

from llmproxy.embeddings.embedder import load_model
from llmproxy.lifespan import STATE_KEY, lifespan_for
from llmproxy.settings import TimeSeriesSettings
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from llmproxy.telemetry.history import HistoryWriter
from llmproxy.telemetry.prometheus import ProxyMetrics
from llmproxy.telemetry.sample import Sample
from llmproxy.telemetry.series import SeriesId, model_series, result_series
from llmproxy.telemetry.stats import plan_query, summarize
from llmproxy.telemetry.timerange import StatsWindow
from llmproxy.telemetry.timeseries import HistoryStore, TimeSeriesUnsupportedError
from tests.conftest import proxy_settings
from tests.support.redis_servers import paused, plain_redis
from tests.support.servers import free_port

pytestmark = pytest.mark.anyio

SETTINGS = TimeSeriesSettings(raw_retention_s=7_200, minute_retention_s=86_400, hour_retention_s=2 * 86_400)
WAIT_TIMEOUT_S = 20.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ts(redis_url: str) -> Iterator[SyncRedis]:
    """A client that decodes replies, for reading TS.INFO and TS.RANGE back."""
    with SyncRedis.from_url(redis_url, decode_responses=True) as client:
        yield client


@pytest.fixture(scope="module")
def spare_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A Redis Stack of this module's own, so pausing it disturbs no other test."""
    with EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path_factory.mktemp("spare-stack"))) as server:
        yield server


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    retention_ms: int
    duplicate_policy: str | None
    labels: dict[str, str]
    rules: dict[str, list[object]]


def ts_info(ts: SyncRedis, key: str) -> SeriesInfo:
    info = ts.ts().info(key)
    assert isinstance(info, TSInfo)
    assert info.retention_msecs is not None
    return SeriesInfo(info.retention_msecs, info.duplicate_policy, dict(info.labels), rules_by_key(info.rules))


def rules_by_key(rules: Any) -> dict[str, list[object]]:
    """Compaction rules by destination key. redis-py up to 8.1 hands back a dict (RESP2) of key → [bucket,
    aggregation, alignment]; 8.2 a list of [key, bucket, aggregation, alignment]."""
    if isinstance(rules, dict):
        return dict(rules)
    text = lambda value: value.decode() if isinstance(value, bytes) else value  # noqa: E731
    return {text(rule[0]): [text(value) for value in rule[1:]] for rule in rules}


def samples_value(metrics: ProxyMetrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value("llmproxy_timeseries_samples_total", {"outcome": outcome})
    return 0.0 if value is None else value


def counted(metrics: ProxyMetrics, outcome: str, expected: float) -> Callable[[], bool]:
    return lambda: samples_value(metrics, outcome) == expected


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll condition; a deadline only guards against a hang, the test never asserts on time."""
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await anyio.sleep(0.01)


def recent_second_ms(seconds_ago: int = 60) -> int:
    return (int(time.time()) - seconds_ago) * 1_000


async def test_ensure_creates_every_series_with_retention_and_rules_and_is_idempotent(
    redis: Redis, ts: SyncRedis, key_prefix: str
) -> None:
    replicas = [HistoryStore(redis, key_prefix, SETTINGS) for _ in range(4)]
    await replicas[0].ensure()
    # Already created, and several replicas starting at once: neither is an error.
    async with anyio.create_task_group() as group:
        for store in replicas:
            group.start_soon(store.ensure)
    raw, minute, hour = replicas[0].levels
    for series in result_series():
        info = ts_info(ts, series.key(key_prefix, raw))
        assert info.retention_ms == 7_200_000 and info.duplicate_policy == "sum"
        assert info.labels == series.labels(key_prefix, raw)
        assert info.rules == {
            series.key(key_prefix, minute): [60_000, "SUM", 0],
            series.key(key_prefix, hour): [3_600_000, "SUM", 0],
        }
        assert ts_info(ts, series.key(key_prefix, minute)).retention_ms == 86_400_000
        hourly = ts_info(ts, series.key(key_prefix, hour))
        assert hourly.retention_ms == 2 * 86_400_000 and hourly.labels["resolution"] == "1h"


async def test_a_changed_retention_reaches_existing_series(redis: Redis, ts: SyncRedis, key_prefix: str) -> None:
    await HistoryStore(redis, key_prefix, SETTINGS).ensure()
    longer = TimeSeriesSettings(raw_retention_s=3 * 86_400)
    store = HistoryStore(redis, key_prefix, longer)
    await store.ensure()
    key = result_series()[0].key(key_prefix, store.levels[0])
    assert ts_info(ts, key).retention_ms == 3 * 86_400_000


async def test_model_series_are_created_with_rules_when_the_model_first_appears(
    redis: Redis, ts: SyncRedis, key_prefix: str
) -> None:
    store = HistoryStore(redis, key_prefix, SETTINGS)
    writer = HistoryWriter(store, ProxyMetrics(), SETTINGS)
    model = "acme/chat (v2), preview"  # characters TS refuses in labels, and a slash
    writer.offer(Sample(recent_second_ms(), "hit_l2", model, 12.5, 40, 0.01))
    await writer.flush()
    raw = store.levels[0]
    for series in model_series(model):
        info = ts_info(ts, series.key(key_prefix, raw))
        assert SeriesId.from_labels(info.labels) == series
        assert len(info.rules) == 2


async def test_samples_of_the_same_second_from_two_writers_add_up(redis: Redis, ts: SyncRedis, key_prefix: str) -> None:
    second_ms = recent_second_ms()
    stores = [HistoryStore(redis, key_prefix, SETTINGS) for _ in range(2)]
    for number, store in enumerate(stores):
        writer = HistoryWriter(store, ProxyMetrics(), SETTINGS)
        writer.offer(Sample(second_ms + 100, "hit_l1", "gpt-4o", 2.0, 30, 0.001))
        writer.offer(Sample(second_ms + 900 - number, "hit_l1", "gpt-4o", 4.0, 10, 0.002))
        await writer.flush()
    raw = stores[0].levels[0]
    requests = SeriesId("result", "hit_l1", "requests").key(key_prefix, raw)
    latency = SeriesId("result", "hit_l1", "latency_ms_sum").key(key_prefix, raw)
    assert ts.ts().range(requests, "-", "+") == [(second_ms, 4.0)]
    assert ts.ts().range(latency, "-", "+") == [(second_ms, 12.0)]
    assert ts.ts().range(requests + ":1m", "-", "+", latest=True) == [(second_ms - second_ms % 60_000, 4.0)]


async def test_a_query_reads_back_what_was_written(redis: Redis, key_prefix: str) -> None:
    store = HistoryStore(redis, key_prefix, SETTINGS)
    metrics = ProxyMetrics()
    writer = HistoryWriter(store, metrics, SETTINGS)
    minute_ms = (int(time.time()) // 60 - 5) * 60_000
    writer.offer(Sample(minute_ms + 1_200, "hit_l1", "gpt-4o", 2.0, 30, 0.001))
    writer.offer(Sample(minute_ms + 1_500, "miss", "gpt-4o", 298.0, 0, 0.0))
    writer.offer(Sample(minute_ms + 61_000, "hit_l2", "gpt-4o-mini", 20.0, 10, 0.0005))
    await writer.flush()
    assert samples_value(metrics, "written") == 3
    now_ms = int(time.time() * 1_000)
    plan = plan_query(StatsWindow(minute_ms, minute_ms + 180_000, 60_000), store.levels, now_ms)
    stats = summarize(plan, await store.query(plan))
    assert [figures.requests for _, figures in stats.buckets] == [2, 1, 0]
    assert (stats.totals.hit_rate, stats.totals.tokens_saved, stats.totals.avg_latency_ms) == (2 / 3, 40, 320 / 3)
    assert set(stats.by_model) == {"gpt-4o", "gpt-4o-mini"}


async def test_offer_never_waits_on_a_paused_redis_and_drops_are_counted(
    spare_stack: EmbeddedRedis, key_prefix: str
) -> None:
    # A request calls offer() synchronously: it cannot await anything, so it cannot wait on Redis.
    assert not inspect.iscoroutinefunction(HistoryWriter.offer)
    settings = TimeSeriesSettings(queue_size=4, flush_interval_s=0.01)
    metrics = ProxyMetrics()
    client = Redis.from_url(spare_stack.url, socket_timeout=60)
    store = HistoryStore(client, key_prefix, settings)
    await store.ensure()
    writer = HistoryWriter(store, metrics, settings, write_timeout_s=60)
    second_ms = recent_second_ms()
    assert spare_stack.pid is not None
    async with anyio.create_task_group() as background:
        background.start_soon(writer.run)
        with paused(spare_stack.pid):
            writer.offer(Sample(second_ms, "miss", "m", 100.0, 0, 0.0))
            writer.offer(Sample(second_ms, "miss", "m", 100.0, 0, 0.0))
            await wait_until(lambda: writer.queued == 0)  # the writer took them and now waits on Redis
            for _ in range(settings.queue_size + 3):
                writer.offer(Sample(second_ms, "hit_l1", "m", 1.0, 5, 0.0))
            assert writer.queued == settings.queue_size
            assert samples_value(metrics, "dropped") == 3
            assert samples_value(metrics, "written") == 0  # the first batch is still stuck
        # Redis answers again: everything that was not dropped gets written.
        await wait_until(counted(metrics, "written", 2 + settings.queue_size))
        background.cancel_scope.cancel()
    assert samples_value(metrics, "failed") == 0
    key = SeriesId("result", "hit_l1", "requests").key(key_prefix, store.levels[0])
    assert await client.ts().range(key, "-", "+") == [(second_ms, float(settings.queue_size))]
    await client.aclose()


async def test_failed_writes_are_counted_logged_once_and_the_writer_keeps_running(
    key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = TimeSeriesSettings(flush_interval_s=0.01)
    metrics = ProxyMetrics()
    nobody = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1, socket_timeout=1)
    writer = HistoryWriter(HistoryStore(nobody, key_prefix, settings), metrics, settings)
    with caplog.at_level(logging.WARNING, logger="llmproxy.telemetry.history"):
        async with anyio.create_task_group() as background:
            background.start_soon(writer.run)
            for batch in range(1, 4):
                writer.offer(Sample(recent_second_ms(), "miss", "m", 1.0, 0, 0.0))
                await wait_until(counted(metrics, "failed", batch))
            background.cancel_scope.cancel()
    assert samples_value(metrics, "written") == 0
    assert len([record for record in caplog.records if "lost" in record.message]) == 1
    await nobody.aclose()


async def test_a_redis_without_timeseries_is_recognised(tmp_path: Path, key_prefix: str) -> None:
    with plain_redis(tmp_path) as url:
        client = Redis.from_url(url, socket_timeout=5)
        with pytest.raises(TimeSeriesUnsupportedError):
            await HistoryStore(client, key_prefix, SETTINGS).ensure()
        await client.aclose()


async def test_the_lifespan_creates_the_series_and_writes_what_is_queued_at_shutdown(
    redis_url: str, ts: SyncRedis, key_prefix: str
) -> None:
    settings = proxy_settings(
        redis_url,
        "http://127.0.0.1:9/v1",  # never called
        redis={"key_prefix": key_prefix},
        semantic={"enabled": False},
        timeseries={"flush_interval_s": 60},  # the writer task never gets to flush: only shutdown does
    )
    second_ms = recent_second_ms()
    async with lifespan_for(settings, load_model)(Starlette()) as state:
        history = state[STATE_KEY].history
        assert history is not None
        key = SeriesId("result", "miss", "requests").key(key_prefix, history.store.levels[0])
        assert len(ts_info(ts, key).rules) == 2  # created at startup
        history.writer.offer(Sample(second_ms, "miss", "m", 5.0, 0, 0.0))
    assert ts.ts().range(key, "-", "+") == [(second_ms, 1.0)]
