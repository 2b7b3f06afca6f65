"""Circuit breaker of one dependency (an upstream, or Redis): a state machine over outcomes, clock injected (pure).

    CLOSED ──N consecutive failures──▶ OPEN ──reset_s later, next request──▶ HALF_OPEN (one trial)
      ▲                                  ▲                                        │
      └────────── trial succeeded ───────┼──────────── trial failed ──────────────┘

Each admitted request holds a Ticket. Opening starts a new generation, so outcomes of requests admitted
before (still in flight when it opened) are ignored: they say nothing about the upstream since.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

# What callers are told to wait while the trial is under way: it settles within one request's time.
TRIAL_RETRY_AFTER_S = 1.0


class BreakerState(IntEnum):
    """Ordered by severity, so the worst of several workers is their maximum."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitOpenError(Exception):
    """The breaker is open (or its one trial is under way): the upstream is not to be called."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"circuit open for another {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Ticket:
    """Admission of one request: the generation it belongs to, and whether it is the half-open trial."""

    generation: int
    trial: bool = False


def _ignore(state: BreakerState) -> None:
    pass


class CircuitBreaker:
    """Fails fast while an upstream keeps failing, and lets one trial request find out when it is back."""

    def __init__(
        self,
        failure_threshold: int,
        reset_s: float,
        clock: Callable[[], float],
        on_change: Callable[[BreakerState], None] = _ignore,
    ) -> None:
        self._threshold = failure_threshold
        self._reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._trial_out = False

    @property
    def state(self) -> BreakerState:
        """The state as of the last admission or outcome (OPEN turns HALF_OPEN only when a request comes)."""
        return self._state

    def admit(self) -> Ticket:
        """A ticket for one request.

        Raises:
            CircuitOpenError: the breaker is open, or half-open with its trial already under way.
        """
        if self._state is BreakerState.OPEN:
            remaining = self._opened_at + self._reset_s - self._clock()
            if remaining > 0:
                raise CircuitOpenError(remaining)
            self._move(BreakerState.HALF_OPEN)
        if self._state is BreakerState.HALF_OPEN:
            if self._trial_out:
                raise CircuitOpenError(TRIAL_RETRY_AFTER_S)
            self._trial_out = True
            return Ticket(self._generation, trial=True)
        return Ticket(self._generation)

    def is_current(self, ticket: Ticket) -> bool:
        """Whether the breaker has not opened since the ticket was issued (a retry is still worth it)."""
        return ticket.generation == self._generation

    def record(self, ticket: Ticket, success: bool) -> None:
        """The outcome of an admitted request."""
        if not self.is_current(ticket):
            return
        if ticket.trial:
            self._trial_out = False
            if success:
                self._move(BreakerState.CLOSED)
            else:
                self._open()
        elif success:
            self._failures = 0
        else:
            self._failures += 1
            if self._failures >= self._threshold:
                self._open()

    def observe(self, success: bool) -> None:
        """An outcome of a call made without a ticket of its own (e.g. a cache write-back after a lookup)."""
        self.record(Ticket(self._generation), success)

    def release(self, ticket: Ticket) -> None:
        """A request that ended without an outcome (the caller left): its trial, if any, goes to the next one."""
        if ticket.trial and self.is_current(ticket):
            self._trial_out = False

    def _open(self) -> None:
        self._generation += 1
        self._failures = 0
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            self._on_change(state)
