"""The circuit breaker: opens after N consecutive failures, fails fast, lets one trial through after the reset."""

from __future__ import annotations

import pytest

from llmproxy.breaker import TRIAL_RETRY_AFTER_S, BreakerState, CircuitBreaker, CircuitOpenError, Ticket
from tests.support.clock import ManualClock

THRESHOLD = 3
RESET_S = 30.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def changes() -> list[BreakerState]:
    return []


@pytest.fixture
def breaker(clock: ManualClock, changes: list[BreakerState]) -> CircuitBreaker:
    return CircuitBreaker(THRESHOLD, RESET_S, clock, changes.append)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record(breaker.admit(), success=False)


def open_breaker(breaker: CircuitBreaker, clock: ManualClock) -> None:
    fail(breaker, THRESHOLD)
    assert breaker.state is BreakerState.OPEN
    clock.now += RESET_S


def test_opens_after_n_consecutive_failures(breaker: CircuitBreaker, changes: list[BreakerState]) -> None:
    fail(breaker, THRESHOLD - 1)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert changes == [BreakerState.OPEN]


def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    fail(breaker, THRESHOLD - 1)
    breaker.record(breaker.admit(), success=True)
    fail(breaker, THRESHOLD - 1)
    assert breaker.state is BreakerState.CLOSED


def test_open_fails_fast_with_the_remaining_time(breaker: CircuitBreaker, clock: ManualClock) -> None:
    fail(breaker, THRESHOLD)
    clock.now += 10
    with pytest.raises(CircuitOpenError) as raised:
        breaker.admit()
    assert raised.value.retry_after_s == pytest.approx(RESET_S - 10)


def test_after_the_reset_exactly_one_trial_goes_through(
    breaker: CircuitBreaker, clock: ManualClock, changes: list[BreakerState]
) -> None:
    open_breaker(breaker, clock)
    trial = breaker.admit()
    assert trial.trial and breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpenError) as raised:
        breaker.admit()
    assert raised.value.retry_after_s == TRIAL_RETRY_AFTER_S
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN]


def test_a_successful_trial_closes_it(breaker: CircuitBreaker, clock: ManualClock, changes: list[BreakerState]) -> None:
    open_breaker(breaker, clock)
    breaker.record(breaker.admit(), success=True)
    assert breaker.state is BreakerState.CLOSED
    assert not breaker.admit().trial
    assert changes[-1] is BreakerState.CLOSED
    fail(breaker, THRESHOLD - 1)  # the count starts over
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_trial_opens_it_again_for_a_full_reset_period(breaker: CircuitBreaker, clock: ManualClock) -> None:
    open_breaker(breaker, clock)
    breaker.record(breaker.admit(), success=False)
    assert breaker.state is BreakerState.OPEN
    clock.now += RESET_S - 1
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    clock.now += 1
    assert breaker.admit().trial


def test_an_abandoned_trial_lets_the_next_request_try(breaker: CircuitBreaker, clock: ManualClock) -> None:
    open_breaker(breaker, clock)
    breaker.release(breaker.admit())
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.admit().trial


def test_outcomes_of_requests_admitted_before_it_opened_are_ignored(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    early = [breaker.admit() for _ in range(2)]
    fail(breaker, THRESHOLD)
    assert not breaker.is_current(early[0])
    clock.now += RESET_S
    trial = breaker.admit()
    breaker.record(early[0], success=True)  # does not close it: only the trial decides
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record(trial, success=True)
    breaker.record(early[1], success=False)  # does not count towards opening it again
    fail(breaker, THRESHOLD - 1)
    assert breaker.state is BreakerState.CLOSED


def test_releasing_a_closed_state_ticket_changes_nothing(breaker: CircuitBreaker) -> None:
    fail(breaker, THRESHOLD - 1)
    breaker.release(breaker.admit())
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert breaker.is_current(Ticket(0)) is False


def test_observed_outcomes_without_a_ticket_count_like_any_other(clock: ManualClock) -> None:
    breaker = CircuitBreaker(THRESHOLD, RESET_S, clock)
    for _ in range(THRESHOLD):
        breaker.observe(success=False)
    assert breaker.state is BreakerState.OPEN
    clock.now += RESET_S
    trial = breaker.admit()
    breaker.observe(success=True)  # e.g. a write-back after the trial's lookup: closes nothing by itself
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record(trial, success=True)
    assert breaker.state is BreakerState.CLOSED
