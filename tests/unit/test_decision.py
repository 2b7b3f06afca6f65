"""The L2 decision: distance first, then guards, then the tighter limit for near-identical prompts."""

from __future__ import annotations

import pytest

from llmproxy.cache.decision.guards import features
from llmproxy.cache.decision.policy import NEAR_IDENTICAL_SHARE, Policy, Verdict, decide, decide_features

GUARDED = Policy(threshold=0.16, guards=True)
RAW = Policy(threshold=0.16, guards=False)


REWORDED = ("How can I cook rice?", "What is a simple method to prepare rice at home?")


def test_a_reworded_paraphrase_within_the_threshold_is_a_hit() -> None:
    assert decide(*REWORDED, 0.12, GUARDED) == Verdict(True, "hit")


def test_a_candidate_beyond_the_threshold_is_a_miss_whatever_the_guards() -> None:
    verdict = decide("How do I learn Python fast?", "How do I learn Python fast?", 0.23, GUARDED)
    assert verdict == Verdict(False, "distance 0.230 > 0.160")
    assert decide("a", "a", 0.23, RAW) == verdict


def test_the_threshold_itself_is_still_a_hit() -> None:
    assert decide(*REWORDED, 0.16, GUARDED).hit


def test_a_paraphrase_with_a_changed_number_is_a_miss() -> None:
    verdict = decide("Paris to London by train in 2 hours?", "Paris to London by train in 3 hours?", 0.01, GUARDED)
    assert verdict == Verdict(False, "guard: number 2 vs 3")


@pytest.mark.parametrize(
    ("query", "candidate"),
    [
        ("Is coffee bad for you?", "Is coffee not bad for you?"),
        ("Is Apple better than Samsung?", "Is Samsung better than Apple?"),
        ("Best hotels in Rome?", "Best hotels in Milan?"),
    ],
)
def test_guarded_differences_are_misses_even_at_tiny_distances(query: str, candidate: str) -> None:
    verdict = decide(query, candidate, 0.005, GUARDED)
    assert not verdict.hit and verdict.reason.startswith("guard: ")


def test_without_guards_only_the_distance_counts() -> None:
    assert decide("Is coffee bad for you?", "Is coffee not bad for you?", 0.005, RAW) == Verdict(True, "hit")


def test_near_identical_prompts_must_be_closer_than_the_threshold() -> None:
    limit = GUARDED.threshold * NEAR_IDENTICAL_SHARE
    query, candidate = "best eyeshadow for blue eyes", "best eyeshadow for brown eyes"
    verdict = decide(query, candidate, limit + 0.01, GUARDED)
    assert not verdict.hit and "near-identical" in verdict.reason
    assert decide(query, candidate, limit - 0.01, GUARDED).hit


def test_prompts_that_differ_in_several_words_get_the_whole_threshold() -> None:
    assert decide(*REWORDED, 0.15, GUARDED).hit
    assert not decide("How do I cook rice?", "How can I cook rice?", 0.15, GUARDED).hit


def test_decide_features_agrees_with_decide() -> None:
    query, candidate = "How far is Lyon from Paris?", "How far is Paris from Lyon?"
    for distance in (0.01, 0.1, 0.3):
        expected = decide(query, candidate, distance, GUARDED)
        assert decide_features(features(query), features(candidate), distance, GUARDED) == expected
