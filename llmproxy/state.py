"""AppState: the long-lived components, built by the lifespan; the only objects requests share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llmproxy.cache.catalog.audit import AuditLog
from llmproxy.cache.catalog.entry_view import EntryReader
from llmproxy.cache.catalog.index import Catalog
from llmproxy.cache.catalog.invalidation import Invalidator
from llmproxy.cache.shadow.ledger import AuditLedger
from llmproxy.proxy.forwarder import Upstreams
from llmproxy.proxy.pipeline import Pipeline
from llmproxy.routing import Router
from llmproxy.settings import Settings
from llmproxy.store.health import RedisHealth
from llmproxy.store.redis_client import RedisClient
from llmproxy.telemetry.history import History
from llmproxy.telemetry.recorder import Telemetry

STATE_KEY = "app_state"  # where the lifespan puts AppState in the request state


@dataclass(frozen=True, slots=True)
class AdminTools:
    """The admin API's view of the cache: listing, reading, invalidating, and the audit log of changes."""

    catalog: Catalog
    entries: EntryReader
    invalidator: Invalidator
    audit: AuditLog
    ledger: AuditLedger | None = None  # shadow verification's tallies (None: off)


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    redis: RedisClient
    upstreams: Upstreams  # every upstream client, by family (a protocol's upstream_family) and name
    pipeline: Pipeline
    clock: Callable[[], float]
    router: Router | None
    telemetry: Telemetry
    history: History | None  # None: timeseries disabled, or the Redis has no TimeSeries
    admin: AdminTools
    redis_health: RedisHealth  # the request path's breaker: open means Redis is being skipped
