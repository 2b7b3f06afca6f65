"""Traffic statistics over a window: which resolution to read, and the figures made from what was read (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from llmproxy.telemetry.series import Resolution, SeriesPoints
from llmproxy.telemetry.timerange import StatsWindow

# The per-result `requests` series, by the field of Figures they count into.
_RESULT_FIELDS = {"hit_l1": "hits_l1", "hit_l2": "hits_l2", "miss": "misses", "bypass": "bypasses", "error": "errors"}


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """What to read: [from_ms, to_ms) in buckets of bucket_ms, from the series at resolution."""

    from_ms: int  # aligned down to a whole bucket, as TS.MRANGE aligns its buckets to the epoch
    to_ms: int
    bucket_ms: int
    resolution: Resolution

    def bucket_starts(self) -> range:
        """The start of every bucket in the window, including empty ones."""
        return range(self.from_ms, self.to_ms, self.bucket_ms)


@dataclass(frozen=True, slots=True)
class Figures:
    """Traffic in one bucket, or in the whole window."""

    requests: int = 0
    hits_l1: int = 0
    hits_l2: int = 0
    misses: int = 0
    bypasses: int = 0
    errors: int = 0
    latency_ms_sum: float = 0.0
    tokens_saved: int = 0
    cost_saved_usd: float = 0.0

    @property
    def hit_rate(self) -> float | None:
        """Hits over cache lookups (hits and misses); None when there was no lookup."""
        hits = self.hits_l1 + self.hits_l2
        lookups = hits + self.misses
        return hits / lookups if lookups else None

    @property
    def avg_latency_ms(self) -> float | None:
        """Mean request latency; None when there was no request."""
        return self.latency_ms_sum / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class ModelFigures:
    """Traffic of one model over the window."""

    requests: int = 0
    hits: int = 0
    tokens_saved: int = 0
    cost_saved_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Stats:
    """The answer to a stats query."""

    plan: QueryPlan
    totals: Figures
    buckets: tuple[tuple[int, Figures], ...]  # (start in ms, figures), every bucket of the window
    by_model: Mapping[str, ModelFigures]


def plan_query(window: StatsWindow, levels: Sequence[Resolution], now_ms: int) -> QueryPlan:
    """Read the coarsest resolution that still holds `from` and whose step divides the bucket.

    Buckets are aligned to the epoch like the compactions, so any such resolution gives the same sums; the
    coarsest scans the fewest samples. When none divides the bucket, the finest that holds `from` is read and
    the bucket grows to a multiple of its step; when none holds `from`, the coarsest (its data starts later).
    """
    holding = [level for level in levels if now_ms - level.retention_ms <= window.from_ms]
    dividing = [level for level in holding if window.bucket_ms % level.step_ms == 0]
    resolution = dividing[-1] if dividing else holding[0] if holding else levels[-1]
    bucket_ms = math.ceil(window.bucket_ms / resolution.step_ms) * resolution.step_ms
    return QueryPlan(window.from_ms - window.from_ms % bucket_ms, window.to_ms, bucket_ms, resolution)


def summarize(plan: QueryPlan, rows: Iterable[SeriesPoints]) -> Stats:
    """Figures per bucket, in total and per model, from the series a query read."""
    per_bucket: dict[int, dict[str, float]] = {start: {} for start in plan.bucket_starts()}
    per_model: dict[str, dict[str, float]] = {}
    for row in rows:
        for timestamp_ms, value in row.points:
            start = timestamp_ms - (timestamp_ms - plan.from_ms) % plan.bucket_ms
            if start not in per_bucket:
                continue  # outside the window (a compaction bucket straddling an edge)
            for field in _fields(row):
                _add(per_bucket[start], field, value)
            if row.series.group == "model":
                _add(per_model.setdefault(row.series.name, {}), row.series.metric, value)
    buckets = tuple((start, _figures(counts)) for start, counts in per_bucket.items())
    totals: dict[str, float] = {}
    for counts in per_bucket.values():
        for field, value in counts.items():
            _add(totals, field, value)
    by_model = {model: _model_figures(counts) for model, counts in sorted(per_model.items())}
    return Stats(plan, _figures(totals), buckets, by_model)


def _fields(row: SeriesPoints) -> tuple[str, ...]:
    """The Figures fields a point of this series adds to."""
    series = row.series
    if series.group == "result":
        if series.metric == "requests":
            field = _RESULT_FIELDS.get(series.name)
            return ("requests", field) if field else ("requests",)
        return ("latency_ms_sum",) if series.metric == "latency_ms_sum" else ()
    # Totals of requests and hits come from the result series; the model series add what only they know.
    return (series.metric,) if series.metric in ("tokens_saved", "cost_saved_usd") else ()


def _add(counts: dict[str, float], field: str, value: float) -> None:
    counts[field] = counts.get(field, 0.0) + value


def _figures(counts: Mapping[str, float]) -> Figures:
    def whole(field: str) -> int:
        return round(counts.get(field, 0.0))

    return Figures(
        requests=whole("requests"),
        hits_l1=whole("hits_l1"),
        hits_l2=whole("hits_l2"),
        misses=whole("misses"),
        bypasses=whole("bypasses"),
        errors=whole("errors"),
        latency_ms_sum=counts.get("latency_ms_sum", 0.0),
        tokens_saved=whole("tokens_saved"),
        cost_saved_usd=counts.get("cost_saved_usd", 0.0),
    )


def _model_figures(counts: Mapping[str, float]) -> ModelFigures:
    return ModelFigures(
        requests=round(counts.get("requests", 0.0)),
        hits=round(counts.get("hits", 0.0)),
        tokens_saved=round(counts.get("tokens_saved", 0.0)),
        cost_saved_usd=counts.get("cost_saved_usd", 0.0),
    )
