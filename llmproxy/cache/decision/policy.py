"""The one L2 hit decision: may the answer cached for `candidate` be served for `query`?

Two decisions share the distance bound. `rules`: a near neighbour is a hit when its cosine distance is within
the threshold and, with guards on, no guard tells the prompts apart. Guards also halve the threshold for
near-identical prompts (at most one content word added, dropped or swapped): the embedding puts such prompts
close whatever the edit, so only a very small distance shows the edit is harmless ("best shoes for running" vs
"best shoes for hiking"). `learned`: within the bound (and the model's own), a small model over the pair's
features (distance, each guard's flag, overlap, rarity) must judge the pair the same question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llmproxy.cache.decision.guards import PromptFeatures, changed_words, features, first_difference
from llmproxy.cache.decision.learned import DEFAULT_MODEL_FILE, LearnedModel, load_learned_model
from llmproxy.cache.decision.pair_features import pair_features, rarity

Decision = Literal["rules", "learned"]

NEAR_IDENTICAL_CHANGES = 1  # content words changed, at most, for prompts to count as near-identical
NEAR_IDENTICAL_SHARE = 0.5  # share of the threshold such prompts may be apart


@dataclass(frozen=True, slots=True)
class Policy:
    """How strict the L2 cache is: the largest cosine distance for a hit, whether guards run, which decision.

    With a `learned` model the guards are the model's inputs, so `guards` only matters to the rules.
    """

    threshold: float
    guards: bool
    learned: LearnedModel | None = None

    @property
    def decision(self) -> Decision:
        """Which decision this policy runs."""
        return "rules" if self.learned is None else "learned"


def load_policy_model(decision: Decision, model_file: Path | None = None) -> LearnedModel | None:
    """The model a decision needs (None for the rules), loaded once at startup and ready to serve.

    Raises:
        LearnedModelError: the learned decision's model file cannot be used.
    """
    if decision == "rules":
        return None
    model = load_learned_model(model_file or DEFAULT_MODEL_FILE)
    rarity("the")  # wordfreq reads its English table on first use: pay it here, not on a request
    return model


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to serve the candidate, and why: "hit", "distance 0.230 > 0.100", "guard: number 2 vs 3"."""

    hit: bool
    reason: str


def decide(query: str, candidate: str, distance: float, policy: Policy) -> Verdict:
    """Decide one KNN candidate for a query prompt; the caller serves the first hit, nearest first."""
    if distance > policy.threshold or (not policy.guards and policy.learned is None):
        return _by_distance(distance, policy.threshold)
    return decide_features(features(query), features(candidate), distance, policy)


def decide_features(query: PromptFeatures, candidate: PromptFeatures, distance: float, policy: Policy) -> Verdict:
    """`decide` on precomputed features, for callers that compare one prompt with many."""
    if policy.learned is not None:
        return _by_model(query, candidate, distance, min(policy.threshold, policy.learned.max_distance), policy.learned)
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


def _by_model(
    query: PromptFeatures, candidate: PromptFeatures, distance: float, bound: float, model: LearnedModel
) -> Verdict:
    if distance > bound:
        return _by_distance(distance, bound)
    row = pair_features(query, candidate, distance)
    veto = model.vetoed(row)
    if veto is not None:
        return Verdict(False, f"learned: veto {veto}")
    probability = model.probability(row)
    if probability < model.threshold:
        return Verdict(False, f"learned: p {probability:.3f} < {model.threshold:.3f}")
    return Verdict(True, "hit")


def _by_distance(distance: float, threshold: float) -> Verdict:
    if distance > threshold:
        return Verdict(False, f"distance {distance:.3f} > {threshold:.3f}")
    return Verdict(True, "hit")
