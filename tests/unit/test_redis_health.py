"""The one rule for Redis errors: outages open the breaker; a busy pool, a full Redis and error replies never do."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError, OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redisvl.exceptions import RedisSearchError

from llmproxy.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from llmproxy.store.errors import CacheUnavailableError
from llmproxy.store.health import FULL_WARNING_INTERVAL_S, Fault, PoolExhaustedError, RedisHealth, classify

THRESHOLD = 2
RESET_S = 5.0
OOM = "OOM command not allowed when used memory > 'maxmemory'."


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(clock: Clock) -> RedisHealth:
    return RedisHealth(CircuitBreaker(THRESHOLD, RESET_S, clock), clock)


def wrapped(cause: Exception) -> Exception:
    """A redisvl error raised from a Redis error, as the L2 index raises them."""
    try:
        raise RedisSearchError("Error while searching") from cause
    except RedisSearchError as exc:
        return exc


def cache_error(cause: Exception) -> CacheUnavailableError:
    try:
        raise CacheUnavailableError("cache read failed") from cause
    except CacheUnavailableError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (ConnectionError("Connection refused"), Fault.OUTAGE),
        (RedisTimeoutError("Timeout reading from 127.0.0.1:6379"), Fault.OUTAGE),
        (TimeoutError(), Fault.OUTAGE),
        (OSError("broken pipe"), Fault.OUTAGE),
        (PoolExhaustedError("all 64 Redis connections stayed busy"), Fault.POOL),
        (OutOfMemoryError(OOM), Fault.OUT_OF_MEMORY),
        # Inside a pipeline redis-py prefixes the reply; the class may then be a plain ResponseError.
        (ResponseError(f"Command # 1 (SET k v) of pipeline caused error: {OOM}"), Fault.OUT_OF_MEMORY),
        (ResponseError("llmproxy:l2: no such index"), Fault.COMMAND),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), Fault.COMMAND),
        (ValueError("not a Redis error"), Fault.COMMAND),
    ],
)
def test_each_error_has_one_fault(error: Exception, fault: Fault) -> None:
    assert classify(error) is fault


def test_wrapped_errors_are_classified_by_their_cause() -> None:
    assert classify(wrapped(ConnectionError("Connection refused"))) is Fault.OUTAGE
    assert classify(wrapped(ResponseError("no such index"))) is Fault.COMMAND
    assert cache_error(wrapped(OutOfMemoryError(OOM))).fault is Fault.OUT_OF_MEMORY
    assert cache_error(PoolExhaustedError("busy")).fault is Fault.POOL
    assert CacheUnavailableError("no cause").fault is Fault.OUTAGE


def test_outages_open_the_breaker(health: RedisHealth) -> None:
    for _ in range(THRESHOLD):
        health.settle(health.admit(), Fault.OUTAGE)
    assert health.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        health.admit()


@pytest.mark.parametrize("fault", [Fault.POOL, Fault.OUT_OF_MEMORY, Fault.COMMAND])
def test_a_busy_pool_a_full_redis_or_an_error_reply_never_opens_it(health: RedisHealth, fault: Fault) -> None:
    for _ in range(10 * THRESHOLD):
        health.settle(health.admit(), fault)
        health.observe(fault)
    assert health.state is BreakerState.CLOSED


def test_an_answer_from_redis_even_a_refusal_ends_a_run_of_outages(health: RedisHealth) -> None:
    health.observe(Fault.OUTAGE)
    health.observe(Fault.OUT_OF_MEMORY)  # Redis answered: it is up
    health.observe(Fault.OUTAGE)
    assert health.state is BreakerState.CLOSED


def test_a_busy_pool_says_nothing_so_the_trial_passes_to_the_next_request(health: RedisHealth, clock: Clock) -> None:
    for _ in range(THRESHOLD):
        health.observe(Fault.OUTAGE)
    clock.now += RESET_S
    trial = health.admit()
    health.settle(trial, Fault.POOL)
    assert health.state is BreakerState.HALF_OPEN
    health.settle(health.admit(), None)  # the next request is the trial, and it worked
    assert health.state is BreakerState.CLOSED


def test_a_full_redis_is_reported_at_most_once_a_minute(
    health: RedisHealth, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="llmproxy.store.health"):
        for _ in range(5):
            health.observe(Fault.OUT_OF_MEMORY)
            clock.now += FULL_WARNING_INTERVAL_S / 10
        clock.now += FULL_WARNING_INTERVAL_S
        health.observe(Fault.OUT_OF_MEMORY)
    warnings = [record for record in caplog.records if "Redis is full" in record.getMessage()]
    assert len(warnings) == 2
