"""HistoryWriter: takes history samples off the request path and writes them to RedisTimeSeries in the background.

`offer()` is synchronous, so a request can never wait on it: a bounded queue takes the sample or, when full,
the sample is dropped and counted. `run()`, a task the lifespan owns, drains the queue every flush_interval_s
and writes each batch, folded into 1-second points, in one pipeline; `flush()` writes what is left at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import anyio

from llmproxy.settings import TimeSeriesSettings
from llmproxy.telemetry.prometheus import ProxyMetrics
from llmproxy.telemetry.sample import Sample
from llmproxy.telemetry.series import aggregate
from llmproxy.telemetry.timeseries import HistoryError, HistoryStore

logger = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 5.0  # one batch; also bounds how long shutdown waits for the last one


class HistoryWriter:
    """The bounded queue between finished requests and the history store. Use it from the event loop's thread."""

    def __init__(
        self,
        store: HistoryStore,
        metrics: ProxyMetrics,
        settings: TimeSeriesSettings,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        self._store = store
        self._samples = metrics.timeseries_samples
        self._queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=settings.queue_size)
        self._interval_s = settings.flush_interval_s
        self._write_timeout_s = write_timeout_s
        self._failing = False  # in a streak of failed writes: log its start and its end only

    @property
    def queued(self) -> int:
        """Samples waiting to be written."""
        return self._queue.qsize()

    def offer(self, sample: Sample) -> None:
        """Queue sample for writing; when the queue is full, drop it and count the drop."""
        try:
            self._queue.put_nowait(sample)
        except asyncio.QueueFull:
            self._samples.labels("dropped").inc()

    async def run(self) -> None:
        """Write the queued samples every flush_interval_s until cancelled."""
        while True:
            await anyio.sleep(self._interval_s)
            await self._write(self._take())

    async def flush(self) -> None:
        """Write what is still queued (at shutdown, after run() was cancelled)."""
        await self._write(self._take())

    def _take(self) -> list[Sample]:
        # One queue's worth at most: samples that arrive meanwhile wait for the next round.
        return [self._queue.get_nowait() for _ in range(self._queue.qsize())]

    async def _write(self, batch: list[Sample]) -> None:
        if not batch:
            return
        error: Exception | None = None
        # Shielded: a batch taken off the queue is still written when shutdown cancels run() meanwhile.
        with anyio.move_on_after(self._write_timeout_s, shield=True) as scope:
            try:
                await self._store.write(aggregate(batch))
            except Exception as exc:  # Redis failing (HistoryError), or a bug: neither may end the task
                error = exc
        if scope.cancelled_caught:
            error = HistoryError(f"writing the history took longer than {self._write_timeout_s} s")
        self._count(len(batch), error)

    def _count(self, samples: int, error: Exception | None) -> None:
        if error is None:
            self._samples.labels("written").inc(samples)
            if self._failing:
                logger.info("traffic history is written again")
            self._failing = False
            return
        self._samples.labels("failed").inc(samples)
        if not self._failing:
            unexpected = not isinstance(error, HistoryError)
            logger.warning("traffic history samples are lost until they can be written: %s", error, exc_info=unexpected)
        self._failing = True


@dataclass(frozen=True, slots=True)
class History:
    """The traffic history of an app: the store /admin/stats reads, the writer finished requests feed."""

    store: HistoryStore
    writer: HistoryWriter
