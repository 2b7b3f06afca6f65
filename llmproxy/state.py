"""AppState: the long-lived components, built by the lifespan; the only objects requests share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from llmproxy.pipeline import Pipeline
from llmproxy.routing import Router
from llmproxy.settings import Settings
from llmproxy.telemetry.history import History
from llmproxy.telemetry.recorder import Telemetry
from llmproxy.upstream.client import UpstreamClient


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    redis: Redis
    upstream: UpstreamClient
    pipeline: Pipeline
    clock: Callable[[], float]
    router: Router | None
    telemetry: Telemetry
    history: History | None  # None: timeseries disabled, or the Redis has no TimeSeries
