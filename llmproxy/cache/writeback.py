"""Write-back of complete, successful answers: L1 entry, L2 record and catalog document in one transaction.

A failed write is logged and never reaches the client; a half-written entry is never visible. A full Redis
(maxmemory under noeviction) refuses the write: that is "rejected_oom", not a failure of Redis (see redis_health).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from llmproxy.cache.catalog.index import Catalog, CatalogRecord
from llmproxy.cache.entry import CacheEntry, encode_entry
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.semantic import SemanticIndex, SemanticRecord
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.wire import EndpointKind, is_complete_answer
from llmproxy.store.health import Fault, RedisHealth, classify
from llmproxy.trace import WriteOutcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StorePlan:
    """Where a complete answer goes: its L1 key, its L2 record when the prompt has one, its catalog record."""

    key: str
    record: SemanticRecord | None
    listing: CatalogRecord | None = None


class WriteBack:
    """Stores answers in L1 under the request's key, and their prompt vector in L2, with one TTL."""

    def __init__(
        self,
        redis: Redis,
        exact: ExactCache,
        index: SemanticIndex | None,
        clock: Callable[[], float],
        catalog: Catalog | None = None,
        health: RedisHealth | None = None,
        max_entry_bytes: int | None = None,
    ) -> None:
        self.max_entry_bytes = max_entry_bytes  # None: no limit
        self._redis = redis
        self._health = health  # told about each write, so a dead Redis stops being tried
        self._exact = exact
        self._index = index
        self._clock = clock
        self._catalog = catalog

    async def store(
        self,
        key: str,
        kind: EndpointKind,
        model: str,
        response: JsonObject,
        ttl_s: int,
        record: SemanticRecord | None = None,
        listing: CatalogRecord | None = None,
    ) -> WriteOutcome:
        """Store one complete answer: "stored", "incomplete" (not cacheable), "too_large", "rejected_oom" (Redis is
        full) or "failed" (Redis failed; fail open)."""
        if not is_complete_answer(kind, response):
            return "incomplete"
        entry = CacheEntry(kind=kind, model=model, created_at=self._clock(), response=response)
        if self.max_entry_bytes is not None and len(encode_entry(entry)) > self.max_entry_bytes:
            # Big entries would cost every hit a large read and decode, and crowd out many small ones.
            return "too_large"

        def stage(pipe: Pipeline) -> None:
            self._exact.stage(pipe, key, entry, ttl_s)
            if record is not None and self._index is not None:
                self._index.stage(pipe, record, ttl_s, kind)
            if listing is not None and self._catalog is not None:
                self._catalog.stage(pipe, listing, entry.created_at, ttl_s * 1000)

        return await self._transaction(stage, "write")

    async def promote(self, key: str, entry: CacheEntry, ttl_ms: int, listing: CatalogRecord) -> WriteOutcome:
        """Copy an L2 hit's answer under the request's own L1 key, expiring with the original."""

        # The copy names its origin, so invalidating the original finds it even without its catalog document.
        copy = entry.model_copy(update={"origin": listing.origin})

        def stage(pipe: Pipeline) -> None:
            self._exact.stage_copy(pipe, key, copy, ttl_ms)
            if self._catalog is not None:
                self._catalog.stage(pipe, listing, entry.created_at, ttl_ms)

        return await self._transaction(stage, "promotion")

    async def _transaction(self, stage: Callable[[Pipeline], None], what: str) -> WriteOutcome:
        """Run the staged commands in one MULTI; every outcome is reported to the breaker, which decides."""
        fault: Fault | None = None
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                stage(pipe)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            fault = classify(exc)
            if fault is not Fault.OUT_OF_MEMORY:  # a full Redis is reported by the health, once a minute
                logger.warning("cache %s failed, answer not cached: %s", what, exc.__class__.__name__)
        if self._health is not None:
            self._health.observe(fault)
        if fault is None:
            return "stored"
        return "rejected_oom" if fault is Fault.OUT_OF_MEMORY else "failed"
