"""Do the ONNX and torch backends make the same L2 decisions? Distances and decisions on labelled pairs, side by side.

Embeds every prompt of the pairs file with both backends (as `llmproxy eval-pairs` does), then compares the
cosine distance of each pair and the production hit decision at the configured threshold, with and without the
guards, plus a sweep of thresholds.

    .venv/bin/python load_tests/backend_agreement.py ../shared/data/semcache_pairs_dev.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmproxy.cache.decision import Policy
from llmproxy.embeddings import Embedder, load_model
from llmproxy.evaluation import BATCH_SIZE, EmbeddedPairs, decide_all, embed_pairs, read_pairs, score
from llmproxy.settings import EmbeddingSettings, load_settings

BACKENDS = ("onnx", "torch")
SWEEP = (0.06, 0.08, 0.10, 0.12, 0.14, 0.16, 0.18, 0.20, 0.25)


def embedded_by(backend: str, path: Path) -> EmbeddedPairs:
    embedder = Embedder(load_model(EmbeddingSettings(backend=backend)), max_batch=BATCH_SIZE, max_wait_ms=0)
    return embed_pairs(read_pairs(path), embedder, sys.stderr)


def distance_gap(runs: dict[str, EmbeddedPairs]) -> tuple[float, int]:
    """Largest |distance difference| over the pairs, and pairs embeddable by one backend only."""
    onnx, torch = runs["onnx"].distances, runs["torch"].distances
    one_sided = sum(1 for a, b in zip(onnx, torch, strict=True) if (a is None) != (b is None))
    gaps = [abs(a - b) for a, b in zip(onnx, torch, strict=True) if a is not None and b is not None]
    return max(gaps, default=0.0), one_sided


def compare(runs: dict[str, EmbeddedPairs], policy: Policy) -> str:
    labels = [pair.same for pair in runs["onnx"].pairs]
    decisions = {backend: decide_all(run, policy) for backend, run in runs.items()}
    differing = sum(1 for a, b in zip(decisions["onnx"], decisions["torch"], strict=True) if a != b)
    cells = []
    for backend in BACKENDS:
        scores = score(decisions[backend], labels)
        cells.append(f"{scores.precision:.3f} / {scores.recall:.3f} ({scores.tp} tp, {scores.fp} fp)")
    guards = "on" if policy.guards else "off"
    return f"| {policy.threshold:g} | {guards} | {cells[0]} | {cells[1]} | {differing} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    configured = load_settings().semantic
    runs = {backend: embedded_by(backend, args.file) for backend in BACKENDS}
    gap, one_sided = distance_gap(runs)
    print(f"{len(runs['onnx'].pairs)} pairs; largest |cosine distance difference| {gap:.2e}; ", end="")
    print(f"pairs embeddable by one backend only: {one_sided}\n")
    print("| threshold | guards | onnx precision / recall | torch precision / recall | decisions that differ |")
    print("|---:|---|---|---|---:|")
    policies = [Policy(configured.threshold, guards=True), Policy(configured.threshold, guards=False)]
    sweep = [threshold for threshold in SWEEP if threshold != configured.threshold]
    policies += [Policy(threshold, guards) for threshold in sweep for guards in (True, False)]
    for policy in policies:
        print(compare(runs, policy))


if __name__ == "__main__":
    main()
