"""AppState: the long-lived components, built by the lifespan; the only objects requests share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from llmproxy.cache.audit import AuditLog
from llmproxy.cache.catalog import Catalog
from llmproxy.cache.entry_view import EntryReader
from llmproxy.cache.invalidation import Invalidator
from llmproxy.pipeline import Pipeline
from llmproxy.redis_health import RedisHealth
from llmproxy.routing import Router
from llmproxy.settings import Settings
from llmproxy.telemetry.history import History
from llmproxy.telemetry.recorder import Telemetry
from llmproxy.upstream.client import UpstreamClient


@dataclass(frozen=True, slots=True)
class AdminTools:
    """The admin API's view of the cache: listing, reading, invalidating, and the audit log of changes."""

    catalog: Catalog
    entries: EntryReader
    invalidator: Invalidator
    audit: AuditLog


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
    admin: AdminTools
    redis_health: RedisHealth  # the request path's breaker: open means Redis is being skipped
