"""Failures of the cache store, raised at the cache boundary so the pipeline can bypass the cache."""

from llmproxy.store.health import Fault, classify


class CacheUnavailableError(Exception):
    """Redis failed or timed out; the request goes on without the cache (fail open)."""

    @property
    def fault(self) -> Fault:
        """What the Redis error this was raised from says about Redis (no cause: an outage, to be safe)."""
        return Fault.OUTAGE if self.__cause__ is None else classify(self.__cause__)
