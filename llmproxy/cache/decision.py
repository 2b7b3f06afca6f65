"""The one L2 hit decision: may the answer cached for `candidate` be served for `query`?

A near neighbour is a hit when its cosine distance is within the threshold and, with guards on, no guard
tells the prompts apart. Guards also halve the threshold for near-identical prompts (at most one content
word added, dropped or swapped): the embedding puts such prompts close whatever the edit, so only a very
small distance shows the edit is harmless ("best shoes for running" vs "best shoes for hiking").
"""

from __future__ import annotations

from dataclasses import dataclass

from llmproxy.cache.guards import PromptFeatures, changed_words, features, first_difference

NEAR_IDENTICAL_CHANGES = 1  # content words changed, at most, for prompts to count as near-identical
NEAR_IDENTICAL_SHARE = 0.5  # share of the threshold such prompts may be apart


@dataclass(frozen=True, slots=True)
class Policy:
    """How strict the L2 cache is: the largest cosine distance for a hit, and whether guards run."""

    threshold: float
    guards: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to serve the candidate, and why: "hit", "distance 0.230 > 0.100", "guard: number 2 vs 3"."""

    hit: bool
    reason: str


def decide(query: str, candidate: str, distance: float, policy: Policy) -> Verdict:
    """Decide one KNN candidate for a query prompt; the caller serves the first hit, nearest first."""
    if distance > policy.threshold or not policy.guards:
        return _by_distance(distance, policy.threshold)
    return decide_features(features(query), features(candidate), distance, policy)


def decide_features(query: PromptFeatures, candidate: PromptFeatures, distance: float, policy: Policy) -> Verdict:
    """`decide` on precomputed features, for callers that compare one prompt with many."""
    if distance > policy.threshold or not policy.guards:
        return _by_distance(distance, policy.threshold)
    difference = first_difference(query, candidate)
    if difference is not None:
        return Verdict(False, f"guard: {difference}")
    changed = changed_words(query, candidate)
    if changed <= NEAR_IDENTICAL_CHANGES and distance > policy.threshold * NEAR_IDENTICAL_SHARE:
        limit = policy.threshold * NEAR_IDENTICAL_SHARE
        return Verdict(False, f"distance {distance:.3f} > {limit:.3f} for near-identical prompts ({changed} changed)")
    return Verdict(True, "hit")


def _by_distance(distance: float, threshold: float) -> Verdict:
    if distance > threshold:
        return Verdict(False, f"distance {distance:.3f} > {threshold:.3f}")
    return Verdict(True, "hit")
