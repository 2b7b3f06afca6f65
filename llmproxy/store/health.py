"""What a Redis error says about Redis, and the one breaker of the request path that acts on it.

One rule for every command the request path sends (L1 lookups, L2 searches, write-backs, promotions):

    error                                               fault          breaker
    connection refused, reset or closed; a timeout      OUTAGE         failure (enough in a row open it)
    no pooled connection free within pool_timeout_s     POOL           no outcome: this request bypasses the cache
    a write refused for memory (maxmemory, noeviction)  OUT_OF_MEMORY  success: Redis answered, and reads still work
    any other error reply (missing index, wrong type)   COMMAND        success: Redis answered

Only an outage says Redis cannot be used. A busy pool is this process's own back-pressure, and a full Redis
still serves every cached answer: opening the breaker for either would stop serving hits for nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from enum import StrEnum

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, OutOfMemoryError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmproxy.breaker import BreakerState, CircuitBreaker, Ticket

logger = logging.getLogger(__name__)

FULL_WARNING_INTERVAL_S = 60.0  # a full Redis refuses every write: say so once a minute, not once a request
_OOM_REPLY = "OOM "  # redis-py names the class only for a bare reply, not inside a pipeline's annotated error


class PoolExhaustedError(RedisError):
    """Every pooled connection stayed busy for the whole wait (back-pressure in this process, not an outage)."""


class Fault(StrEnum):
    """What a failed Redis command says about Redis."""

    OUTAGE = "outage"
    POOL = "pool_exhausted"
    OUT_OF_MEMORY = "out_of_memory"
    COMMAND = "command"


def classify(error: BaseException) -> Fault:
    """The fault behind an error, looking through wrappers (redisvl, the cache's own) at their causes."""
    for cause in _causes(error):
        if isinstance(cause, PoolExhaustedError):
            return Fault.POOL
        if isinstance(cause, OutOfMemoryError) or (isinstance(cause, ResponseError) and _OOM_REPLY in str(cause)):
            return Fault.OUT_OF_MEMORY
        if isinstance(cause, ResponseError):
            return Fault.COMMAND
        if isinstance(cause, (RedisConnectionError, RedisTimeoutError, InvalidResponse, OSError)):
            return Fault.OUTAGE
    return Fault.COMMAND


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


class RedisHealth:
    """The request path's Redis breaker, told each outcome as a fault (None: the command worked)."""

    def __init__(self, breaker: CircuitBreaker, clock: Callable[[], float]) -> None:
        self._breaker = breaker
        self._clock = clock
        self._warned_full_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The breaker's state: OPEN means Redis is known to be down and is skipped."""
        return self._breaker.state

    def admit(self) -> Ticket:
        """A ticket for one lookup.

        Raises:
            CircuitOpenError: Redis is being skipped (or the one trial after the reset is under way).
        """
        return self._breaker.admit()

    def settle(self, ticket: Ticket, fault: Fault | None) -> None:
        """The outcome of an admitted lookup: None when it worked, else the fault it met."""
        if fault is Fault.POOL:  # says nothing about Redis; a trial passes to the next request
            self._breaker.release(ticket)
            return
        self._note(fault)
        self._breaker.record(ticket, success=fault is not Fault.OUTAGE)

    def observe(self, fault: Fault | None) -> None:
        """The outcome of a command sent without a ticket of its own (a write-back, an L2 search)."""
        if fault is Fault.POOL:
            return
        self._note(fault)
        self._breaker.observe(success=fault is not Fault.OUTAGE)

    def release(self, ticket: Ticket) -> None:
        """A lookup that ended without an outcome (the caller left)."""
        self._breaker.release(ticket)

    def _note(self, fault: Fault | None) -> None:
        if fault is not Fault.OUT_OF_MEMORY:
            return
        now = self._clock()
        if self._warned_full_at is None or now - self._warned_full_at >= FULL_WARNING_INTERVAL_S:
            self._warned_full_at = now
            logger.warning(
                "Redis is full (maxmemory reached, and its policy evicts nothing): new answers are served but not "
                "cached, cached ones are still served. Raise maxmemory or shorten cache.default_ttl_s. "
                'Counted in llmproxy_cache_writes_total{outcome="rejected_oom"}; repeated at most once a minute.'
            )
