"""Redis memory per cached answer, written exactly as the proxy writes one: L1 entry, L2 record, catalog document.

For each size N: a fresh embedded Redis Stack, the proxy's two search indexes created as at startup, then N answers
stored through the proxy's own `WriteBack.store` (one MULTI each: the L1 string with a chat completion of
--answer-chars characters, the L2 hash with its float32 vector, the catalog hash), spread over --tenants scopes.
Reported per entry: Redis `used_memory` growth / N (INFO memory), the mean `MEMORY USAGE` of sampled keys of each
kind, and FT.INFO of both indexes (vector index, inverted index, tag overhead, doc and key tables) divided by N.

Prompts are the labelled pairs' unique prompts (../shared/data), repeated beyond their count. Vectors: their real
embeddings plus noisy variants (l2_index_bench's dataset, `--vectors embedded`, slow the first time: use
--vector-cache), or random unit vectors (`--vectors random`: HNSW memory barely depends on the values).

    python load_tests/entry_memory_bench.py --sizes 10000,100000 --vector-cache /tmp/prompt-vectors.npz
    python load_tests/entry_memory_bench.py --sizes 2000 --vectors random       # a quick look: seconds
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

import machine
from l2_index_bench import Matrix, embed_prompts, make_dataset, unique_prompts
from llmproxy.cache.catalog.index import Catalog, catalog_record, entry_id
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.semantic import Partition, SemanticIndex, SemanticRecord
from llmproxy.cache.writeback import StorePlan, WriteBack
from llmproxy.protocols.chat import CHAT
from llmproxy.settings import HnswSettings, RedisSettings
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from memory_report import FT_FIELDS, Measurement, markdown

DIMENSION = 384  # all-MiniLM-L6-v2
MODEL = "gpt-4o-mini"
PREFIX = RedisSettings().key_prefix
CONCURRENCY = 32
SAMPLED_KEYS = 200


@dataclass(frozen=True, slots=True)
class Options:
    sizes: list[int]
    tenants: int
    answer_chars: int
    vectors: str
    vector_cache: Path | None
    out: Path | None
    seed: int


def sizes(text: str) -> list[int]:
    """`10000,100000` (or one number) → [10000, 100000]."""
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes, default=[10_000, 100_000], help="entries, comma-separated")
    parser.add_argument("--tenants", type=int, default=100, help="scopes the entries are spread over")
    parser.add_argument("--answer-chars", type=int, default=1000, help="characters of each cached answer's text")
    parser.add_argument("--vectors", choices=["embedded", "random"], default="embedded")
    parser.add_argument("--vector-cache", type=Path, help="keep the embedded prompts in this .npz (outside the repo)")
    parser.add_argument("--out", type=Path, help="also write the markdown results here")
    parser.add_argument("--seed", type=int, default=7)
    a = parser.parse_args(argv)
    return Options(a.sizes, a.tenants, a.answer_chars, a.vectors, a.vector_cache, a.out, a.seed)


def completion(text: str) -> dict[str, object]:
    """A complete chat completion (finish_reason stop), as the upstream would return it."""
    message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    usage = {"prompt_tokens": 20, "completion_tokens": len(text) // 5, "total_tokens": 20 + len(text) // 5}
    return {
        "id": "chatcmpl-memory",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [choice],
        "usage": usage,
    }


def vectors_for(opts: Options, size: int, prompts: list[str], base: Matrix | None) -> tuple[Matrix, list[int]]:
    """N unit vectors and, for each, the index of its prompt."""
    rng = np.random.default_rng(opts.seed + size)
    if base is not None:
        data = make_dataset(base, size, 1, rng)
        return data.vectors, [int(i) for i in data.prompt_ids]
    raw = rng.normal(size=(size, DIMENSION)).astype(np.float32)
    unit = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
    return unit, [i % len(prompts) for i in range(size)]


class Loader:
    """Writes entries through the proxy's WriteBack, as a miss's write-back does."""

    def __init__(self, redis: Redis, opts: Options) -> None:
        self.exact = ExactCache(redis, PREFIX)
        self.index = SemanticIndex(redis, PREFIX, DIMENSION, HnswSettings())
        self.catalog = Catalog(redis, PREFIX)
        self.write_back = WriteBack(redis, self.exact, self.index, time.time, self.catalog)
        self.answer = completion(("The cached answer. " * (opts.answer_chars // 19 + 1))[: opts.answer_chars])
        self.tenants = opts.tenants
        self.keys: list[str] = []

    async def ensure(self) -> None:
        await self.index.ensure()
        await self.catalog.ensure()

    async def store(self, row: int, prompt: str, vector: Matrix) -> None:
        scope = hashlib.sha256(f"tenant-{row % self.tenants}".encode()).hexdigest()[:32]
        key = self.exact.key(scope, hashlib.sha256(f"request-{row}".encode()).hexdigest())
        body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
        record = SemanticRecord(Partition(scope, MODEL, "p" * 16, "c" * 16), prompt, key, vector)
        listing = catalog_record(CHAT, body, scope, MODEL, key)
        outcome = await self.write_back.store(StorePlan(key, CHAT, MODEL, 86_400, record, listing), self.answer)
        if outcome != "stored":
            raise RuntimeError(f"entry {row} was not stored: {outcome}")
        self.keys.append(key)

    async def load(self, prompts: list[str], vectors: Matrix, prompt_ids: list[int]) -> float:
        """Store every entry, CONCURRENCY at a time; entries per second."""
        started = time.perf_counter()
        for start in range(0, len(vectors), CONCURRENCY):
            rows = range(start, min(start + CONCURRENCY, len(vectors)))
            await asyncio.gather(*(self.store(row, prompts[prompt_ids[row]], vectors[row]) for row in rows))
        return len(vectors) / (time.perf_counter() - started)


async def measure(url: str, opts: Options, size: int, prompts: list[str], base: Matrix | None) -> Measurement:
    """Load `size` entries into an empty Redis and measure what they take."""
    redis = Redis.from_url(url, socket_timeout=60)
    try:
        loader = Loader(redis, opts)
        await loader.ensure()
        vectors, prompt_ids = vectors_for(opts, size, prompts, base)
        before = int((await redis.info("memory"))["used_memory"])
        rate = await loader.load(prompts, vectors, prompt_ids)
        after = int((await redis.info("memory"))["used_memory"])
        sample = loader.keys[:: max(1, size // SAMPLED_KEYS)]
        key_bytes = {
            "L1 string": await mean_usage(redis, sample),
            "L2 hash": await mean_usage(redis, [loader.index.doc_key(key) for key in sample]),
            "catalog hash": await mean_usage(redis, [loader.catalog.key(entry_id(key)) for key in sample]),
        }
        indexes = {"L2": await ft_info(redis, loader.index.name), "catalog": await ft_info(redis, loader.catalog.name)}
        return Measurement(size, rate, after - before, key_bytes, indexes)
    finally:
        await redis.aclose()


async def mean_usage(redis: Redis, keys: list[str]) -> float:
    """Mean MEMORY USAGE (bytes, all samples) of the keys."""
    sizes_ = [await redis.memory_usage(key, samples=0) for key in keys]
    found = [size for size in sizes_ if size]
    return sum(found) / len(found) if found else 0.0


async def ft_info(redis: Redis, name: str) -> dict[str, float]:
    """FT.INFO's memory fields (MB) and num_docs."""
    raw = await redis.execute_command("FT.INFO", name)  # type: ignore[no-untyped-call]
    pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=False)  # parsed or RESP2
    info = {text(key): value for key, value in pairs}
    return {field: float(text(info.get(field, 0))) for field in ("num_docs", *FT_FIELDS)}


async def redis_version(url: str) -> str:
    redis = Redis.from_url(url)
    try:
        info = await redis.info("server")
        modules = {text(m.get(b"name")): text(m.get(b"ver")) for m in await redis.module_list()}
    finally:
        await redis.aclose()
    return f"{info['redis_version']} (search {modules.get('search', '?')})"


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def load_vectors(opts: Options) -> tuple[list[str], Matrix | None]:
    prompts = unique_prompts()
    if opts.vectors == "random":
        return prompts, None
    base, kept = embed_prompts(prompts, opts.vector_cache)
    return kept, base


def main(argv: list[str]) -> None:
    opts = parse_options(argv)
    command = shlex.join([sys.executable, sys.argv[0], *argv])
    started = time.perf_counter()
    prompts, base = load_vectors(opts)
    results, version = [], "?"
    for size in opts.sizes:
        with (
            tempfile.TemporaryDirectory(prefix="llmproxy-memory-") as tmp,
            EmbeddedRedis(EmbeddedRedisConfig(Path(tmp))) as server,
        ):
            version = asyncio.run(redis_version(server.url))
            results.append(asyncio.run(measure(server.url, opts, size, prompts, base)))
        print(f"{size:,} entries stored", file=sys.stderr, flush=True)
    facts = machine.facts(version)
    hnsw = HnswSettings()
    facts["settings"] = f"{opts.tenants} tenants, {opts.answer_chars}-character answers, {opts.vectors} vectors, "
    facts["settings"] += f"HNSW M {hnsw.m}, EF_CONSTRUCTION {hnsw.ef_construction}, 384 dimensions"
    facts["runtime"] = f"{time.perf_counter() - started:.0f} s"
    text_ = markdown(command, facts, results)
    print(text_)
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(text_, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
