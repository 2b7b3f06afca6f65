"""Samples Redis-wide figures (evictions, expirations, memory) in the background for the metrics scrape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from redis.asyncio import Redis

from llmproxy.store.errors import CacheUnavailableError, redis_call
from llmproxy.telemetry.prometheus import RedisSnapshot

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 15.0
EntryCounter = Callable[[], Awaitable[int]]


async def sample_redis(
    redis: Redis,
    snapshot: RedisSnapshot,
    count_entries: EntryCounter | None = None,
    interval_s: float = SAMPLE_INTERVAL_S,
) -> None:
    """Refresh the snapshot every interval until cancelled; a failed sample keeps the previous figures."""
    while True:
        await refresh(redis, snapshot, count_entries)
        await anyio.sleep(interval_s)


async def refresh(redis: Redis, snapshot: RedisSnapshot, count_entries: EntryCounter | None = None) -> None:
    """One sample: INFO stats and memory, and the number of cached answers when a counter is given."""
    try:
        with redis_call("metrics sample", quiet=True):
            stats = await redis.info("stats")
            memory = await redis.info("memory")
            if count_entries is not None:
                snapshot.entries = await count_entries()
    except CacheUnavailableError:  # Redis down, or without the search module: the previous figures stay
        return
    except Exception:  # a sampler must never take the app down
        logger.exception("redis sample failed")
        return
    snapshot.evicted_keys = int(stats.get("evicted_keys", 0))
    snapshot.expired_keys = int(stats.get("expired_keys", 0))
    snapshot.used_memory_bytes = int(memory.get("used_memory", 0))
