"""The async Redis client the cache uses, and its readiness probe."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from llmproxy.settings import RedisSettings

RedisClient = Redis  # the client type, named here so modules above the cache need not import redis


def create_redis(settings: RedisSettings, url: str) -> Redis:
    """A pooled client whose every command is bounded by the request-path timeout."""
    return Redis.from_url(
        url,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
        max_connections=settings.max_connections,
        health_check_interval=30,
        # redis-py retries connection errors and timeouts 3 times by default: a 4x longer wait on the request
        # path when Redis is down. Fail fast instead; the circuit breaker decides when to try again.
        retry=Retry(NoBackoff(), 0),
    )


async def is_reachable(redis: Redis) -> bool:
    """True when Redis answers PING within its timeouts."""
    try:
        return bool(await redis.ping())
    except (RedisError, OSError):
        return False
