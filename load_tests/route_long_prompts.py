"""What routing costs: a short prompt's decision (one matrix-vector product) and long prompts cut into passages.

In this process, with the proxy's Embedder (1 torch thread, its batcher running) and Router over the example
routes. Long prompts are built from distinct questions of the dev pairs (every sentence is new, the worst case
for the number of passages) and from repeated padding (deduplicated to a few passages), up to max_windows.

    .venv/bin/python load_tests/route_long_prompts.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
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
    from llmproxy.embeddings import Embedder, load_model
    from llmproxy.routing import Router, load_routes
    from llmproxy.settings import EmbeddingSettings

    embedder = Embedder(load_model(EmbeddingSettings()), 32, 0)
    router = Router(embedder, embedder.dimension, max_windows=16, timeout_s=600)
    await router.load(load_routes(ROUTES, frozenset()))
    embedder.encode(["warm up", "warm up " * 127])
    vector = embedder.encode(["How do I reverse a list in Python?"])[0]
    assert vector is not None
    started = time.perf_counter()
    for _ in range(1_000):
        router.decide(vector)
    print(f"short prompt, decide only: {(time.perf_counter() - started) * 1000:.3f} µs per decision (1,000 runs)")

    def count(text: str) -> int:
        return len(embedder.token_spans(text))

    texts = {"distinct": distinct_sentences(PAIRS), "padding": [PADDING]}
    print("| prompt | tokens | passages | p50 ms | max ms |\n|---|---:|---:|---:|---:|")
    async with anyio.create_task_group() as background:
        background.start_soon(embedder.run_batcher)
        for name, sentences in texts.items():
            for tokens in LENGTHS:
                prompt = prompt_of(sentences, tokens, count)
                passages = router._passages(prompt, strict=True)  # noqa: SLF001  the count is what this benchmark reports
                timings = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    await router.decide_long(prompt)
                    timings.append((time.perf_counter() - started) * 1000)
                size = len(passages) if passages else 0
                print(f"| {name} | {count(prompt)} | {size} | {statistics.median(timings):.0f} | {max(timings):.0f} |")
        background.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    asyncio.run(measure(parser.parse_args().repeats))


if __name__ == "__main__":
    main()
