"""L1: exact-match answers in Redis, keyed by scope and request hash."""

from __future__ import annotations

import asyncio
import functools

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from llmproxy.cache.entry import CacheEntry, decode_entry, encode_entry
from llmproxy.cache.keys import key_part
from llmproxy.store.errors import redis_call


class ExactCache:
    """GET/SET of complete answers; each entry is one Redis string, so a write is atomic."""

    def __init__(self, redis: Redis, key_prefix: str, hash_tags: bool = False) -> None:
        self._redis = redis
        self._prefix = f"{key_prefix}:l1"
        self._hash_tags = hash_tags  # a cluster: the request hash is the keys' hash tag (cache/keys.py)
        self._reads: dict[str, asyncio.Future[bytes | str | None]] = {}  # GETs in flight, by key

    def key(self, scope: str, request_hash: str) -> str:
        """Redis key of one entry; the scope is in the name so a tenant's entries can be found by pattern."""
        return f"{self._prefix}:{scope}:{key_part(request_hash, self._hash_tags)}"

    async def get(self, key: str) -> CacheEntry | None:
        """The entry under key, or None.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("L1 read"):
            raw = await self._shared_get(key)
        return None if raw is None else decode_entry(raw)

    async def _shared_get(self, key: str) -> bytes | str | None:
        """GET the key, sharing a GET already in flight for it: a crowd asking one question sends a few, not one
        each (which would queue for the pool and stall this process). Each caller decodes its own copy."""
        read = self._reads.get(key)
        if read is None:
            read = self._reads[key] = asyncio.ensure_future(self._redis.get(key))
            read.add_done_callback(functools.partial(self._forget, key))
        # Shielded: a caller that leaves must not cancel the others' read (it ends within the Redis timeout).
        return await asyncio.shield(read)

    def _forget(self, key: str, read: asyncio.Future[bytes | str | None]) -> None:
        if self._reads.get(key) is read:
            del self._reads[key]
        if not read.cancelled():
            read.exception()  # retrieved, even when every caller left before it ended

    async def get_with_ttl(self, key: str) -> tuple[CacheEntry, int] | None:
        """The entry under key and its remaining lifetime in milliseconds, or None.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("L1 read"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                raw, ttl_ms = await pipe.execute()
        entry = None if raw is None else decode_entry(raw)
        return None if entry is None or ttl_ms <= 0 else (entry, int(ttl_ms))

    def stage(self, pipe: Pipeline, key: str, encoded: bytes, ttl_s: int) -> None:
        """Queue the write of an encoded entry into a caller's pipeline (to write it atomically with its L2 record)."""
        pipe.set(key, encoded, ex=ttl_s)

    def stage_copy(self, pipe: Pipeline, key: str, entry: CacheEntry, ttl_ms: int) -> None:
        """Queue the write of a copy of another entry, which expires when the original does (ttl_ms left)."""
        pipe.set(key, encode_entry(entry), px=ttl_ms)


def scope_of(key_prefix: str, key: str) -> str:
    """The scope in an L1 key `{prefix}:l1:{scope}:{hash}` (scopes hold no colon)."""
    return key.removeprefix(f"{key_prefix}:l1:").rpartition(":")[0]
