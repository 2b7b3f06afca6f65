"""Failures of the cache store, raised at the cache boundary so the pipeline can bypass the cache."""


class CacheUnavailableError(Exception):
    """Redis failed or timed out; the request goes on without the cache (fail open)."""
