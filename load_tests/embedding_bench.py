"""Embedding latency and throughput: one prompt at a time, and concurrent requests with and without batching.

Uses the production Embedder (worker thread, micro-batching) exactly as the proxy does.

    .venv/bin/python load_tests/embedding_bench.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from llmproxy.embeddings.embedder import Embedder, load_model
from llmproxy.settings import EmbeddingSettings

PROMPTS = [
    f"How do I {verb} a {noun} in {language}?"
    for verb in ("sort", "reverse", "copy", "parse", "merge", "split", "filter", "flatten")
    for noun in ("list", "string", "file", "dictionary")
    for language in ("Python", "Go", "Rust", "Java")
]


def single_prompt_ms(embedder: Embedder, samples: int = 300) -> tuple[float, float]:
    timings = []
    for index in range(samples):
        started = time.perf_counter()
        embedder.encode([PROMPTS[index % len(PROMPTS)]])
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


async def concurrent(embedder: Embedder, concurrency: int, seconds: float) -> tuple[float, float]:
    """Prompts/s and p50 latency (ms) with `concurrency` callers awaiting embed() in a loop."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller(offset: int) -> None:
        index = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await embedder.embed(PROMPTS[index % len(PROMPTS)])
            latencies.append((time.perf_counter() - started) * 1000)
            index += concurrency

    batcher = asyncio.create_task(embedder.run_batcher())
    started = time.perf_counter()
    await asyncio.gather(*(caller(offset) for offset in range(concurrency)))
    elapsed = time.perf_counter() - started
    batcher.cancel()
    return len(latencies) / elapsed, statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    model = load_model(EmbeddingSettings())
    p50, p99 = single_prompt_ms(Embedder(model, 1, 0))
    print(f"single prompt, 1 torch thread: p50 {p50:.2f} ms, p99 {p99:.2f} ms\n")
    print("| concurrency | max_batch | prompts/s | p50 ms per request |")
    print("|---:|---:|---:|---:|")
    for concurrency in (1, 4, 16, 64):
        for max_batch in (1, 32):
            rate, latency = asyncio.run(concurrent(Embedder(model, max_batch, 0), concurrency, args.seconds))
            print(f"| {concurrency} | {max_batch} | {rate:.0f} | {latency:.1f} |")


if __name__ == "__main__":
    main()
