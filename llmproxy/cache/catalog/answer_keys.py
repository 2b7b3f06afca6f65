"""An answer's keys (L1 entry, L2 record, catalog document) and deleting them in short, paced transactions.

Deleting an L2 record makes RediSearch repair the HNSW graph around its vector, synchronously: from 0.5 ms to over
10 ms per record on a busy 2-core machine, growing with the index. One MULTI over a 500-answer page held Redis for
over a second, past the request path's socket timeout (a 503 for the admin, a stall for every request meanwhile).
So deletions go in batches sized from how long the last one took, aiming at TARGET_S per call; each answer's keys
still go in one transaction (load_tests/invalidation_bench.py).

On a cluster each answer's keys share a slot, but two answers' keys do not: a batch becomes one MULTI per answer,
sent together. With the L2 records and catalog documents on a search node of their own (redis.search_url), the L1
entries are unlinked first (the answers stop being served), then their records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from llmproxy.cache.catalog.index import entry_id
from llmproxy.cache.semantic import document_key
from llmproxy.store.redis_client import is_cluster

TARGET_S = 0.025  # per deletion call: well under the request path's redis.socket_timeout_s (0.25 s)
FIRST_BATCH = 8
MAX_BATCH = 500

CatalogKey = Callable[[str], str]  # entry id -> its catalog document key
Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Unlinked:
    """How many keys of each family a deletion removed."""

    l1: int = 0
    l2: int = 0
    catalog: int = 0

    def __add__(self, other: Unlinked) -> Unlinked:
        return Unlinked(self.l1 + other.l1, self.l2 + other.l2, self.catalog + other.catalog)


@dataclass(slots=True)
class Pacer:
    """The size of the next batch: halved after a call slower than the target, doubled after a much faster one."""

    size: int = FIRST_BATCH
    target_s: float = TARGET_S

    def observe(self, elapsed_s: float) -> None:
        """Adjust the size to the duration of the call just made."""
        if elapsed_s > self.target_s:
            self.size = max(1, self.size // 2)
        elif elapsed_s < self.target_s / 4:
            self.size = min(MAX_BATCH, self.size * 2)


class AnswerKeys:
    """Names an answer's keys from its L1 key, and unlinks answers (or any cache keys) in paced calls."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        catalog_key: CatalogKey,
        clock: Callable[[], float] = time.monotonic,
        search: Redis | None = None,
    ) -> None:
        self._redis = redis
        self.search = search if search is not None else redis  # where L2 records and catalog documents live
        self._prefix = key_prefix
        self._catalog_key = catalog_key
        self._clock = clock
        self._pacer = Pacer()  # shared by every deletion: it learns what one costs on this Redis now

    def l2(self, entry_key: str) -> str:
        """The answer's L2 record key."""
        return document_key(self._prefix, entry_key)

    def catalog(self, entry_key: str) -> str:
        """The answer's catalog document key."""
        return self._catalog_key(entry_id(entry_key))

    async def unlink(self, entry_keys: Sequence[str]) -> Unlinked:
        """Unlink the answers' three keys, each answer's in one MULTI.

        Raises:
            RedisError, OSError: Redis failed or timed out (answers of earlier transactions stay deleted).
        """
        total = Unlinked()

        async def run(batch: Sequence[str]) -> None:
            nonlocal total
            if self.search is not self._redis:
                total += await self._unlink_apart(batch)
            elif is_cluster(self._redis):  # one MULTI per answer (its slot), all sent at once
                for unlinked in await asyncio.gather(*(self._unlink_together([key]) for key in batch)):
                    total += unlinked
            else:
                total += await self._unlink_together(batch)

        await self._paced(entry_keys, run)
        return total

    async def _unlink_together(self, batch: Sequence[str]) -> Unlinked:
        async with self._redis.pipeline(transaction=True) as pipe:
            _queue_unlink(pipe, batch)
            _queue_unlink(pipe, list(map(self.l2, batch)))
            _queue_unlink(pipe, list(map(self.catalog, batch)))
            l1, l2, catalog = await pipe.execute()
        return Unlinked(int(l1), int(l2), int(catalog))

    async def _unlink_apart(self, batch: Sequence[str]) -> Unlinked:
        l1 = await self._redis.unlink(*batch)  # a cluster client splits the keys by slot
        async with self.search.pipeline(transaction=True) as pipe:
            _queue_unlink(pipe, list(map(self.l2, batch)))
            _queue_unlink(pipe, list(map(self.catalog, batch)))
            l2, catalog = await pipe.execute()
        return Unlinked(int(l1), int(l2), int(catalog))

    async def unlink_keys(self, keys: Sequence[str | bytes], on_search: bool = False) -> int:
        """Unlink keys of one family (a flush), from the search node when `on_search`; how many were there.

        Raises:
            RedisError, OSError: Redis failed or timed out.
        """
        unlinked = 0
        redis = self.search if on_search else self._redis

        async def run(batch: Sequence[str | bytes]) -> None:
            nonlocal unlinked
            unlinked += int(await redis.unlink(*batch))

        await self._paced(keys, run)
        return unlinked

    async def _paced(self, items: Sequence[Item], run: Callable[[Sequence[Item]], Awaitable[None]]) -> None:
        start = 0
        while start < len(items):
            batch = items[start : start + self._pacer.size]
            started = self._clock()
            await run(batch)
            self._pacer.observe(self._clock() - started)
            start += len(batch)


def _queue_unlink(pipe: Pipeline, keys: Sequence[str]) -> None:
    # redis-py's cluster pipeline runs `unlink` at once (split by slot) instead of queueing it in the MULTI.
    pipe.execute_command("UNLINK", *keys)
