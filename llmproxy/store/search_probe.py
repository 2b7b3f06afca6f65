"""Does a cluster's query engine search across its shards? Asked once at startup, by trying it.

Redis 8's Query Engine (and Redis Software / Cloud in proxy mode) answers FT.SEARCH with every shard's documents.
Redis Stack 7.x builds have no search coordinator: an index lives on the one shard its name hashes to and sees only
that shard's documents. So two probe documents go to two different shards, one index covers them, and one search
must find both. Anything else (one found, an error, no search module) means no.
"""

from __future__ import annotations

import logging
import uuid

from redis.asyncio import Redis, RedisCluster

from llmproxy.store.errors import CacheUnavailableError, redis_call
from llmproxy.store.redis_client import cluster_client

logger = logging.getLogger(__name__)

_MAX_TAGS = 64  # tags tried to land the two documents on two shards (3 shards: a few suffice)


async def searches_across_shards(redis: Redis, key_prefix: str) -> bool:
    """True when one FT.SEARCH on this cluster finds documents of two shards (always cleans up after itself)."""
    cluster = cluster_client(redis)
    run = uuid.uuid4().hex[:12]  # replicas starting together must not share probe keys
    prefix = f"{key_prefix}:probe:{run}:"
    try:
        with redis_call("cluster topology", quiet=True):
            await cluster.initialize()  # the slot map, to place the probe documents
    except CacheUnavailableError:
        return False
    keys = _keys_on_two_shards(cluster, prefix)
    if keys is None:
        return False  # one shard only: nothing to search across, but nothing to miss either
    index = f"{key_prefix}:probe-index:{run}"
    try:
        with redis_call("cross-shard search probe", quiet=True):
            await cluster.execute_command("FT.CREATE", index, "ON", "HASH", "PREFIX", "1", prefix, "SCHEMA", "p", "TAG")
            for key in keys:
                await cluster.hset(key, "p", "probe")
            reply = await cluster.execute_command("FT.SEARCH", index, "*", "LIMIT", "0", "0")
        found = int(reply[0]) if isinstance(reply, list) else int(reply.get("total_results", 0))
    except (CacheUnavailableError, ValueError, TypeError, KeyError, AttributeError):
        found = 0
    finally:
        await _clean_up(cluster, index, keys)
    return found >= len(keys)


def _keys_on_two_shards(cluster: RedisCluster, prefix: str) -> list[str] | None:
    first = f"{prefix}{{0}}"
    home = cluster.get_node_from_key(first)
    for tag in range(1, _MAX_TAGS):
        other = f"{prefix}{{{tag}}}"
        if cluster.get_node_from_key(other) is not home:
            return [first, other]
    return None


async def _clean_up(cluster: RedisCluster, index: str, keys: list[str]) -> None:
    try:
        with redis_call("cross-shard search probe cleanup", quiet=True):
            for key in keys:
                await cluster.delete(key)
            await cluster.execute_command("FT.DROPINDEX", index)
    except CacheUnavailableError:
        logger.debug("the cross-shard search probe left %s behind (it holds no cache data)", index)
