"""L1: exact-match answers in Redis, keyed by scope and request hash."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from llmproxy.cache.entry import CacheEntry, decode_entry, encode_entry
from llmproxy.cache.errors import CacheUnavailableError

logger = logging.getLogger(__name__)


class ExactCache:
    """GET/SET of complete answers; each entry is one Redis string, so a write is atomic."""

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{key_prefix}:l1"

    def key(self, scope: str, request_hash: str) -> str:
        """Redis key of one entry; the scope is in the name so a tenant's entries can be found by pattern."""
        return f"{self._prefix}:{scope}:{request_hash}"

    async def get(self, key: str) -> CacheEntry | None:
        """The entry under key, or None.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        try:
            raw = await self._redis.get(key)
        except (RedisError, OSError) as exc:
            raise _unavailable("read", exc) from exc
        return None if raw is None else decode_entry(raw)

    async def put(self, key: str, entry: CacheEntry, ttl_s: int) -> None:
        """Store entry under key for ttl_s seconds.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        try:
            await self._redis.set(key, encode_entry(entry), ex=ttl_s)
        except (RedisError, OSError) as exc:
            raise _unavailable("write", exc) from exc


def _unavailable(operation: str, exc: Exception) -> CacheUnavailableError:
    logger.warning("cache %s failed, bypassing the cache: %s", operation, exc.__class__.__name__)
    return CacheUnavailableError(f"cache {operation} failed: {exc.__class__.__name__}")
