"""What routing costs: a short prompt's decision (one matrix-vector product) and long prompts cut into passages.

In this process, with the proxy's Embedder (1 torch thread, its batcher running) and Router over the example
routes. Long prompts are built from distinct questions of the dev pairs (every sentence is new, the worst case
for the number of passages) and from repeated padding (deduplicated to a few passages), up to max_windows.

    .venv/bin/python load_tests/route_long_prompts.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO.parent.parent / "shared" / "data" / "semcache_pairs_dev.jsonl"
ROUTES = REPO / "config" / "routes.example.yaml"
PADDING = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. "
LENGTHS = (500, 1_000, 2_000, 4_000)  # tokens


def distinct_sentences(path: Path) -> list[str]:
    questions = [json.loads(line)["a"].strip() for line in path.read_text().splitlines() if line.strip()]
    return [q if q.endswith(("?", ".", "!")) else q + "." for q in dict.fromkeys(questions)]


def prompt_of(sentences: list[str], tokens: int, count_tokens: object) -> str:
    assert callable(count_tokens)
    text, index = "", 0
    while count_tokens(text) < tokens:
        text += sentences[index % len(sentences)] + " "
        index += 1
    return text


async def measure(repeats: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llmproxy.embeddings.embedder import Embedder, load_model
    from llmproxy.routing import Router, load_routes
    from llmproxy.routing.passages import cut_passages
    from llmproxy.settings import EmbeddingSettings

    embedder = Embedder(load_model(EmbeddingSettings()), 32, 0)
    router = Router(embedder, embedder.dimension, max_windows=16, timeout_s=600)
    await router.load(load_routes(ROUTES, frozenset()))
    embedder.encode(["warm up", "warm up " * 127])
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; times scale with it")
    vector = embedder.encode(["How do I reverse a list in Python?"])[0]
    assert vector is not None
    started = time.perf_counter()
    for _ in range(1_000):
        router.decide(vector)
    print(f"short prompt, decide only: {(time.perf_counter() - started) * 1000:.3f} µs per decision (1,000 runs)")
    short_ms = median_ms(lambda: embedder.encode([PADDING]), repeats * 4)
    print(f"reference: one short prompt embedded in {short_ms:.1f} ms")

    def count(text: str) -> int:
        return len(embedder.token_spans(text))

    texts = {"distinct": distinct_sentences(PAIRS), "padding": [PADDING]}
    print("| prompt | tokens | passages | p50 ms | max ms | its whole windows in one call, ms |")
    print("|---|---:|---:|---:|---:|---:|")
    async with anyio.create_task_group() as background:
        background.start_soon(embedder.run_batcher)
        for name, sentences in texts.items():
            for tokens in LENGTHS:
                prompt = prompt_of(sentences, tokens, count)
                spans = embedder.token_spans(prompt)
                passages = cut_passages(prompt, spans, embedder.window_limit)
                timings = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    await router.decide_long(prompt)
                    timings.append((time.perf_counter() - started) * 1000)
                size = 1 + len(passages.others)
                windows = whole_windows(prompt, spans, embedder.window_limit)
                baseline = median_ms(functools.partial(embedder.encode, windows), 1)
                median, most = statistics.median(timings), max(timings)
                print(f"| {name} | {count(prompt)} | {size} | {median:.0f} | {most:.0f} | {baseline:.0f} |")
        background.cancel_scope.cancel()


def median_ms(run: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def whole_windows(text: str, spans: list[tuple[int, int]], limit: int) -> list[str]:
    """The prompt in consecutive windows of the model's limit: what embedding it windowed would cost instead."""
    return [text[spans[i][0] : spans[min(i + limit, len(spans)) - 1][1]] for i in range(0, len(spans), limit)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    asyncio.run(measure(parser.parse_args().repeats))


if __name__ == "__main__":
    main()
