"""Write-back of complete, successful answers; a failed write is logged and never reaches the client."""

from __future__ import annotations

from collections.abc import Callable

from llmproxy.cache.entry import CacheEntry
from llmproxy.cache.errors import CacheUnavailableError
from llmproxy.cache.exact import ExactCache
from llmproxy.wire import EndpointKind, JsonObject, is_complete_answer


class WriteBack:
    """Stores answers in L1 under the request's key with its TTL."""

    def __init__(self, exact: ExactCache, clock: Callable[[], float]) -> None:
        self._exact = exact
        self._clock = clock

    async def store(self, key: str, kind: EndpointKind, model: str, response: JsonObject, ttl_s: int) -> bool:
        """Store one complete answer; False when it is not complete or the cache was unavailable (fail open)."""
        if not is_complete_answer(kind, response):
            return False
        entry = CacheEntry(kind=kind, model=model, created_at=self._clock(), response=response)
        try:
            await self._exact.put(key, entry, ttl_s)
        except CacheUnavailableError:
            return False
        return True
