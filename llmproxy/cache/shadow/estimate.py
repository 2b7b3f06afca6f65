"""The live precision estimate of L2 hits and the error-budget step that follows from it (pure).

Precision is agree / (agree + disagree); errors (the audit call failed) say nothing about the hit and are left out.
The interval is Wilson's score interval at 95%, which stays inside [0, 1] and is honest for small counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True, slots=True)
class Interval:
    """A proportion with its 95% confidence bounds."""

    value: float
    low: float
    high: float


def wilson(successes: int, trials: int) -> Interval | None:
    """Wilson's 95% score interval of successes / trials; None without trials."""
    if trials <= 0:
        return None
    share = successes / trials
    z2 = Z_95 * Z_95
    centre = (share + z2 / (2 * trials)) / (1 + z2 / trials)
    spread = Z_95 * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return Interval(share, max(0.0, centre - spread), min(1.0, centre + spread))


@dataclass(frozen=True, slots=True)
class Tally:
    """One model's audited L2 hits: in total, and since its effective threshold last changed (the epoch)."""

    agree: int = 0
    disagree: int = 0
    errors: int = 0
    epoch: int = 0  # bumped by every threshold change: the compare-and-set token
    epoch_agree: int = 0
    epoch_disagree: int = 0
    threshold: float | None = None  # the effective threshold; None: as configured

    def precision(self) -> Interval | None:
        """agree / (agree + disagree) with its 95% bounds; None before any conclusive audit."""
        return wilson(self.agree, self.agree + self.disagree)


@dataclass(frozen=True, slots=True)
class Budget:
    """The error budget: the largest disagreement rate allowed, and how the threshold moves to keep it."""

    max_error_rate: float
    min_samples: int
    step: float
    floor: float


def clean_record_size(max_error_rate: float) -> int:
    """The fewest audits whose upper bound can be within the budget (all of them agreeing): before that many, an
    upper bound over the budget says nothing about the hits (z² / (n + z²) ≤ rate)."""
    return math.ceil(Z_95 * Z_95 * (1 - max_error_rate) / max_error_rate)


def next_threshold(tally: Tally, configured: float, budget: Budget) -> float | None:
    """The model's new effective threshold, or None to keep it.

    Tighten a step when the upper bound of the disagreement rate since the last change exceeds the budget, once
    there are enough audits for a clean record to be within it; relax a step (never past the configured threshold)
    after twice as many audits with the bound under half the budget.
    """
    trials = tally.epoch_agree + tally.epoch_disagree
    errors = wilson(tally.epoch_disagree, trials)
    if errors is None or trials < max(budget.min_samples, clean_record_size(budget.max_error_rate)):
        return None
    current = configured if tally.threshold is None else tally.threshold
    if errors.high > budget.max_error_rate and current > budget.floor:
        return round(max(budget.floor, current - budget.step), 6)
    relaxing = trials >= 2 * budget.min_samples and errors.high < budget.max_error_rate / 2
    if relaxing and current < configured:
        return round(min(configured, current + budget.step), 6)
    return None
