"""What the admin API shows of cached answers: catalog items joined with their live L1 entry and L2 document."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from llmproxy.cache.catalog.index import CatalogItem
from llmproxy.cache.entry import decode_entry
from llmproxy.cache.semantic import document_key
from llmproxy.jsontypes import JsonObject
from llmproxy.store.errors import redis_call


@dataclass(frozen=True, slots=True)
class EntryView:
    """One cached answer as listed: its catalog item, remaining lifetime, whether L2 indexes its prompt."""

    item: CatalogItem
    expires_in_s: int
    semantic: bool
    response: JsonObject | None = None  # the cached answer, when asked for


class EntryReader:
    """Reads the live state of catalogued entries, one round trip per call."""

    def __init__(self, redis: Redis, key_prefix: str, search: Redis | None = None) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._search = search  # L2 records on a search node of their own (None: beside the answers)

    async def views(self, items: list[CatalogItem]) -> list[EntryView]:
        """A view per item whose answer is still in L1 (one that expired meanwhile is left out).

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("entry read"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for item in items:
                    pipe.pttl(item.entry_key)
                    if self._search is None:
                        pipe.exists(document_key(self._prefix, item.entry_key))
                replies = await pipe.execute()
            if self._search is None:
                ttls, in_l2s = replies[::2], replies[1::2]
            else:
                ttls, in_l2s = replies, await self._in_l2(self._search, items)
        views = []
        for item, ttl_ms, in_l2 in zip(items, ttls, in_l2s, strict=True):
            if ttl_ms > 0:
                views.append(EntryView(item, _seconds(ttl_ms), bool(in_l2)))
        return views

    async def full(self, item: CatalogItem) -> EntryView | None:
        """The view with the cached response, or None when the answer is gone or unreadable.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("entry read"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(item.entry_key)
                pipe.pttl(item.entry_key)
                raw, ttl_ms = await pipe.execute()
            [in_l2] = await self._in_l2(self._search or self._redis, [item])
        entry = None if raw is None else decode_entry(raw)
        if entry is None or ttl_ms <= 0:
            return None
        return EntryView(item, _seconds(ttl_ms), bool(in_l2), entry.response)

    async def _in_l2(self, redis: Redis, items: list[CatalogItem]) -> list[int]:
        async with redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.exists(document_key(self._prefix, item.entry_key))
            return list(await pipe.execute())


def _seconds(ttl_ms: int) -> int:
    return -(-int(ttl_ms) // 1000)  # rounded up: an entry with 300 ms left is not shown as expiring in 0 s
