"""Time to embed one prompt with the proxy's model, in this process: what an L2 lookup or a miss must spend first."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EmbeddingTime:
    samples: int
    p50_ms: float
    p99_ms: float


def single_prompt_ms(prompt_sets: dict[str, list[str]], samples: int = 200) -> dict[str, EmbeddingTime]:
    """Per named set: embed its prompts one at a time, round-robin, with the proxy's Embedder (1 torch thread)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llmproxy.embeddings.embedder import Embedder, load_model  # torch loads only when this runs
    from llmproxy.settings import EmbeddingSettings

    embedder = Embedder(load_model(EmbeddingSettings()), 32, 0)
    results = {}
    for name, texts in prompt_sets.items():
        embedder.encode(texts[:1])  # warm-up
        timings = []
        for index in range(samples):
            started = time.perf_counter()
            embedder.encode([texts[index % len(texts)]])
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        results[name] = EmbeddingTime(samples, statistics.median(timings), timings[max(0, round(samples * 0.99) - 1)])
    return results
