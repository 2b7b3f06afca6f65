"""An answer's keys (L1 entry, L2 record, catalog document) and deleting them together, a few answers per MULTI.

Deleting an L2 record makes RediSearch repair the HNSW graph around its vector, synchronously: about 2.5 ms per
record at 10k entries on a busy 2-core machine, so one MULTI over 500 answers held Redis for over a second, past
the request path's socket timeout, stalling every request meanwhile. Small transactions keep each call short
(load_tests/invalidation_bench.py) and still delete each answer's keys together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from llmproxy.cache.catalog import entry_id
from llmproxy.cache.semantic import document_key

UNLINK_BATCH = 20  # answers per MULTI: ~50 ms of HNSW repair at worst measured, well under redis.socket_timeout_s

CatalogKey = Callable[[str], str]  # entry id -> its catalog document key


@dataclass(frozen=True, slots=True)
class Unlinked:
    """How many keys of each family a deletion removed."""

    l1: int = 0
    l2: int = 0
    catalog: int = 0

    def __add__(self, other: Unlinked) -> Unlinked:
        return Unlinked(self.l1 + other.l1, self.l2 + other.l2, self.catalog + other.catalog)


class AnswerKeys:
    """Names the keys of an answer from its L1 key, and unlinks answers everywhere."""

    def __init__(self, redis: Redis, key_prefix: str, catalog_key: CatalogKey) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._catalog_key = catalog_key

    def l2(self, entry_key: str) -> str:
        """The answer's L2 record key."""
        return document_key(self._prefix, entry_key)

    def catalog(self, entry_key: str) -> str:
        """The answer's catalog document key."""
        return self._catalog_key(entry_id(entry_key))

    async def unlink(self, entry_keys: Sequence[str]) -> Unlinked:
        """Unlink the answers' three keys, UNLINK_BATCH answers per MULTI.

        Raises:
            RedisError, OSError: Redis failed or timed out (answers of earlier transactions stay deleted).
        """
        total = Unlinked()
        for start in range(0, len(entry_keys), UNLINK_BATCH):
            batch = entry_keys[start : start + UNLINK_BATCH]
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.unlink(*batch)
                pipe.unlink(*map(self.l2, batch))
                pipe.unlink(*map(self.catalog, batch))
                l1, l2, catalog = await pipe.execute()
            total += Unlinked(int(l1), int(l2), int(catalog))
        return total
