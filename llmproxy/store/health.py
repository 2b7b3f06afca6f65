"""The request path's Redis breaker: every request-path command (L1 lookups, L2 searches, write-backs, promotions)
runs inside `RedisHealth.call`, which asks the breaker first and tells it the outcome after.

    fault (store/errors.py)    breaker
    OUTAGE                     failure (enough in a row open it)
    POOL                       no outcome: the call's trial, if it was one, passes to the next call
    OUT_OF_MEMORY              success: Redis answered, and reads still work
    COMMAND                    success: Redis answered
    (the call was cancelled)   no outcome

Only an outage says Redis cannot be used. A busy pool is this process's own back-pressure, and a full Redis
still serves every cached answer: opening the breaker for either would stop serving hits for nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from llmproxy.breaker import BreakerState, CircuitBreaker, CircuitOpenError, Ticket
from llmproxy.store.errors import CacheUnavailableError, Fault, RedisSkippedError, redis_call

logger = logging.getLogger(__name__)

FULL_WARNING_INTERVAL_S = 60.0  # a full Redis refuses every write: say so once a minute, not once a request


class RedisHealth:
    """The request path's Redis breaker, fed by the calls it admits."""

    def __init__(self, breaker: CircuitBreaker, clock: Callable[[], float]) -> None:
        self._breaker = breaker
        self._clock = clock
        self._warned_full_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The breaker's state: OPEN means Redis is known to be down and is skipped."""
        return self._breaker.state

    @contextmanager
    def call(self, operation: str) -> Iterator[None]:
        """Run one request-path Redis call, if the breaker lets it, and report its outcome.

        Raises:
            RedisSkippedError: the breaker is open (or its one trial is under way): Redis was not asked.
            CacheUnavailableError: the call failed (mapped and logged by redis_call; `fault` says how).
        """
        try:
            ticket = self._breaker.admit()
        except CircuitOpenError as exc:
            raise RedisSkippedError(f"{operation} skipped: Redis is known to be down") from exc
        try:
            with redis_call(operation):
                yield
        except CacheUnavailableError as exc:
            self._settle(ticket, exc.fault)
            raise
        except BaseException:  # cancelled, or not Redis's doing: no outcome
            self._breaker.release(ticket)
            raise
        self._settle(ticket, None)

    def _settle(self, ticket: Ticket, fault: Fault | None) -> None:
        if fault is Fault.POOL:  # says nothing about Redis; a trial passes to the next call
            self._breaker.release(ticket)
            return
        self._note(fault)
        self._breaker.record(ticket, success=fault is not Fault.OUTAGE)

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
