"""HistoryStore: the traffic history in RedisTimeSeries.

Series and their compaction rules are created idempotently (any number of replicas may start at once), points
are added in one pipeline per batch, and a window is read back with one TS.MRANGE. Every raw series has
DUPLICATE_POLICY SUM, so replicas writing the same second add up instead of overwriting each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from llmproxy.settings import TimeSeriesSettings
from llmproxy.store.errors import CacheUnavailableError, causes, redis_call
from llmproxy.store.redis_client import cluster_client, is_cluster
from llmproxy.telemetry.series import (
    AGGREGATION,
    RAW,
    Points,
    Resolution,
    SeriesId,
    SeriesPoints,
    history_root,
    resolutions,
    result_series,
)
from llmproxy.telemetry.stats import QueryPlan

# Replies to TS.CREATE / TS.CREATERULE meaning another replica (or an earlier start) already did it.
_ALREADY_DONE = ("key already exists", "already has a src rule")
# Keys can vanish without Redis going away (an operator deleting them): recreate them, rules included, this often.
REENSURE_INTERVAL_S = 600.0


class HistoryError(Exception):
    """Redis could not create, write or read the history."""


class TimeSeriesUnsupportedError(HistoryError):
    """The Redis has no TimeSeries (TS.* commands are unknown): Redis 8 or Redis Stack is needed."""


class HistoryStore:
    """The history series of one key prefix; remembers which series it has created."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        settings: TimeSeriesSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._hash_tags = is_cluster(redis)  # every series in one slot (series.py)
        self.levels: tuple[Resolution, ...] = resolutions(settings)  # finest first
        self._clock = clock
        self._known: set[SeriesId] = set()  # created (with rules) since _ensured_at
        self._ensured_at = clock()

    async def ensure(self) -> None:
        """Create the per-result series and their compaction rules; existing ones are left as they are.

        Raises:
            TimeSeriesUnsupportedError: the Redis has no TimeSeries.
            HistoryError: Redis failed.
        """
        await self._ensure(result_series())

    async def write(self, points: Points) -> None:
        """Add points to the raw series, creating any series seen for the first time.

        Raises:
            TimeSeriesUnsupportedError: the Redis has no TimeSeries.
            HistoryError: Redis failed; part of the points may have been written.
        """
        if not points:
            return
        if self._clock() - self._ensured_at > REENSURE_INTERVAL_S:
            self._known.clear()
            self._ensured_at = self._clock()
        await self._ensure({series for series, _ in points})
        raw = self.levels[0]
        try:
            with redis_call("history write", quiet=True):  # the writer logs a streak of failures once
                async with self._redis.pipeline(transaction=False) as pipe:
                    commands = pipe.ts()
                    for (series, second_ms), value in points.items():
                        # Creation options apply only if the key vanished. No ON_DUPLICATE: redis-py puts it after
                        # LABELS, where it becomes a label; the key's DUPLICATE_POLICY SUM does the same job.
                        labels = series.labels(self._prefix, raw)
                        key = series.key(self._prefix, raw, self._hash_tags)
                        commands.add(key, second_ms, value, raw.retention_ms, duplicate_policy="sum", labels=labels)
                    replies = await pipe.execute(raise_on_error=False)
        except CacheUnavailableError as exc:
            self._forget()
            raise _history_error("writing the history", exc) from exc
        self._check("writing the history", replies, ())

    async def query(self, plan: QueryPlan) -> list[SeriesPoints]:
        """Every series of this prefix at the plan's resolution, summed into the plan's buckets.

        Raises:
            TimeSeriesUnsupportedError: the Redis has no TimeSeries.
            HistoryError: Redis failed.
        """
        filters = [f"llmproxy={self._prefix}", f"resolution={plan.resolution.name}"]
        try:
            with redis_call("history read"):
                reply = await self._mrange(plan, filters)
        except CacheUnavailableError as exc:
            raise _history_error("reading the history", exc) from exc
        return list(_rows(reply))

    async def _mrange(self, plan: QueryPlan, filters: list[str]) -> Any:
        latest = plan.resolution.name != RAW  # include the compaction bucket still being filled
        to_ms = plan.to_ms - 1  # TS.MRANGE includes its end; the window does not
        if not self._hash_tags:
            return await self._redis.ts().mrange(
                plan.from_ms,
                to_ms,
                filters,
                aggregation_type=AGGREGATION,
                bucket_size_msec=plan.bucket_ms,
                with_labels=True,
                latest=latest,
            )
        # A cluster client cannot route TS.MRANGE (it names no key): it goes to the shard of the history's slot.
        cluster = cluster_client(self._redis)
        node = cluster.get_node_from_key(history_root(self._prefix, True))
        args: list[str | int] = [plan.from_ms, to_ms, *(["LATEST"] if latest else []), "WITHLABELS"]
        args += ["AGGREGATION", AGGREGATION, plan.bucket_ms, "FILTER", *filters]
        self._redis.ts()  # registers the TS reply parsers on the client
        return await cluster.execute_command("TS.MRANGE", *args, target_nodes=node)

    async def _ensure(self, wanted: Iterable[SeriesId]) -> None:
        missing = [series for series in wanted if series not in self._known]
        if not missing:
            return
        try:
            with redis_call("history series creation", quiet=True):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for series in missing:
                        self._stage_series(pipe, series)
                    replies = await pipe.execute(raise_on_error=False)
        except CacheUnavailableError as exc:
            self._forget()
            raise _history_error("creating the history series", exc) from exc
        self._check("creating the history series", replies, _ALREADY_DONE)
        self._known.update(missing)

    def _stage_series(self, pipe: Pipeline, series: SeriesId) -> None:
        commands = pipe.ts()
        raw_key = series.key(self._prefix, self.levels[0], self._hash_tags)
        for level in self.levels:
            key = series.key(self._prefix, level, self._hash_tags)
            policy = "sum" if level.name == RAW else None
            commands.create(key, level.retention_ms, labels=series.labels(self._prefix, level), duplicate_policy=policy)
            # A changed retention setting reaches series created by an earlier start too.
            commands.alter(key, level.retention_ms, duplicate_policy=policy)
        for level in self.levels[1:]:
            commands.createrule(raw_key, series.key(self._prefix, level, self._hash_tags), AGGREGATION, level.step_ms)

    def _check(self, doing: str, replies: Iterable[object], tolerated: tuple[str, ...]) -> None:
        for reply in replies:
            if isinstance(reply, Exception) and not any(text in str(reply) for text in tolerated):
                self._forget()
                raise _history_error(doing, reply)

    def _forget(self) -> None:
        # After a failure Redis may have lost keys (a restart without persistence): recreate them, rules included.
        self._known.clear()


def _history_error(doing: str, exc: BaseException) -> HistoryError:
    error = next((cause for cause in causes(exc) if not isinstance(cause, CacheUnavailableError)), exc)
    if isinstance(error, ResponseError) and "unknown command" in str(error).lower():
        return TimeSeriesUnsupportedError(f"{doing}: this Redis has no TimeSeries ({error})")
    return HistoryError(f"{doing} failed: {_describe(error)}")


def _describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def _rows(reply: Any) -> Iterator[SeriesPoints]:
    """Our series in a TS.MRANGE reply, in either shape redis-py returns.

    Legacy: [{key: [labels, samples]}, ...]; unified: {key: [labels, metadata, samples]}.
    """
    entries = reply.items() if isinstance(reply, Mapping) else (item for row in reply for item in row.items())
    for _key, body in entries:
        labels = {_text(name): _text(value) for name, value in dict(body[0]).items()}
        series = SeriesId.from_labels(labels)
        if series is not None:
            yield SeriesPoints(series, tuple((int(sample[0]), float(sample[1])) for sample in body[-1]))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
