"""Embedding latency and throughput: one prompt at a time, and concurrent requests with and without batching.

Uses the production Embedder (worker thread, micro-batching) exactly as the proxy does, on each backend asked
for. Backends are measured side by side, interleaved within each repetition (the machine's load hits both
alike); the tables give the median over the repetitions.

    .venv/bin/python load_tests/embedding_bench.py [--backend onnx|torch|both] [--repeat 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from llmproxy.embeddings.embedder import Embedder, EncoderBackend, load_model
from llmproxy.settings import EmbeddingSettings

PROMPTS = [
    f"How do I {verb} a {noun} in {language}?"
    for verb in ("sort", "reverse", "copy", "parse", "merge", "split", "filter", "flatten")
    for noun in ("list", "string", "file", "dictionary")
    for language in ("Python", "Go", "Rust", "Java")
]
# ≈ 930 characters, ≈ 230 tokens: near the window (254 tokens); longer prompts are not embedded at all.
LONG = [f"{prompt} Explain it step by step with an example, and the pitfalls. " * 10 for prompt in PROMPTS[:8]]
CONCURRENCY = (1, 4, 16, 64)
MAX_BATCH = (1, 32)


def single_prompt_ms(embedder: Embedder, prompts: list[str], samples: int) -> tuple[float, float]:
    """p50 and p99 (ms) of embedding one prompt at a time, synchronously."""
    timings = []
    for index in range(samples):
        started = time.perf_counter()
        embedder.encode([prompts[index % len(prompts)]])
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


def side_by_side(
    backends: dict[str, EncoderBackend], repeat: int, measure: Callable[[EncoderBackend], tuple[float, float]]
) -> dict[str, tuple[float, float, list[float]]]:
    """Per backend: the medians of both figures over the repetitions, and each repetition's first figure."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in backends}
    for _ in range(repeat):
        for name, backend in backends.items():
            runs[name].append(measure(backend))
    return {
        name: (statistics.median(a for a, _ in got), statistics.median(b for _, b in got), [a for a, _ in got])
        for name, got in runs.items()
    }


def report_single(backends: dict[str, EncoderBackend], repeat: int, samples: int) -> None:
    print("| backend | prompt | p50 ms | p99 ms | p50 of each run |")
    print("|---|---|---:|---:|---|")
    for label, prompts in (("short", PROMPTS), ("~230 tokens", LONG)):
        results = side_by_side(backends, repeat, lambda b, p=prompts: single_prompt_ms(Embedder(b, 1, 0), p, samples))
        for name, (p50, p99, each) in results.items():
            print(f"| {name} | {label} | {p50:.2f} | {p99:.2f} | {', '.join(f'{v:.2f}' for v in each)} |")


def report_concurrent(backends: dict[str, EncoderBackend], repeat: int, seconds: float) -> None:
    print("\n| backend | concurrency | max_batch | prompts/s | p50 ms per request |")
    print("|---|---:|---:|---:|---:|")
    for concurrency in CONCURRENCY:
        for max_batch in MAX_BATCH:

            def measure(
                backend: EncoderBackend, batch: int = max_batch, callers: int = concurrency
            ) -> tuple[float, float]:
                return asyncio.run(concurrent(Embedder(backend, batch, 0), callers, seconds))

            results = side_by_side(backends, repeat, measure)
            for name, (rate, latency, _) in results.items():
                print(f"| {name} | {concurrency} | {max_batch} | {rate:.0f} | {latency:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["onnx", "torch", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the tables show medians")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each concurrent measurement")
    parser.add_argument("--samples", type=int, default=300, help="prompts per single-prompt measurement")
    parser.add_argument("--single-only", action="store_true", help="skip the concurrent table")
    args = parser.parse_args()
    names = ["onnx", "torch"] if args.backend == "both" else [args.backend]
    backends = {name: load_model(EmbeddingSettings(backend=name)) for name in names}
    for backend in backends.values():  # the first runs allocate: not part of any measurement
        backend.encode(PROMPTS[:4])
    print(f"1 intra-op thread per backend; medians of {args.repeat} interleaved runs\n")
    report_single(backends, args.repeat, args.samples)
    if not args.single_only:
        report_concurrent(backends, args.repeat, args.seconds)


if __name__ == "__main__":
    main()
