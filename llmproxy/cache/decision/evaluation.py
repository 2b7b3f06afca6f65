"""`llmproxy eval-pairs`: hit precision and recall of the L2 decision on labelled prompt pairs.

Each pair is embedded with the production embedder and decided by the production decision function, so the
figures describe what the proxy would serve. Vectors are computed once and reused across a threshold sweep.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from llmproxy.cache.decision.guards import PromptFeatures, features
from llmproxy.cache.decision.policy import Policy, decide_features
from llmproxy.embeddings.embedder import Embedder, Vector, load_model
from llmproxy.settings import EmbeddingSettings

BATCH_SIZE = 64
HARD_NEGATIVE_SOURCE = "gptcache_qqp_hardneg"  # adversarial by construction; "natural" is every other source
NATURAL = "natural (all but hard negatives)"
_PROGRESS_EVERY = 1024  # prompts between progress lines on stderr
_MAX_SWEEP_POINTS = 200


class PairFileError(Exception):
    """The pairs file cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class LabelledPair:
    """Two prompts and whether the answer to one may be served for the other."""

    a: str
    b: str
    same: bool
    source: str = ""


@dataclass(frozen=True, slots=True)
class Scores:
    """Confusion counts of hit decisions against labels, and the rates derived from them."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.precision * self.recall, self.precision + self.recall)

    @property
    def false_positive_rate(self) -> float:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def hit_rate(self) -> float:
        return _ratio(self.tp + self.fp, self.tp + self.fp + self.tn + self.fn)

    def figures(self) -> dict[str, float | int]:
        """The rates (rounded to 4 places) and counts, for the JSON summary."""
        rates = {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "false_positive_rate": self.false_positive_rate,
            "hit_rate": self.hit_rate,
        }
        counts = {"tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn}
        return {name: round(value, 4) for name, value in rates.items()} | counts


@dataclass(frozen=True, slots=True)
class EmbeddedPairs:
    """The pairs with their cosine distances (None when a prompt is beyond the model window) and prompt features."""

    pairs: tuple[LabelledPair, ...]
    distances: tuple[float | None, ...]
    features: dict[str, PromptFeatures]


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def read_pairs(path: Path, limit: int | None = None) -> list[LabelledPair]:
    """The labelled pairs of a JSONL file, at most `limit` of them; blank lines are skipped.

    Raises:
        PairFileError: the file cannot be read, or a line is not a pair object.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PairFileError(f"{path}: cannot read: {exc}") from exc
    pairs: list[LabelledPair] = []
    for number, line in enumerate(lines, start=1):
        if limit is not None and len(pairs) >= limit:
            break
        if line.strip():
            pairs.append(parse_pair(line, f"{path}:{number}"))
    return pairs


def parse_pair(line: str, where: str) -> LabelledPair:
    """One JSONL line as a pair: `a` and `b` non-empty strings, `same` a boolean, `source` optional.

    Raises:
        PairFileError: the line is not such an object; the message starts with `where`.
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PairFileError(f"{where}: not JSON: {exc.msg}") from exc
    if not isinstance(record, dict):
        raise PairFileError(f"{where}: expected an object with keys a, b, same")
    a, b, same, source = record.get("a"), record.get("b"), record.get("same"), record.get("source", "")
    if not isinstance(a, str) or not isinstance(b, str) or not a.strip() or not b.strip():
        raise PairFileError(f"{where}: 'a' and 'b' must be non-empty strings")
    if not isinstance(same, bool):
        raise PairFileError(f"{where}: 'same' must be true or false")
    return LabelledPair(a, b, same, source if isinstance(source, str) else str(source))


def parse_sweep(spec: str) -> list[float]:
    """Thresholds from "START:STOP:STEP", STOP included.

    Raises:
        ValueError: the spec is malformed, not within 0..1, or asks for too many points.
    """
    try:
        start, stop, step = (float(part) for part in spec.split(":"))
    except ValueError as exc:
        raise ValueError(f"sweep {spec!r} is not START:STOP:STEP, e.g. 0.02:0.30:0.02") from exc
    if not 0 <= start <= stop <= 1 or step <= 0:
        raise ValueError(f"sweep {spec!r} needs 0 <= START <= STOP <= 1 and STEP > 0")
    count = int(round((stop - start) / step)) + 1
    if count > _MAX_SWEEP_POINTS:
        raise ValueError(f"sweep {spec!r} has {count} points; at most {_MAX_SWEEP_POINTS}")
    return [round(start + index * step, 6) for index in range(count) if start + index * step <= stop + 1e-9]


def embed_pairs(pairs: Sequence[LabelledPair], embedder: Embedder, progress: TextIO) -> EmbeddedPairs:
    """Embed every distinct prompt once, in batches, and compute each pair's cosine distance."""
    # Length order keeps each batch's padding short: several times faster than file order.
    texts = sorted({text for pair in pairs for text in (pair.a, pair.b)}, key=len)
    vectors = _embed_all(texts, embedder, progress)
    distances = tuple(_distance(vectors[pair.a], vectors[pair.b]) for pair in pairs)
    return EmbeddedPairs(tuple(pairs), distances, {text: features(text) for text in texts})


def _embed_all(texts: list[str], embedder: Embedder, progress: TextIO) -> dict[str, Vector | None]:
    vectors: dict[str, Vector | None] = {}
    started = time.monotonic()
    for offset in range(0, len(texts), BATCH_SIZE):
        batch = texts[offset : offset + BATCH_SIZE]
        vectors.update(zip(batch, embedder.encode(batch), strict=True))
        done = offset + len(batch)
        if done % _PROGRESS_EVERY < BATCH_SIZE or done == len(texts):
            rate = done / max(time.monotonic() - started, 1e-9)
            print(f"embedded {done}/{len(texts)} prompts ({rate:.0f}/s)", file=progress, flush=True)
    return vectors


def _distance(a: Vector | None, b: Vector | None) -> float | None:
    # Unit vectors: cosine distance is 1 - dot, as the index computes it.
    return None if a is None or b is None else float(1.0 - np.dot(a, b))


def decide_all(embedded: EmbeddedPairs, policy: Policy) -> list[bool]:
    """The production decision for every pair; a prompt the model cannot embed is never a hit."""
    return [
        distance is not None
        and decide_features(embedded.features[pair.a], embedded.features[pair.b], distance, policy).hit
        for pair, distance in zip(embedded.pairs, embedded.distances, strict=True)
    ]


def score(hits: Iterable[bool], labels: Iterable[bool]) -> Scores:
    """Count hit decisions against labels: a hit on a `same` pair is a true positive."""
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for hit, same in zip(hits, labels, strict=True):
        counts[("t" if hit == same else "f") + ("p" if hit else "n")] += 1
    return Scores(**counts)


def score_by_source(pairs: Sequence[LabelledPair], hits: Sequence[bool]) -> dict[str, Scores]:
    """Scores per `source`, for files that name one."""
    sources = sorted({pair.source for pair in pairs if pair.source})
    return {
        source: score(
            (hit for pair, hit in zip(pairs, hits, strict=True) if pair.source == source),
            (pair.same for pair in pairs if pair.source == source),
        )
        for source in sources
    }


def score_natural(pairs: Sequence[LabelledPair], hits: Sequence[bool]) -> Scores:
    """Scores on every pair but the adversarial hard negatives: closer to what live traffic asks."""
    kept = [(hit, pair.same) for pair, hit in zip(pairs, hits, strict=True) if pair.source != HARD_NEGATIVE_SOURCE]
    return score((hit for hit, _ in kept), (same for _, same in kept))


def run_eval_pairs(
    path: Path,
    policy: Policy,
    embedding: EmbeddingSettings,
    *,
    sweep: Sequence[float] = (),
    limit: int | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Evaluate a pairs file and print the report, its last line one JSON object; returns the exit status."""
    try:
        pairs = read_pairs(path, limit)
    except PairFileError as exc:
        print(f"llmproxy eval-pairs: {exc}", file=err)
        return 2
    if not pairs:
        print(f"llmproxy eval-pairs: {path} holds no pairs", file=err)
        return 2
    embedder = Embedder(load_model(embedding), max_batch=BATCH_SIZE, max_wait_ms=0)
    embedded = embed_pairs(pairs, embedder, err)
    print(_describe(embedded), file=out)
    if sweep:
        _report_sweep(embedded, policy, sweep, out)
    else:
        _report_policy(embedded, policy, out)
    return 0


def _describe(embedded: EmbeddedPairs) -> str:
    same = sum(1 for pair in embedded.pairs if pair.same)
    missing = sum(1 for distance in embedded.distances if distance is None)
    return (
        f"{len(embedded.pairs)} pairs ({same} same, {len(embedded.pairs) - same} different); "
        f"{missing} with a prompt beyond the model window (never a hit)"
    )


_COLUMNS: tuple[tuple[str, int], ...] = (("precision", 10), ("recall", 8), ("f1", 8), ("fpr", 8), ("hit rate", 10))
_COLUMNS += (("tp", 6), ("fp", 6), ("tn", 6), ("fn", 6))
_LABEL_WIDTH = 34
_HEADER = " " * _LABEL_WIDTH + "".join(f"{name:>{width}}" for name, width in _COLUMNS)


def _row(label: str, scores: Scores) -> str:
    rates = (scores.precision, scores.recall, scores.f1, scores.false_positive_rate, scores.hit_rate)
    cells = [f"{rate:.3f}" for rate in rates] + [str(count) for count in (scores.tp, scores.fp, scores.tn, scores.fn)]
    return f"{label:<{_LABEL_WIDTH}}" + "".join(
        f"{cell:>{width}}" for cell, (_, width) in zip(cells, _COLUMNS, strict=True)
    )


def _report_policy(embedded: EmbeddedPairs, policy: Policy, out: TextIO) -> None:
    hits = decide_all(embedded, policy)
    labels = [pair.same for pair in embedded.pairs]
    overall, by_source = score(hits, labels), score_by_source(embedded.pairs, hits)
    natural = score_natural(embedded.pairs, hits)
    guards = "on" if policy.guards else "off"
    print(f"decision {policy.decision}, threshold {policy.threshold:g}, guards {guards}\n\n{_HEADER}", file=out)
    print(_row("all pairs", overall), file=out)
    for source, scores in by_source.items():
        print(_row(f"  {source}", scores), file=out)
    if by_source:
        print(_row(NATURAL, natural), file=out)
    if policy.guards or policy.learned is not None:
        raw = score(decide_all(embedded, Policy(policy.threshold, guards=False)), labels)
        print(_row("raw cosine, same threshold", raw), file=out)
    summary: dict[str, object] = {"decision": policy.decision, "threshold": policy.threshold, "guards": policy.guards}
    summary["pairs"] = len(hits)
    summary |= overall.figures()
    summary["by_source"] = {source: scores.figures() for source, scores in by_source.items()}
    summary["natural"] = natural.figures()
    print(json.dumps(summary), file=out)


def _report_sweep(embedded: EmbeddedPairs, policy: Policy, thresholds: Sequence[float], out: TextIO) -> None:
    """Each threshold raw (guards off) and with the policy's decision (guards on, or the learned model)."""
    labels = [pair.same for pair in embedded.pairs]
    print(f"\n{'threshold  guards':<{_LABEL_WIDTH}}{_HEADER[_LABEL_WIDTH:]}", file=out)
    rows: list[dict[str, object]] = []
    for threshold in thresholds:
        for guards in (False, True):
            scores = score(decide_all(embedded, Policy(threshold, guards, policy.learned if guards else None)), labels)
            print(_row(f"{threshold:<11g}{'on' if guards else 'off'}", scores), file=out)
            row: dict[str, object] = {"threshold": threshold, "guards": guards}
            rows.append(row | scores.figures())
    print(json.dumps({"sweep": rows}), file=out)
