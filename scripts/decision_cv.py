"""The learned decision's training machinery for scripts/train_decision.py: dataset, folds, fits, operating points.

Every pair is described by the production `pair_features` on the production embedder's distances. A pair's
`trainable` flag says whether its source's licence allows training a shipped model on it (see TRAINING_SOURCES);
the others are scored by a model that never saw them, so their figures are held-out by construction.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from llmproxy.cache.decision.evaluation import BATCH_SIZE, LabelledPair, embed_pairs, read_pairs
from llmproxy.cache.decision.guards import features
from llmproxy.cache.decision.pair_features import FEATURE_NAMES, pair_features
from llmproxy.cache.decision.policy import Policy, decide_features
from llmproxy.embeddings.embedder import Embedder, load_model
from llmproxy.settings import EmbeddingSettings

SEED = 20240601
FOLDS = 5
MAX_DISTANCE = 0.16  # = semantic.threshold's default: beyond it no pair is served, and none is trained on
HARDNEG = "gptcache_qqp_hardneg"
QQP_SOURCES = ("gptcache_qqp", HARDNEG)  # Quora Question Pairs: non-commercial research/evaluation only
# Sources whose licences allow a shipped model to be trained on them: MeanCache (MIT) and the STS Benchmark
# subsets headlines, images and track5 (CC BY-SA 4.0). A model trained on them is a derived work under CC BY-SA 4.0.
TRAINING_SOURCES = ("meancache_new_claude", "stsb_headlines", "stsb_images", "stsb_track5")
# Guards whose flag refuses a pair outright, before the model: a changed count, unit, negation, role order or name
# must never be outvoted by a small distance, whatever the noisy labels say about the few such pairs.
VETOES = ("number_clash", "unit", "negation", "order", "name")
TREE_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 8,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "seed": SEED,
}
ROUNDS = 150

Matrix = NDArray[np.float64]
Mask = NDArray[np.bool_]
Folds = list[tuple[NDArray[np.int_], NDArray[np.int_]]]


@dataclass(frozen=True, slots=True)
class Dataset:
    pairs: tuple[LabelledPair, ...]
    x: Matrix
    y: NDArray[np.int_]
    groups: NDArray[np.int_]
    natural: Mask
    eligible: Mask  # within MAX_DISTANCE and not vetoed: the only pairs the model ever decides
    trainable: Mask  # the pair's source may train the shipped model
    rules: Mask  # the rules decision (threshold 0.16, guards) serves the pair

    def source(self, *names: str) -> Mask:
        return np.array([pair.source in names for pair in self.pairs])


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    threshold: float
    precision: float
    recall: float
    natural_precision: float
    natural_recall: float


def load_dataset(path: Path, distances_file: Path | None, training_sources: Sequence[str]) -> Dataset:
    """The pairs with their production features; distances from the embedder (or a cache file of them)."""
    pairs = tuple(read_pairs(path))
    distances = _distances(pairs, distances_file)
    prompts = {text: features(text) for pair in pairs for text in (pair.a, pair.b)}
    x = np.array([pair_features(prompts[pair.a], prompts[pair.b], d) for pair, d in zip(pairs, distances, strict=True)])
    rules = Policy(MAX_DISTANCE, guards=True)
    return Dataset(
        pairs=pairs,
        x=x,
        y=np.array([int(pair.same) for pair in pairs]),
        groups=_prompt_groups(pairs),
        natural=np.array([pair.source != HARDNEG for pair in pairs]),
        eligible=np.array([d <= MAX_DISTANCE for d in distances]) & ~_vetoed(x),
        trainable=np.array([pair.source in training_sources for pair in pairs]),
        rules=np.array(
            [decide_features(prompts[p.a], prompts[p.b], d, rules).hit for p, d in zip(pairs, distances, strict=True)]
        ),
    )


def _vetoed(x: Matrix) -> Mask:
    columns = [FEATURE_NAMES.index(name) for name in VETOES]
    return np.asarray(x[:, columns].any(axis=1), dtype=bool)


def _distances(pairs: Sequence[LabelledPair], cache: Path | None) -> list[float]:
    if cache is not None and cache.is_file():
        return [round(float(d), 3) for d in json.loads(cache.read_text())]
    embedder = Embedder(load_model(EmbeddingSettings()), max_batch=BATCH_SIZE, max_wait_ms=0)
    embedded = embed_pairs(pairs, embedder, sys.stderr)
    # Rounded to 0.001: runs of the embedder differ by about 1e-6 here, and the model file must regenerate exactly.
    distances = [round(d if d is not None else 1.0, 3) for d in embedded.distances]
    if cache is not None:
        cache.write_text(json.dumps(distances))
    return distances


def _prompt_groups(pairs: Sequence[LabelledPair]) -> NDArray[np.int_]:
    """Connected components of the graph whose edges are pairs and whose nodes are (lower-cased) prompts."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        parent[root(pair.a.lower())] = root(pair.b.lower())
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(root(pair.a.lower()), len(ids)) for pair in pairs])


def folds(data: Dataset, rows: NDArray[np.int_]) -> Folds:
    """Five stratified folds over `rows`, shared prompts kept on one side, as indices into the whole dataset."""
    splitter = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    return [(rows[train], rows[test]) for train, test in splitter.split(data.x[rows], data.y[rows], data.groups[rows])]


def fit(data: Dataset, rows: NDArray[np.int_], kind: str, hardneg_weight: float) -> object:
    rows = rows[data.eligible[rows]]
    weights = np.where(data.natural[rows], 1.0, hardneg_weight)
    if kind == "trees":
        train = lgb.Dataset(data.x[rows], data.y[rows], weight=weights, free_raw_data=False)
        return lgb.train(TREE_PARAMS, train, num_boost_round=ROUNDS)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    model.fit(data.x[rows], data.y[rows], logisticregression__sample_weight=weights)
    return model


def predict(model: object, x: Matrix) -> Matrix:
    if isinstance(model, lgb.Booster):
        return np.asarray(model.predict(x), dtype=np.float64)
    return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)  # type: ignore[attr-defined]


def scores(data: Dataset, kind: str, weight: float) -> Matrix:
    """Every pair's score from a model that never saw it: out-of-fold for the training sources, and for the
    others the model fitted on all training sources. 0 where the model does not decide (never served)."""
    train_rows = np.flatnonzero(data.trainable)
    result = np.zeros(len(data.pairs))
    for train, test in folds(data, train_rows):
        result[test] = predict(fit(data, train, kind, weight), data.x[test])
    held_out = np.flatnonzero(~data.trainable)
    if len(held_out):
        result[held_out] = predict(fit(data, train_rows, kind, weight), data.x[held_out])
    return np.where(data.eligible, result, 0.0)


def operating_point(data: Dataset, values: Matrix, recall: float, within: Mask | None = None) -> OperatingPoint:
    """The best precision among thresholds whose recall over `within` (default: all pairs) is at least `recall`."""
    within = np.ones(len(data.pairs), dtype=bool) if within is None else within
    best: OperatingPoint | None = None
    for threshold in np.unique(values[data.eligible & within]):
        point = point_at(data, values >= threshold, float(threshold), within)
        if point.recall >= recall and (best is None or point.precision > best.precision):
            best = point
    assert best is not None, "no threshold reaches the recall"
    return best


def point_at(data: Dataset, hits: Mask, threshold: float, within: Mask | None = None) -> OperatingPoint:
    """Precision and recall of `hits` over `within`, and over its natural part."""
    within = np.ones(len(data.pairs), dtype=bool) if within is None else within
    (precision, recall), (natural_p, natural_r) = rates(data, hits, within), rates(data, hits, within & data.natural)
    return OperatingPoint(threshold, precision, recall, natural_p, natural_r)


def rates(data: Dataset, hits: Mask, mask: Mask) -> tuple[float, float]:
    tp = int((hits & mask & (data.y == 1)).sum())
    served, same = int((hits & mask).sum()), int((mask & (data.y == 1)).sum())
    return tp / max(served, 1), tp / max(same, 1)
