"""The traffic-history series: their names, labels and resolutions, and samples folded into points (pure).

Per cache result: `requests` and `latency_ms_sum` (an average is sum / count in any bucket). Per model:
`requests`, `hits`, `tokens_saved` and `cost_saved_usd`. Each raw (1-second) series has a 1-minute and a
1-hour compaction (sum) next to it:

    {prefix}:ts:result:{result}:{metric}        resolution=raw
    {prefix}:ts:result:{result}:{metric}:1m     resolution=1m
    {prefix}:ts:model:{model}:{metric}:1h       resolution=1h

On a Redis Cluster `{prefix}:ts` is a hash tag (`{llmproxy:ts}:result:...`): every series lives in one slot, so a
compaction rule's two keys share it and one TS.MRANGE on that slot's shard reads the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import unquote

from llmproxy.settings import TimeSeriesSettings
from llmproxy.store.hash_tags import hash_tag
from llmproxy.telemetry.sample import Sample
from llmproxy.trace import Result

Group = Literal["result", "model"]
RESULTS: tuple[Result, ...] = get_args(Result)
HITS: frozenset[Result] = frozenset({"hit_l1", "hit_l2"})
RESULT_METRICS = ("requests", "latency_ms_sum")
MODEL_METRICS = ("requests", "hits", "tokens_saved", "cost_saved_usd")
AGGREGATION = "sum"
RAW = "raw"
# RedisTimeSeries refuses these in a label value; a model name may contain them, so they are %-escaped.
_LABEL_ESCAPES = {"%": "%25", ",": "%2C", "(": "%28", ")": "%29"}


@dataclass(frozen=True, slots=True)
class Resolution:
    """One level of the history: raw 1-second samples, or a compaction of them."""

    name: str
    step_ms: int
    retention_ms: int


def history_root(prefix: str, hash_tags: bool) -> str:
    """What every history key starts with: `{prefix}:ts`, a hash tag on a cluster (store/hash_tags.py)."""
    return hash_tag(f"{prefix}:ts") if hash_tags else f"{prefix}:ts"


@dataclass(frozen=True, slots=True)
class SeriesId:
    """One history series, independent of its resolution."""

    group: Group
    name: str  # the result (hit_l1, miss, ...) or the model
    metric: str

    def key(self, prefix: str, resolution: Resolution, hash_tags: bool = False) -> str:
        """The Redis key of this series at resolution (`hash_tags`: on a cluster)."""
        raw = f"{history_root(prefix, hash_tags)}:{self.group}:{self.name}:{self.metric}"
        return raw if resolution.name == RAW else f"{raw}:{resolution.name}"

    def labels(self, prefix: str, resolution: Resolution) -> dict[str, str]:
        """The labels TS.MRANGE filters on and reads back."""
        return {
            "llmproxy": prefix,
            "group": self.group,
            self.group: escape_label(self.name),
            "metric": self.metric,
            "resolution": resolution.name,
        }

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> SeriesId | None:
        """The series a TS.MRANGE reply row belongs to; None for a row that is not one of ours."""
        group = labels.get("group")
        name = labels.get(group or "")
        metric = labels.get("metric")
        if name is None or metric is None:
            return None
        if group == "result":
            return cls("result", unquote(name), metric)
        if group == "model":
            return cls("model", unquote(name), metric)
        return None


def resolutions(settings: TimeSeriesSettings) -> tuple[Resolution, ...]:
    """The resolutions kept, finest first."""
    return (
        Resolution(RAW, 1_000, settings.raw_retention_s * 1_000),
        Resolution("1m", 60_000, settings.minute_retention_s * 1_000),
        Resolution("1h", 3_600_000, settings.hour_retention_s * 1_000),
    )


def result_series() -> tuple[SeriesId, ...]:
    """The fixed per-result series, created at startup."""
    return tuple(SeriesId("result", result, metric) for result in RESULTS for metric in RESULT_METRICS)


def model_series(model: str) -> tuple[SeriesId, ...]:
    """The series of one model, created the first time the model is seen."""
    return tuple(SeriesId("model", model, metric) for metric in MODEL_METRICS)


def escape_label(value: str) -> str:
    """value in a form RedisTimeSeries accepts as a label value (undone by urllib's unquote)."""
    return "".join(_LABEL_ESCAPES.get(char, char) for char in value)


Points = dict[tuple[SeriesId, int], float]  # (series, second in ms) → value to add


def aggregate(samples: Iterable[Sample]) -> Points:
    """Sum samples into 1-second points; zero values are left out (a missing sample reads as 0)."""
    points: Points = {}

    def add(series: SeriesId, second_ms: int, value: float) -> None:
        if value:
            points[(series, second_ms)] = points.get((series, second_ms), 0.0) + value

    for sample in samples:
        second_ms = sample.timestamp_ms - sample.timestamp_ms % 1_000
        add(SeriesId("result", sample.result, "requests"), second_ms, 1)
        add(SeriesId("result", sample.result, "latency_ms_sum"), second_ms, sample.latency_ms)
        add(SeriesId("model", sample.model, "requests"), second_ms, 1)
        add(SeriesId("model", sample.model, "hits"), second_ms, 1 if sample.result in HITS else 0)
        add(SeriesId("model", sample.model, "tokens_saved"), second_ms, sample.tokens_saved)
        add(SeriesId("model", sample.model, "cost_saved_usd"), second_ms, sample.cost_saved_usd)
    return points


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    """One series as a query read it: (bucket start in ms, value) pairs."""

    series: SeriesId
    points: tuple[tuple[int, float], ...]
