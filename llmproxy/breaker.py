"""A circuit breaker (pure): stop calling a failing dependency, then let one trial call through now and then.

closed ──(N consecutive failures)──▶ open ──(reset_s elapsed)──▶ half-open: one trial call
   ▲                                  ▲                              │
   └────────────(trial succeeded)─────┼──────────────────────────────┤
                                      └───────(trial failed)─────────┘
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures; single-threaded use (one event loop)."""

    def __init__(self, failure_threshold: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failure_threshold
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_at: float | None = None  # when the running trial was let through

    @property
    def state(self) -> BreakerState:
        """Where the breaker stands now (an open breaker whose time is up reads as half-open)."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._trial_at is not None or self._clock() - self._opened_at >= self._reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a call may go ahead; in half-open, True for one caller per reset period until one reports."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        now = self._clock()
        # A trial that never reported (its call did not happen after all) must not block the next one forever.
        if state is BreakerState.HALF_OPEN and (self._trial_at is None or now - self._trial_at >= self._reset_s):
            self._trial_at = now
            return True
        return False

    def retry_after_s(self) -> float:
        """Seconds until the next trial call is allowed (0 when calls are allowed now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._reset_s - (self._clock() - self._opened_at))

    def record_success(self) -> None:
        """A call worked: close the breaker."""
        self._failures = 0
        self._opened_at = None
        self._trial_at = None

    def record_failure(self) -> None:
        """A call failed: open after the threshold, or again at once when it was the trial call."""
        self._failures += 1
        if self._trial_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_at = None
