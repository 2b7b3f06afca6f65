"""The one rule for Redis errors: every failure maps to one error with its fault; outages open the breaker, a busy
pool, a full Redis and error replies never do."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import (
    AskError,
    ClusterCrossSlotError,
    ClusterDownError,
    ConnectionError,
    MasterDownError,
    MaxConnectionsError,
    MovedError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError
from redisvl.exceptions import RedisSearchError

from llmproxy.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from llmproxy.store.errors import (
    CacheUnavailableError,
    Fault,
    PoolExhaustedError,
    RedisSkippedError,
    classify,
    redis_call,
)
from llmproxy.store.health import FULL_WARNING_INTERVAL_S, RedisHealth
from tests.support.clock import ManualClock

THRESHOLD = 2
RESET_S = 5.0
OOM = "OOM command not allowed when used memory > 'maxmemory'."


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def health(clock: ManualClock) -> RedisHealth:
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


RAISED: dict[Fault, Exception] = {
    Fault.OUTAGE: ConnectionError("Connection refused"),
    Fault.POOL: PoolExhaustedError("all 64 Redis connections stayed busy"),
    Fault.OUT_OF_MEMORY: OutOfMemoryError(OOM),
    Fault.COMMAND: ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
}


def report(health: RedisHealth, fault: Fault | None) -> None:
    """One call through the breaker that meets `fault` (None: it works)."""
    try:
        with health.call("test command"):
            if fault is not None:
                raise RAISED[fault]
    except CacheUnavailableError as exc:
        assert exc.fault is fault


def test_outages_open_the_breaker(health: RedisHealth) -> None:
    for _ in range(THRESHOLD):
        report(health, Fault.OUTAGE)
    assert health.state is BreakerState.OPEN
    asked = False
    with pytest.raises(RedisSkippedError) as raised, health.call("test command"):
        asked = True
    assert isinstance(raised.value.__cause__, CircuitOpenError) and not asked


@pytest.mark.parametrize("fault", [Fault.POOL, Fault.OUT_OF_MEMORY, Fault.COMMAND])
def test_a_busy_pool_a_full_redis_or_an_error_reply_never_opens_it(health: RedisHealth, fault: Fault) -> None:
    for _ in range(10 * THRESHOLD):
        report(health, fault)
        report(health, fault)
    assert health.state is BreakerState.CLOSED


def test_an_answer_from_redis_even_a_refusal_ends_a_run_of_outages(health: RedisHealth) -> None:
    report(health, Fault.OUTAGE)
    report(health, Fault.OUT_OF_MEMORY)  # Redis answered: it is up
    report(health, Fault.OUTAGE)
    assert health.state is BreakerState.CLOSED


def test_a_busy_pool_says_nothing_so_the_trial_passes_to_the_next_request(
    health: RedisHealth, clock: ManualClock
) -> None:
    for _ in range(THRESHOLD):
        report(health, Fault.OUTAGE)
    clock.now += RESET_S
    report(health, Fault.POOL)  # the trial
    assert health.state is BreakerState.HALF_OPEN
    report(health, None)  # the next request is the trial, and it worked
    assert health.state is BreakerState.CLOSED


def test_a_cancelled_call_has_no_outcome_so_the_trial_passes_on(health: RedisHealth, clock: ManualClock) -> None:
    for _ in range(THRESHOLD):
        report(health, Fault.OUTAGE)
    clock.now += RESET_S
    with pytest.raises(asyncio.CancelledError), health.call("test command"):
        raise asyncio.CancelledError
    assert health.state is BreakerState.HALF_OPEN
    report(health, None)
    assert health.state is BreakerState.CLOSED


def test_a_full_redis_is_reported_at_most_once_a_minute(
    health: RedisHealth, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="llmproxy.store.health"):
        for _ in range(5):
            report(health, Fault.OUT_OF_MEMORY)
            clock.now += FULL_WARNING_INTERVAL_S / 10
        clock.now += FULL_WARNING_INTERVAL_S
        report(health, Fault.OUT_OF_MEMORY)
    warnings = [record for record in caplog.records if "Redis is full" in record.getMessage()]
    assert len(warnings) == 2


@pytest.mark.parametrize("fault", list(Fault))
def test_redis_call_maps_each_failure_to_one_error_with_its_fault(fault: Fault) -> None:
    with pytest.raises(CacheUnavailableError) as raised, redis_call("test command"):
        raise RAISED[fault]
    assert raised.value.fault is fault and raised.value.__cause__ is RAISED[fault]
    assert "test command failed" in str(raised.value)


def test_redis_call_logs_a_failure_once_and_a_full_redis_only_for_debugging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llmproxy.store.errors"):
        for fault in (Fault.OUTAGE, Fault.OUT_OF_MEMORY):
            with pytest.raises(CacheUnavailableError), redis_call("outer"), redis_call("inner"):
                raise wrapped(RAISED[fault])
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["Redis inner failed (outage): ConnectionError"]


def test_redis_call_lets_other_errors_through() -> None:
    with pytest.raises(ValueError), redis_call("test command"):
        raise ValueError("a bug, not Redis")


@pytest.mark.parametrize(
    "error",
    [
        ClusterDownError("CLUSTERDOWN The cluster is down"),
        MasterDownError("MASTERDOWN Link with MASTER is down"),
        TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
        MovedError("3999 127.0.0.1:6381"),
        AskError("3999 127.0.0.1:6381"),
        ReadOnlyError("READONLY You can't write against a read only replica."),
        SlotNotCoveredError("Slot 3999 is not covered by the cluster."),
    ],
)
def test_a_failover_under_way_is_an_outage_not_a_bad_command(error: Exception) -> None:
    assert classify(error) is Fault.OUTAGE
    assert classify(ClusterCrossSlotError("CROSSSLOT Keys in request don't hash to the same slot")) is Fault.COMMAND


def test_a_full_cluster_node_pool_is_back_pressure_not_an_outage() -> None:
    assert classify(MaxConnectionsError("Too many connections")) is Fault.POOL
