"""Sample: one finished request as the RedisTimeSeries history records it (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from llmproxy.trace import Result


@dataclass(frozen=True, slots=True)
class Sample:
    timestamp_ms: int  # wall clock, when the request finished
    result: Result
    model: str  # already bounded (BoundedLabels)
    latency_ms: float
    tokens_saved: int  # prompt + completion tokens of an answer served from cache; 0 otherwise
    cost_saved_usd: float
