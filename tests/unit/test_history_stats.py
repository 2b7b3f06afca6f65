"""History series naming, samples folded into points, resolution choice and the stats figures (pure)."""

from __future__ import annotations

import pytest

from llmproxy.settings import TimeSeriesSettings
from llmproxy.telemetry.sample import Sample
from llmproxy.telemetry.series import SeriesId, SeriesPoints, aggregate, resolutions
from llmproxy.telemetry.stats import QueryPlan, plan_query, summarize
from llmproxy.telemetry.timerange import StatsWindow

LEVELS = resolutions(TimeSeriesSettings())  # raw 2 d, 1m 30 d, 1h 400 d
RAW, MINUTE, HOUR = LEVELS
NOW_MS = 1_718_000_000_000
DAY_MS = 86_400_000


def test_keys_and_labels_of_a_series_per_resolution() -> None:
    series = SeriesId("model", "org/model (v2), beta", "hits")
    assert series.key("llmproxy", RAW) == "llmproxy:ts:model:org/model (v2), beta:hits"
    assert series.key("llmproxy", HOUR) == "llmproxy:ts:model:org/model (v2), beta:hits:1h"
    labels = series.labels("llmproxy", MINUTE)
    assert labels == {
        "llmproxy": "llmproxy",
        "group": "model",
        "model": "org/model %28v2%29%2C beta",  # TS refuses , ( ) in label values
        "metric": "hits",
        "resolution": "1m",
    }
    assert SeriesId.from_labels(labels) == series


@pytest.mark.parametrize("name", ["gpt-4o", "50%-off", "a,b", "(x)", "%2C"])
def test_escaped_label_values_read_back_unchanged(name: str) -> None:
    labels = SeriesId("model", name, "requests").labels("p", RAW)
    assert "," not in labels["model"] and "(" not in labels["model"]
    assert SeriesId.from_labels(labels) == SeriesId("model", name, "requests")


def test_rows_that_are_not_history_series_are_ignored() -> None:
    assert SeriesId.from_labels({"llmproxy": "p", "metric": "requests"}) is None
    assert SeriesId.from_labels({"group": "tenant", "tenant": "x", "metric": "requests"}) is None


def test_samples_of_one_second_fold_into_one_point_per_series() -> None:
    samples = [
        Sample(10_100, "hit_l1", "gpt-4o", 2.0, 30, 0.001),
        Sample(10_900, "hit_l1", "gpt-4o", 4.0, 10, 0.002),
        Sample(10_500, "miss", "gpt-4o", 300.0, 0, 0.0),
        Sample(11_000, "hit_l2", "gpt-4o-mini", 20.0, 5, 0.0),
    ]
    points = aggregate(samples)
    assert points[(SeriesId("result", "hit_l1", "requests"), 10_000)] == 2
    assert points[(SeriesId("result", "hit_l1", "latency_ms_sum"), 10_000)] == 6.0
    assert points[(SeriesId("model", "gpt-4o", "requests"), 10_000)] == 3
    assert points[(SeriesId("model", "gpt-4o", "hits"), 10_000)] == 2
    assert points[(SeriesId("model", "gpt-4o", "tokens_saved"), 10_000)] == 40
    assert points[(SeriesId("model", "gpt-4o", "cost_saved_usd"), 10_000)] == pytest.approx(0.003)
    assert points[(SeriesId("model", "gpt-4o-mini", "hits"), 11_000)] == 1
    # A zero adds nothing: no point is written for it.
    assert (SeriesId("model", "gpt-4o-mini", "cost_saved_usd"), 11_000) not in points


def test_recent_windows_in_seconds_read_raw_samples() -> None:
    plan = plan_query(StatsWindow(NOW_MS - 3_600_000 + 7, NOW_MS, 30_000), LEVELS, NOW_MS)
    assert (plan.resolution, plan.bucket_ms, plan.from_ms % 30_000) == (RAW, 30_000, 0)


@pytest.mark.parametrize(
    ("bucket_ms", "resolution"), [(1_000, RAW), (90_000, RAW), (60_000, MINUTE), (900_000, MINUTE), (7_200_000, HOUR)]
)
def test_the_coarsest_resolution_dividing_the_bucket_is_read(bucket_ms: int, resolution: object) -> None:
    plan = plan_query(StatsWindow(NOW_MS - DAY_MS, NOW_MS, bucket_ms), LEVELS, NOW_MS)
    assert (plan.resolution, plan.bucket_ms) == (resolution, bucket_ms)


def test_windows_older_than_raw_retention_read_a_compaction() -> None:
    plan = plan_query(StatsWindow(NOW_MS - 7 * DAY_MS, NOW_MS, 300_000), LEVELS, NOW_MS)
    assert plan.resolution == MINUTE


def test_a_bucket_the_resolution_cannot_divide_grows_to_a_multiple_of_its_step() -> None:
    plan = plan_query(StatsWindow(NOW_MS - 60 * DAY_MS, NOW_MS, 5_400_000), LEVELS, NOW_MS)
    assert (plan.resolution, plan.bucket_ms) == (HOUR, 7_200_000)


def test_windows_beyond_every_retention_read_the_coarsest() -> None:
    assert plan_query(StatsWindow(0, NOW_MS, 30 * DAY_MS), LEVELS, NOW_MS).resolution == HOUR


def test_summary_has_every_bucket_totals_and_models() -> None:
    plan = QueryPlan(0, 180_000, 60_000, RAW)
    rows = [
        SeriesPoints(SeriesId("result", "hit_l1", "requests"), ((0, 2.0), (60_000, 1.0))),
        SeriesPoints(SeriesId("result", "hit_l2", "requests"), ((0, 1.0),)),
        SeriesPoints(SeriesId("result", "miss", "requests"), ((0, 1.0), (60_000, 1.0))),
        SeriesPoints(SeriesId("result", "error", "requests"), ((60_000, 1.0),)),
        SeriesPoints(SeriesId("result", "hit_l1", "latency_ms_sum"), ((0, 10.0), (60_000, 5.0))),
        SeriesPoints(SeriesId("result", "miss", "latency_ms_sum"), ((0, 390.0), (60_000, 200.0))),
        SeriesPoints(SeriesId("result", "error", "latency_ms_sum"), ((60_000, 5.0),)),
        SeriesPoints(SeriesId("model", "m", "requests"), ((0, 4.0), (60_000, 3.0))),
        SeriesPoints(SeriesId("model", "m", "hits"), ((0, 3.0), (60_000, 1.0))),
        SeriesPoints(SeriesId("model", "m", "tokens_saved"), ((0, 90.0), (60_000, 30.0))),
        SeriesPoints(SeriesId("model", "m", "cost_saved_usd"), ((0, 0.25), (60_000, 0.5))),
    ]
    stats = summarize(plan, rows)
    assert [start for start, _ in stats.buckets] == [0, 60_000, 120_000]
    first, second, empty = (figures for _, figures in stats.buckets)
    assert (first.requests, first.hits_l1, first.hits_l2, first.misses) == (4, 2, 1, 1)
    assert first.hit_rate == 0.75 and first.avg_latency_ms == 100.0
    assert (second.requests, second.errors, second.hit_rate) == (3, 1, 0.5)
    assert (empty.requests, empty.hit_rate, empty.avg_latency_ms) == (0, None, None)
    totals = stats.totals
    assert (totals.requests, totals.tokens_saved, totals.cost_saved_usd) == (7, 120, 0.75)
    assert totals.hit_rate == 4 / 6 and totals.avg_latency_ms == 610 / 7
    model = stats.by_model["m"]
    assert (model.requests, model.hits, model.tokens_saved, model.cost_saved_usd) == (7, 4, 120, 0.75)


def test_no_lookup_means_no_hit_rate() -> None:
    plan = QueryPlan(0, 60_000, 60_000, RAW)
    stats = summarize(plan, [SeriesPoints(SeriesId("result", "bypass", "requests"), ((0, 3.0),))])
    assert (stats.totals.requests, stats.totals.bypasses, stats.totals.hit_rate) == (3, 3, None)
