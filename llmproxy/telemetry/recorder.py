"""Telemetry: turns each finished RequestTrace into Prometheus observations and a history sample."""

from __future__ import annotations

import time
from collections.abc import Callable

from llmproxy.telemetry.labels import BoundedLabels
from llmproxy.telemetry.pricing import PriceList
from llmproxy.telemetry.prometheus import ProxyMetrics
from llmproxy.telemetry.sample import Sample
from llmproxy.trace import RequestTrace

HistorySink = Callable[[Sample], None]  # must not block: the request path calls it


class Telemetry:
    """Reports requests; the only object the request path talks to about metrics."""

    def __init__(
        self,
        metrics: ProxyMetrics,
        prices: PriceList,
        models: BoundedLabels,
        history: HistorySink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self._prices = prices
        self._models = models
        self._history = history
        self._clock = clock

    def finish(self, trace: RequestTrace) -> None:
        """Record a request that has ended (last byte sent, or the client left)."""
        total_s = trace.duration()
        if trace.status >= 400:
            trace.result = "error"
        model = self._models(trace.model)
        usage = trace.cached_usage
        cost = self._prices.cost_usd(trace.model, usage) if usage is not None else 0.0
        self.metrics.observe(trace, model, total_s, cost)
        if self._history is not None:
            tokens = usage.prompt_tokens + usage.completion_tokens if usage is not None else 0
            self._history(Sample(int(self._clock() * 1000), trace.result, model, total_s * 1000, tokens, cost))
