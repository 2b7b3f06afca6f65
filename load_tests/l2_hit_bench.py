"""L2 (semantic) hit throughput through a real `llmproxy serve`, next to L1 hits and bare embedding time.

Starts its own Redis Stack, fake upstream and proxy (one uvicorn worker, config/routes.example.yaml named as its
routes file) on free loopback ports, stores a set of questions, then drives paraphrases of them with wrk (Debian package
`wrk`). Paraphrase requests carry `Cache-Control: no-store` so an L2 hit is not promoted into L1: every request
takes the L2 path. L2 is measured at the given concurrency (throughput) and at 1 connection (latency over the
embedding). compare.py measures the same paths next to a baseline and the upstream called directly.

    .venv/bin/python load_tests/l2_hit_bench.py [--duration 15] [--connections 16]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import httpx

import services
import wrk
from embedding_time import single_prompt_ms
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from workload import chat_body, questions

ROUTES = services.REPO / "config" / "routes.example.yaml"  # named explicitly: no routes by default
CHAT = "/v1/chat/completions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    wrk.require_wrk()
    with tempfile.TemporaryDirectory(prefix="llmproxy-bench-") as tmp:
        workdir = Path(tmp)
        with (
            EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis")) as redis,
            services.fake_upstream(workdir) as upstream,
            services.proxy(workdir, redis.url, upstream, ROUTES) as proxy,
        ):
            report(proxy, args.duration, args.connections)


def report(proxy: str, duration: int, connections: int) -> None:
    auth = {"Authorization": "Bearer sk-bench"}
    no_store = {**auth, "Cache-Control": "no-store"}
    pairs = questions()
    for stored, _ in pairs:
        httpx.post(proxy + CHAT, content=chat_body(stored), headers=auth, timeout=30).raise_for_status()
    statuses = [
        httpx.post(proxy + CHAT, content=chat_body(p), headers=no_store, timeout=30).headers["x-cache"]
        for _, p in pairs
    ]
    hit_ratio = statuses.count("HIT-L2") / len(statuses)
    url = proxy + CHAT
    stored_bodies = [chat_body(s) for s, _ in pairs]
    paraphrases = [chat_body(p) for _, p in pairs]
    l1 = wrk.run(wrk.Load(url, stored_bodies, auth, connections, duration))
    l2 = wrk.run(wrk.Load(url, paraphrases, no_store, connections, duration))
    l2_single = wrk.run(wrk.Load(url, paraphrases, no_store, 1, duration))
    embed_ms = single_prompt_ms({"paraphrases": [p for _, p in pairs]})["paraphrases"].p50_ms
    print(f"paraphrases answered HIT-L2 in the check pass: {hit_ratio:.0%} of {len(statuses)}")
    print(f"single-prompt embedding (in-process, 1 torch thread): p50 {embed_ms:.2f} ms")
    print(f"\n| path ({duration}s each, 1 worker) | connections | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = (("L1 hit", connections, l1), ("L2 hit", connections, l2), ("L2 hit", 1, l2_single))
    for name, conns, row in rows:
        print(f"| {name} | {conns} | {row.rps:.0f} | {row.p50_ms:.2f} | {row.p99_ms:.2f} | {row.non_2xx} |")
    print(f"\nL2 hit p50 at 1 connection minus embedding p50: {l2_single.p50_ms - embed_ms:.2f} ms")


if __name__ == "__main__":
    main()
