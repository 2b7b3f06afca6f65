"""L1-hit throughput of one `llmproxy serve` on a Redis Cluster against a standalone Redis, side by side in one run.

Standalone: one Redis Stack (embedded). Cluster: 3 primaries + 3 replicas from the same binaries
(tests/support/redis_topologies.py), with a standalone search node beside it (redis.search_url: this Redis Stack 7.4
cannot search across shards). The proxy (one worker, router off, log level warning) is started on each in turn, 64
questions are stored once, and wrk asks them round-robin at c=16: their L1 keys spread over the three primaries.

    PYTHONPATH=$PWD .venv/bin/python load_tests/cluster_bench.py --duration 8 --rounds 2

wrk, the proxy and every Redis process share this machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

import services
import wrk
from compare_paths import AUTH, CHAT
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from tests.support.redis_servers import redis_stack
from tests.support.redis_topologies import redis_cluster
from workload import chat_body

CONNECTIONS = 16
QUESTIONS = 64

Results = dict[str, list[tuple[float, float, float]]]  # topology -> (req/s, p50 ms, p99 ms) of each round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per topology and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the topologies alternate within each")
    args = parser.parse_args()
    results: Results = {}
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        workdir = Path(tmp)
        with (
            EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis", persist=False)) as standalone,
            redis_cluster(workdir / "cluster") as cluster,
            redis_stack(workdir / "search") as search_url,
            services.fake_upstream(workdir) as upstream,
        ):
            topologies = {
                "standalone": (standalone.url, {}),
                "cluster (3+3)": (cluster.url, {"mode": "cluster", "search_url": search_url}),
            }
            for round_number in range(args.rounds):
                for name, (url, redis_section) in topologies.items():
                    prefix = f"bench{round_number}"
                    with serve(workdir, url, redis_section | {"key_prefix": prefix}, upstream) as proxy:
                        results.setdefault(name, []).append(measure(proxy, args.duration))
                    print(f"{name}: round {round_number + 1} done", file=sys.stderr)
    print(table(results, args))


@contextmanager
def serve(workdir: Path, redis_url: str, redis_section: dict[str, str], upstream: str) -> Iterator[str]:
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    config = workdir / f"proxy-{port}.yaml"
    settings = {"server": {"log_level": "warning"}, "router": {"routes_file": None}, "redis": redis_section}
    config.write_text(json.dumps(settings))  # JSON is YAML
    command = services.cli() + ["serve", "--port", str(port), "--config", str(config)]
    command += ["--redis-url", redis_url, "--upstream", upstream + "/v1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with services.served(command, url + "/readyz", workdir / f"proxy-{port}.log", env):
        yield url


def measure(url: str, duration_s: float) -> tuple[float, float, float]:
    bodies = [
        chat_body(f"Cluster benchmark question number {number}: what is its square?") for number in range(QUESTIONS)
    ]
    for body in bodies:  # stored once; the write-back follows the response, so the check below waits for all
        httpx.post(url + CHAT, content=body, headers=AUTH, timeout=30)
    for body in bodies:
        for _ in range(100):
            if httpx.post(url + CHAT, content=body, headers=AUTH, timeout=30).headers["x-cache"] == "HIT-L1":
                break
        else:
            raise RuntimeError("a question was not stored")
    load = wrk.Load(url + CHAT, bodies, AUTH, CONNECTIONS, duration_s)
    wrk.run(wrk.Load(load.url, load.bodies, load.headers, CONNECTIONS, 1.0))  # warm-up
    result = wrk.run(load)
    if result.errors or result.non_2xx:
        raise RuntimeError(f"{result.errors} errors, {result.non_2xx} non-2xx")
    return result.rps, result.p50_ms, result.p99_ms


def table(results: Results, args: argparse.Namespace) -> str:
    lines = [
        f"L1 hits, {QUESTIONS} stored questions round-robin, wrk c={CONNECTIONS}, {args.duration:g} s, median of "
        f"{args.rounds} rounds ({os.cpu_count()} cores shared by wrk, the proxy and every Redis process)",
        "",
        "| Redis | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for name, rounds in results.items():
        rps, p50, p99 = (statistics.median(figure[i] for figure in rounds) for i in range(3))
        lines.append(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
