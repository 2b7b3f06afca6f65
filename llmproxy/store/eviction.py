"""Redis eviction policies: which ones keep what the proxy must not lose, and reading the server's.

Every cache key has a TTL (L1 answers, L2 records, catalog documents, single-flight leases); the audit stream, the
traffic history (TimeSeries) and the router's reference documents have none, and index definitions are not keys.
So `noeviction` and the `volatile-*` policies evict only cache keys, which invalidation copes with (cache/sweep.py),
while an `allkeys-*` policy can also evict the audit log, history series and route references.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from llmproxy.store.errors import CacheUnavailableError, Fault, redis_call

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"  # the server would not say (a managed Redis may forbid CONFIG and INFO)
SUPPORTED = "noeviction or a volatile-* policy (volatile-lru, volatile-lfu, volatile-ttl, volatile-random)"


async def eviction_policy(redis: Redis) -> str:
    """The server's maxmemory-policy, from CONFIG GET or else INFO memory (allowed where CONFIG is not); or UNKNOWN."""
    try:
        with redis_call("eviction policy read", quiet=True):
            reply = await redis.config_get("maxmemory-policy")
        return str(reply.get("maxmemory-policy") or UNKNOWN)
    except CacheUnavailableError as exc:
        if exc.fault is not Fault.COMMAND:
            return UNKNOWN
        # CONFIG forbidden (ACL) or renamed: many managed services still answer INFO.
    try:
        with redis_call("eviction policy read", quiet=True):
            memory = await redis.info("memory")
    except CacheUnavailableError:
        return UNKNOWN
    return str(memory.get("maxmemory_policy") or UNKNOWN)


def policy_warning(policy: str) -> str | None:
    """Why the policy is a risk for the proxy's data, or None when it is supported (or unknown)."""
    if policy in (UNKNOWN, "noeviction") or policy.startswith("volatile-"):
        return None
    if policy.startswith("allkeys-"):
        return (
            f"Redis maxmemory-policy {policy} can evict keys without a TTL: the admin audit log, the traffic "
            f"history and the router's reference documents. Use {SUPPORTED}."
        )
    return f"Redis maxmemory-policy {policy} is not one this proxy knows. Use {SUPPORTED}."


async def check_eviction_policy(redis: Redis) -> str:
    """Log the server's eviction policy at startup, as a warning when it is a risk; the policy."""
    policy = await eviction_policy(redis)
    warning = policy_warning(policy)
    if warning is not None:
        logger.warning("%s", warning)
    elif policy == UNKNOWN:
        logger.info("Redis maxmemory-policy could not be read (CONFIG and INFO refused, or Redis down)")
    else:
        logger.info("Redis maxmemory-policy %s", policy)
    return policy
