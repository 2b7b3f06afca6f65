"""The live precision estimate (Wilson's interval) and the error budget's threshold steps."""

from __future__ import annotations

import pytest

from llmproxy.cache.shadow.estimate import Budget, Tally, clean_record_size, next_threshold, wilson

BUDGET = Budget(max_error_rate=0.1, min_samples=30, step=0.02, floor=0.04)


def test_wilson_interval_matches_the_textbook_values() -> None:
    interval = wilson(8, 10)
    assert interval is not None
    assert (interval.value, interval.low, interval.high) == pytest.approx((0.8, 0.4902, 0.9433), abs=1e-4)


def test_wilson_interval_stays_inside_zero_and_one() -> None:
    none, every = wilson(0, 5), wilson(5, 5)
    assert none is not None and every is not None
    assert none.low == 0.0 and 0 < none.high < 0.5
    assert every.high == 1.0 and 0.5 < every.low < 1


def test_no_trials_is_no_estimate() -> None:
    assert wilson(0, 0) is None
    assert Tally().precision() is None


def test_precision_leaves_errors_out() -> None:
    precision = Tally(agree=9, disagree=1, errors=50).precision()
    assert precision is not None and precision.value == 0.9


def test_over_budget_tightens_one_step() -> None:
    tally = Tally(epoch_agree=25, epoch_disagree=10)
    assert next_threshold(tally, configured=0.16, budget=BUDGET) == 0.14


def test_tightening_waits_for_enough_audits() -> None:
    assert next_threshold(Tally(epoch_disagree=29), configured=0.16, budget=BUDGET) is None


def test_tightening_waits_until_a_clean_record_could_be_within_budget() -> None:
    # 0 of 34 has an upper bound of 0.102, over a 10% budget: only from 35 audits can the bound clear it.
    assert clean_record_size(0.1) == 35
    bound = wilson(0, 35)
    assert bound is not None and bound.high <= 0.1
    assert next_threshold(Tally(epoch_agree=34), configured=0.16, budget=BUDGET) is None
    assert next_threshold(Tally(epoch_agree=30, epoch_disagree=4), configured=0.16, budget=BUDGET) is None
    assert next_threshold(Tally(epoch_agree=30, epoch_disagree=5), configured=0.16, budget=BUDGET) == 0.14


def test_tightening_stops_at_the_floor() -> None:
    tally = Tally(epoch_disagree=35, threshold=0.05)
    assert next_threshold(tally, configured=0.16, budget=BUDGET) == 0.04
    assert next_threshold(Tally(epoch_disagree=35, threshold=0.04), configured=0.16, budget=BUDGET) is None


def test_well_within_budget_relaxes_after_twice_the_audits() -> None:
    tightened = 0.10
    assert next_threshold(Tally(epoch_agree=59, threshold=tightened), 0.16, BUDGET) is None
    assert next_threshold(Tally(epoch_agree=200, threshold=tightened), 0.16, BUDGET) == 0.12


def test_relaxing_never_passes_the_configured_threshold() -> None:
    assert next_threshold(Tally(epoch_agree=200, threshold=0.15), 0.16, BUDGET) == 0.16
    assert next_threshold(Tally(epoch_agree=200), 0.16, BUDGET) is None


def test_within_budget_but_not_well_within_keeps_the_threshold() -> None:
    # 3 of 100: the upper bound (≈ 0.085) is under the budget but over half of it.
    assert next_threshold(Tally(epoch_agree=97, epoch_disagree=3, threshold=0.1), 0.16, BUDGET) is None
