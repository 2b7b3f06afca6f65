"""The circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

from llmproxy.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(3, reset_s=10, clock=Clock())
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()  # the streak is broken
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()


def test_half_open_lets_exactly_one_trial_through_and_its_result_decides() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, reset_s=10, clock=clock)
    breaker.record_failure()
    assert breaker.retry_after_s() == 10
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert [breaker.allow() for _ in range(3)] == [True, False, False]
    breaker.record_failure()  # the trial failed: open for another reset period
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert [breaker.allow() for _ in range(3)] == [True, True, True]


def test_a_trial_that_never_reports_lets_another_through_a_period_later() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, reset_s=10, clock=clock)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
