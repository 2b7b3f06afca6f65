"""A crowd of identical misses at once: how many reach the upstream, and how long the crowd waits.

Starts its own Redis Stack, a slow fake upstream and `llmproxy serve` (one uvicorn worker, default settings: the
64-connection Redis pool, the semantic cache on, router off) on free loopback ports, then sends `--crowd`
identical chat requests at once over as many HTTP connections, `--rounds` times with a new question each round.
Reports per round: upstream calls, wall time, each request's latency (p50/p99, from the crowd's start), X-Cache
counts and bypass reasons, and whether every answer was a 200 with the same content.

    .venv/bin/python load_tests/single_flight_crowd.py [--crowd 1000] [--rounds 3] [--latency-ms 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

import services
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig

CHAT = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class Round:
    upstream_calls: int
    wall_s: float
    p50_ms: float
    p99_ms: float
    cache: Counter[str]
    same_answer: bool


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    x_cache: str
    content: str | None


async def crowd(proxy: str, size: int, question: str) -> tuple[list[Answer], list[float], float]:
    """`size` identical requests at once, each on a connection of its own (aiohttp: httpx's pool is the
    bottleneck at this many connections); the answers, each one's latency from the start, and the wall time."""
    body = {"model": "fake-model", "messages": [{"role": "user", "content": question}]}
    headers = {"authorization": "Bearer sk-crowd"}
    connector = aiohttp.TCPConnector(limit=size)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as http:
        started = time.perf_counter()

        async def one() -> tuple[Answer, float]:
            async with http.post(proxy + CHAT, json=body, headers=headers) as response:
                payload = await response.json()
                reason = response.headers.get("x-cache-bypass-reason")
                x_cache = response.headers.get("x-cache", "-") + (f" ({reason})" if reason else "")
                content = payload["choices"][0]["message"]["content"] if response.status == 200 else None
                return Answer(response.status, x_cache, content), time.perf_counter() - started

        results = await asyncio.gather(*(one() for _ in range(size)))
        wall = time.perf_counter() - started
    return [answer for answer, _ in results], [latency for _, latency in results], wall


def run_round(proxy: str, upstream: str, size: int) -> Round:
    before = services.upstream_calls(upstream)
    responses, latencies, wall = asyncio.run(crowd(proxy, size, f"What does a crowd of {size} cost? {uuid.uuid4()}"))
    calls = services.settled_upstream_calls(upstream) - before
    cache = Counter(answer.x_cache for answer in responses)
    same = all(answer.status == 200 for answer in responses) and len({a.content for a in responses}) == 1
    cuts = statistics.quantiles(latencies, n=100)
    return Round(calls, wall, cuts[49] * 1000, cuts[98] * 1000, cache, same)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crowd", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=2000.0, help="the fake upstream's delay per answer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmproxy-crowd-") as tmp:
        workdir = Path(tmp)
        with (
            EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis")) as redis,
            services.fake_upstream(workdir, args.latency_ms) as upstream,
            services.proxy(workdir, redis.url, upstream) as proxy,
        ):
            print(f"crowd {args.crowd}, upstream latency {args.latency_ms:.0f} ms")
            print("| round | upstream calls | wall s | p50 ms | p99 ms | all 200, one answer | X-Cache |")
            print("|---:|---:|---:|---:|---:|---|---|")
            for number in range(1, args.rounds + 1):
                result = run_round(proxy, upstream, args.crowd)
                statuses = ", ".join(f"{name}: {count}" for name, count in result.cache.most_common())
                print(
                    f"| {number} | {result.upstream_calls} | {result.wall_s:.2f} | {result.p50_ms:.0f} | "
                    f"{result.p99_ms:.0f} | {'yes' if result.same_answer else 'NO'} | {statuses} |"
                )


if __name__ == "__main__":
    main()
