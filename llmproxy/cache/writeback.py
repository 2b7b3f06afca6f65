"""Write-back of complete, successful answers: L1 entry, L2 record and catalog document in one transaction.

On a cluster the three keys share a hash tag (cache/keys.py), so the MULTI stays in one slot. When the L2 index and
the catalog live on a search node of their own (redis.search_url, beside a cluster whose shards cannot search
together), the L2 record and catalog document go there in one MULTI first, then the L1 entry: an answer is served
only once its records exist, and a record whose answer is missing is a miss (and expires with its TTL).

A failed write is logged and never reaches the client; a half-written entry is never visible. A full Redis
(maxmemory under noeviction) refuses the write: that is "rejected_oom", not a failure of Redis (see store/health).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from llmproxy.cache.catalog.index import Catalog, CatalogRecord
from llmproxy.cache.entry import CacheEntry, encode_entry
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.semantic import SemanticIndex, SemanticRecord
from llmproxy.cache.verifier import Verifier
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import WireProtocol
from llmproxy.store.errors import CacheUnavailableError, Fault, redis_call
from llmproxy.store.health import RedisHealth
from llmproxy.trace import WriteOutcome

Guard = Callable[[str], AbstractContextManager[None]]  # runs Redis calls: the breaker's `call`, or `redis_call`
Stage = Callable[[Pipeline], None]  # queues commands on a transaction


@dataclass(frozen=True, slots=True)
class StorePlan:
    """Where a complete answer goes: its L1 key, protocol, model and TTL; its L2 record when the prompt has one;
    its catalog record."""

    key: str
    protocol: WireProtocol
    model: str
    ttl_s: int
    record: SemanticRecord | None = None
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
        verifier: Verifier | None = None,
        search: Redis | None = None,
    ) -> None:
        self._verifier = verifier  # its vector is stored with each L2 record
        self.max_entry_bytes = max_entry_bytes  # None: no limit
        self._redis = redis
        self._search = search if search is not None else redis  # where the L2 record and catalog document go
        # Each write goes through the breaker (when given), so a dead Redis stops being tried.
        self._guard: Guard = health.call if health is not None else redis_call
        self._exact = exact
        self._index = index
        self._clock = clock
        self._catalog = catalog

    async def store(self, plan: StorePlan, response: JsonObject) -> WriteOutcome:
        """Store one complete answer: "stored", "incomplete" (not cacheable), "too_large", "rejected_oom" (Redis is
        full) or "failed" (Redis failed; fail open)."""
        if not plan.protocol.is_complete(response):
            return "incomplete"
        entry = CacheEntry(kind=plan.protocol.name, model=plan.model, created_at=self._clock(), response=response)
        encoded = encode_entry(entry)
        if self.max_entry_bytes is not None and len(encoded) > self.max_entry_bytes:
            # Big entries would cost every hit a large read and decode, and crowd out many small ones.
            return "too_large"

        record = plan.record
        if record is not None and self._verifier is not None:
            record = replace(record, verifier_vector=await self._verifier.vector(record.prompt))

        def stage(pipe: Pipeline) -> None:
            self._exact.stage(pipe, plan.key, encoded, plan.ttl_s)

        def stage_records(pipe: Pipeline) -> None:
            if record is not None and self._index is not None:
                self._index.stage(pipe, record, plan.ttl_s, plan.protocol.name)
            if plan.listing is not None and self._catalog is not None:
                self._catalog.stage(pipe, plan.listing, entry.created_at, plan.ttl_s * 1000)

        return await self._transaction(stage, stage_records, "write")

    async def promote(self, key: str, entry: CacheEntry, ttl_ms: int, listing: CatalogRecord) -> WriteOutcome:
        """Copy an L2 hit's answer under the request's own L1 key, expiring with the original."""

        # The copy names its origin, so invalidating the original finds it even without its catalog document.
        copy = replace(entry, origin=listing.origin)

        def stage(pipe: Pipeline) -> None:
            self._exact.stage_copy(pipe, key, copy, ttl_ms)

        def stage_records(pipe: Pipeline) -> None:
            if self._catalog is not None:
                self._catalog.stage(pipe, listing, entry.created_at, ttl_ms)

        return await self._transaction(stage, stage_records, "promotion")

    async def _transaction(self, stage: Stage, stage_records: Stage, what: str) -> WriteOutcome:
        """Run the staged commands in one MULTI (two, records first, with a search node of their own); the
        outcome is told to the breaker, which decides."""
        try:
            with self._guard(f"cache {what}"):
                if self._search is self._redis:
                    await _multi(self._redis, stage, stage_records)
                else:
                    await _multi(self._search, stage_records)
                    await _multi(self._redis, stage)
        except CacheUnavailableError as exc:
            return "rejected_oom" if exc.fault is Fault.OUT_OF_MEMORY else "failed"
        return "stored"


async def _multi(redis: Redis, *stages: Stage) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        for stage in stages:
            stage(pipe)
        if len(pipe):  # nothing staged (no L2 record, no catalog): no round trip
            await pipe.execute()
