"""The learned L2 decision's model over `pair_features`, evaluated in pure Python: a logit, then a probability.

The logit is `bias + weights . features` (a logistic regression, scaling folded in) plus the leaf values of any
gradient-boosted trees, so one file format holds either kind. The model is a small JSON file (`decision_model.json`
next to this module) that `scripts/train_decision.py` writes from the labelled dev pairs, seeded, so it regenerates
byte for byte. Serving needs no ML library: a tree is flat arrays walked from the root.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from llmproxy.cache.decision.pair_features import FEATURE_NAMES, PairFeatures

__all__ = ["DEFAULT_MODEL_FILE", "LearnedModel", "LearnedModelError", "Tree", "load_learned_model"]

DEFAULT_MODEL_FILE = Path(__file__).with_name("decision_model.json")
FORMAT = "llmproxy-decision-1"


class LearnedModelError(Exception):
    """The model file cannot be read or does not fit this code's features; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Tree:
    """One regression tree as flat arrays: node i splits on `feature[i] <= threshold[i]`.

    A child index >= 0 is another node; a negative child `~j` is leaf j, worth `leaves[j]`.
    """

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    leaves: tuple[float, ...]

    def value(self, row: PairFeatures) -> float:
        """The leaf value this tree gives a feature row."""
        if not self.feature:
            return self.leaves[0]
        node = 0
        while node >= 0:
            node = self.left[node] if row[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.leaves[~node]


@dataclass(frozen=True, slots=True)
class LearnedModel:
    """The logit's terms, the probability at or above which a pair is served, and the distance beyond which none is."""

    bias: float
    weights: tuple[float, ...]
    trees: tuple[Tree, ...]
    threshold: float
    max_distance: float
    description: str
    vetoes: tuple[int, ...] = ()  # features (guard flags) that refuse a pair whatever the logit

    def vetoed(self, row: PairFeatures) -> str | None:
        """The first veto feature set in the row, by name; None when the model may decide."""
        return next((FEATURE_NAMES[index] for index in self.vetoes if row[index]), None)

    def probability(self, row: PairFeatures) -> float:
        """The model's probability that one cached answer serves both prompts."""
        logit = self.bias + sum(weight * value for weight, value in zip(self.weights, row, strict=True))
        logit += sum(tree.value(row) for tree in self.trees)
        return 1.0 / (1.0 + math.exp(-logit))


def load_learned_model(path: Path = DEFAULT_MODEL_FILE) -> LearnedModel:
    """Read a model file written by `scripts/train_decision.py`.

    Raises:
        LearnedModelError: the file is missing, malformed, or was trained on other features.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise LearnedModelError(f"{path}: not a {FORMAT} model file")
        if tuple(document["features"]) != FEATURE_NAMES:
            raise LearnedModelError(f"{path}: trained on other features; retrain with scripts/train_decision.py")
        weights = tuple(float(weight) for weight in document["weights"])
        if len(weights) != len(FEATURE_NAMES):
            raise LearnedModelError(f"{path}: {len(weights)} weights for {len(FEATURE_NAMES)} features")
        trees = tuple(_tree(raw) for raw in document["trees"])
        return LearnedModel(
            bias=float(document["bias"]),
            weights=weights,
            trees=trees,
            threshold=float(document["threshold"]),
            max_distance=float(document["max_distance"]),
            description=str(document["about"]),
            vetoes=tuple(FEATURE_NAMES.index(name) for name in document["vetoes"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LearnedModelError(f"{path}: cannot load the learned decision model: {exc}") from exc


def _tree(raw: dict[str, list[float]]) -> Tree:
    nodes = len(raw["feature"])
    tree = Tree(
        feature=tuple(int(index) for index in raw["feature"]),
        threshold=tuple(float(value) for value in raw["threshold"]),
        left=tuple(int(index) for index in raw["left"]),
        right=tuple(int(index) for index in raw["right"]),
        leaves=tuple(float(value) for value in raw["leaves"]),
    )
    children = (*tree.left, *tree.right)
    if not (len(tree.threshold) == len(tree.left) == len(tree.right) == nodes) or not tree.leaves:
        raise ValueError("tree arrays of different lengths")
    if any(child >= nodes or ~child >= len(tree.leaves) for child in children):
        raise ValueError("a tree child points outside the tree")
    if any(0 <= child <= node for node in range(nodes) for child in (tree.left[node], tree.right[node])):
        raise ValueError("a tree child points back up the tree")  # it would never reach a leaf
    if any(not 0 <= index < len(FEATURE_NAMES) for index in tree.feature):
        raise ValueError("a tree splits on an unknown feature")
    return tree
