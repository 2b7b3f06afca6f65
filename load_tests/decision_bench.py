"""Cost of the L2 decision per lookup: one query against 4 candidates, as `ParaphraseFinder` runs it.

    .venv/bin/python load_tests/decision_bench.py            # rules and learned, median and p99 per lookup

Each lookup computes the query's features once, then each candidate's features and its verdict (the proxy does
not store features with an entry), so this is the whole CPU cost the decision adds to an L2 lookup.
"""

from __future__ import annotations

import statistics
import time

from llmproxy.cache.decision.guards import features
from llmproxy.cache.decision.policy import Policy, decide_features, load_policy_model

LOOKUPS = 2000
QUERY = "What is the best way to learn to play the guitar as an adult beginner?"
CANDIDATES = (
    ("How can an adult beginner learn to play guitar?", 0.08),
    ("What is the best way to learn to play the piano as an adult beginner?", 0.11),
    ("What are the best guitars for beginners under $200 in 2024?", 0.14),
    ("Is it too late to learn the guitar at 40? How long does it take?", 0.15),
)


def lookup(policy: Policy) -> bool:
    query = features(QUERY)
    verdicts = [decide_features(query, features(prompt), distance, policy) for prompt, distance in CANDIDATES]
    return any(verdict.hit for verdict in verdicts)


def measure(policy: Policy) -> tuple[float, float]:
    lookup(policy)  # warm: wordfreq's table, regex caches
    times = []
    for _ in range(LOOKUPS):
        started = time.perf_counter()
        lookup(policy)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


def main() -> None:
    print(f"{LOOKUPS} lookups of 1 query x {len(CANDIDATES)} candidates (every candidate decided), ms per lookup")
    for name, policy in (
        ("rules", Policy(0.16, guards=True)),
        ("learned", Policy(0.16, guards=True, learned=load_policy_model("learned"))),
    ):
        median, p99 = measure(policy)
        print(f"{name:<8} median {median:.3f} ms   p99 {p99:.3f} ms")


if __name__ == "__main__":
    main()
