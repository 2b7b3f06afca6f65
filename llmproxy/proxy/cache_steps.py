"""The pipeline's cache steps: the L1 lookup, the prompt's embedding, the L2 lookup, an L2 hit's promotion.

Every Redis call here goes through the request path's breaker (store/health.py), and every failure fails open:
the step is skipped, noted on the trace, and the request goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmproxy.breaker import BreakerState
from llmproxy.cache.catalog.index import catalog_record
from llmproxy.cache.entry import CacheEntry
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.keys import request_key
from llmproxy.cache.paraphrase import ParaphraseFinder, ParaphraseHit, Prepared, Unembedded
from llmproxy.cache.writeback import WriteBack
from llmproxy.proxy.exchange import CacheRequest
from llmproxy.store.errors import CacheUnavailableError, Fault, RedisSkippedError
from llmproxy.store.health import RedisHealth
from llmproxy.trace import RequestTrace


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The L1 lookup could not ask Redis (distinct from None, a miss): the bypass reason says why."""

    reason: str


UNAVAILABLE = Unavailable("redis-unavailable")
POOL_EXHAUSTED = Unavailable("redis-pool-exhausted")  # back-pressure in this process: Redis itself is fine


@dataclass(frozen=True, slots=True)
class CacheSteps:
    """L1, the embedding model and L2, as the pipeline uses them; `finder` is None with the semantic layer off."""

    exact: ExactCache
    finder: ParaphraseFinder | None
    write_back: WriteBack
    health: RedisHealth

    @property
    def down(self) -> bool:
        """Redis is known to be down: every cache step is skipped (and the embedding that only feeds them)."""
        return self.health.state is BreakerState.OPEN

    def key(self, request: CacheRequest) -> str:
        """The request's L1 key."""
        parsed = request.parsed
        digest = request_key(request.protocol, request.scope, parsed.body, parsed.key_headers)
        return self.exact.key(request.scope, digest)

    async def lookup(self, key: str, trace: RequestTrace) -> CacheEntry | None | Unavailable:
        """The L1 entry, None on a miss, or why Redis could not be asked (it failed, its breaker is open, no
        connection came free in time)."""
        try:
            with self.health.call("L1 read"), trace.timing("l1"):
                return await self.exact.get(key)
        except RedisSkippedError:
            return UNAVAILABLE
        except CacheUnavailableError as exc:
            trace.failed("redis", "read")
            return POOL_EXHAUSTED if exc.fault is Fault.POOL else UNAVAILABLE

    async def embed(self, request: CacheRequest, key: str, *, needed: bool) -> Prepared | Unembedded | None:
        """The prompt's vector, when the cache or the router needs it (None: not needed, or no semantic layer)."""
        if self.finder is None or not needed:
            return None
        with request.trace.timing("embed"):
            return await self.finder.prepare(request.protocol, request.parsed, request.scope, key, request.trace)

    async def paraphrase(self, prepared: Prepared, request: CacheRequest) -> ParaphraseHit | None:
        """The L2 hit, or None (a miss, or Redis failed or is being skipped)."""
        if self.finder is None:
            return None
        try:
            with self.health.call("L2 search"), request.trace.timing("l2"):
                return await self.finder.find(prepared, request.controls.threshold, request.trace)
        except RedisSkippedError:
            return None
        except CacheUnavailableError:
            request.trace.failed("redis", "search")
            return None

    async def promote(self, hit: ParaphraseHit, key: str, request: CacheRequest) -> bool:
        """Copy an L2 hit under the request's own key, so the next identical request is an L1 hit; whether the
        copy was stored."""
        parsed = request.parsed
        listing = catalog_record(request.protocol, parsed.body, request.scope, parsed.model, key, hit.entry_key)
        # Same expiry as the original answer.
        outcome = await self.write_back.promote(key, hit.entry, hit.ttl_ms, listing)
        if outcome == "failed":
            request.trace.failed("redis", "write")
        return outcome == "stored"
