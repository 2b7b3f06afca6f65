"""The one Redis error mapping: what a failed command says about Redis, and the error every Redis caller raises.

Every module that talks to Redis wraps its commands in `redis_call(operation)`: a Redis (or redisvl) error inside
becomes CacheUnavailableError, logged once here, with the fault it stands for:

    error                                               fault          what it says
    connection refused, reset or closed; a timeout      OUTAGE         Redis cannot be used
    a cluster or sentinel failover under way            OUTAGE         (CLUSTERDOWN, TRYAGAIN, MOVED/ASK left after
                                                                       the client's retry, a slot without a primary,
                                                                       READONLY from a demoted primary)
    no pooled connection free within pool_timeout_s     POOL           this process is busy; Redis is fine
    (a cluster node's pool at max_connections: at once)
    a write refused for memory (maxmemory, noeviction)  OUT_OF_MEMORY  Redis answered, and reads still work
    any other error reply (missing index, wrong type)   COMMAND        Redis answered

Callers decide from the fault (the request path's breaker in health.py opens only on outages); nobody catches
redis-py's exceptions by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from redis.exceptions import (
    AskError,
    ClusterDownError,
    InvalidResponse,
    MaxConnectionsError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisClusterUnreachableError,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redisvl.exceptions import RedisVLError

logger = logging.getLogger(__name__)

# What a Redis command (through redis-py or redisvl) raises; redis-py's cluster errors are not all RedisErrors.
REDIS_ERRORS = (RedisError, RedisClusterException, RedisVLError, OSError)
# A topology change under way (failover, resharding): Redis cannot be used until the client has followed it.
_TOPOLOGY_ERRORS = (
    ClusterDownError,  # also MASTERDOWN
    TryAgainError,
    AskError,  # also MOVED
    ReadOnlyError,
    SlotNotCoveredError,
    RedisClusterUnreachableError,
)
_OOM_REPLY = "OOM "  # redis-py names the class only for a bare reply, not inside a pipeline's annotated error


class PoolExhaustedError(RedisError):
    """Every pooled connection stayed busy for the whole wait (back-pressure in this process, not an outage)."""


class Fault(StrEnum):
    """What a failed Redis command says about Redis."""

    OUTAGE = "outage"
    POOL = "pool_exhausted"
    OUT_OF_MEMORY = "out_of_memory"
    COMMAND = "command"


class CacheUnavailableError(Exception):
    """Redis failed or timed out; the request goes on without the cache (fail open)."""

    @property
    def fault(self) -> Fault:
        """What the Redis error this was raised from says about Redis (no cause: an outage, to be safe)."""
        return Fault.OUTAGE if self.__cause__ is None else classify(self.__cause__)


class RedisSkippedError(CacheUnavailableError):
    """The request path's breaker is open: Redis was not asked (see health.py)."""


def classify(error: BaseException) -> Fault:
    """The fault behind an error, looking through wrappers (redisvl, the cache's own) at their causes."""
    for cause in causes(error):
        if isinstance(cause, (PoolExhaustedError, MaxConnectionsError)):  # the cluster client's pool does not wait
            return Fault.POOL
        if isinstance(cause, _TOPOLOGY_ERRORS):
            return Fault.OUTAGE
        if isinstance(cause, OutOfMemoryError) or (isinstance(cause, ResponseError) and _OOM_REPLY in str(cause)):
            return Fault.OUT_OF_MEMORY
        if isinstance(cause, ResponseError):
            return Fault.COMMAND
        if isinstance(cause, (RedisConnectionError, RedisTimeoutError, InvalidResponse, OSError)):
            return Fault.OUTAGE
    return Fault.COMMAND


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error, then its cause, its cause's cause, ..."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


@contextmanager
def redis_call(operation: str, *, quiet: bool = False) -> Iterator[None]:
    """Run Redis commands; a failure inside becomes CacheUnavailableError, logged once with its fault (at debug
    level when `quiet`: a routine reconnect).

    Raises:
        CacheUnavailableError: Redis failed or timed out (`fault` says how); one already mapped passes unchanged.
    """
    try:
        yield
    except CacheUnavailableError:
        raise
    except REDIS_ERRORS as exc:
        fault = classify(exc)
        name = _name(exc)
        # A full Redis refuses every write: health.py says so once a minute, not once a command.
        level = logging.DEBUG if quiet or fault is Fault.OUT_OF_MEMORY else logging.WARNING
        logger.log(level, "Redis %s failed (%s): %s", operation, fault.value, name)
        raise CacheUnavailableError(f"{operation} failed: {name}") from exc


def _name(exc: BaseException) -> str:
    # redisvl wraps the redis-py error that says what happened.
    inner = next((cause for cause in causes(exc) if not isinstance(cause, RedisVLError)), exc)
    return inner.__class__.__name__
