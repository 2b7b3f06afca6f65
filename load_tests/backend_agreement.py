"""Do the ONNX and torch backends make the same L2 decisions? Distances and decisions on labelled pairs, side by side.

Embeds every prompt of the pairs file with both backends (as `llmproxy eval-pairs` does), then compares the
cosine distance of each pair and the hit decision: the configured production decision (the learned model by
default), and the rules with and without guards over a sweep of thresholds.

    .venv/bin/python load_tests/backend_agreement.py ../shared/data/semcache_pairs_dev.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmproxy.cache.decision.evaluation import BATCH_SIZE, EmbeddedPairs, decide_all, embed_pairs, read_pairs, score
from llmproxy.cache.decision.policy import Policy, load_policy_model
from llmproxy.embeddings.embedder import Embedder, load_model
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
    kind = "learned" if policy.learned is not None else "rules, guards" if policy.guards else "raw cosine"
    return f"| {kind} | {policy.threshold:g} | {cells[0]} | {cells[1]} | {differing} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    configured = load_settings().semantic
    runs = {backend: embedded_by(backend, args.file) for backend in BACKENDS}
    gap, one_sided = distance_gap(runs)
    print(f"{len(runs['onnx'].pairs)} pairs; largest |cosine distance difference| {gap:.2e}; ", end="")
    print(f"pairs embeddable by one backend only: {one_sided}\n")
    print("| decision | threshold | onnx precision / recall | torch precision / recall | decisions that differ |")
    print("|---|---:|---|---|---:|")
    learned = load_policy_model(configured.decision, configured.decision_model)
    policies = [Policy(configured.threshold, configured.guards, learned)]  # what the proxy serves
    policies += [Policy(threshold, guards) for threshold in SWEEP for guards in (True, False)]
    for policy in policies:
        print(compare(runs, policy))


if __name__ == "__main__":
    main()
