"""Throughput and memory of `llmproxy serve --workers 1` against `--workers 2`, side by side in one run.

One Redis Stack (embedded) and the fake upstream (0 ms) serve both; each worker count gets its own `llmproxy serve`
(router off, log level warning, the default embedding backend), started in turn, and wrk drives three paths at
c=16: an L1 hit (one ~1 KB answer repeated), the forwarder (BYPASS, a new prompt each request) and a miss (embed,
L1 + L2 lookup, forward, write-back). RSS is the sum over the serve process and its workers once ready.

    .venv/bin/python load_tests/workers_bench.py --duration 8 --rounds 2

wrk runs on the same cores as the proxy: on a 2-core machine two workers compete with wrk and Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

import services
import wrk
from compare_paths import AUTH, BYPASS, CHAT, MISS_TEMPLATES
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from workload import LONG_QUESTION, chat_body

CONNECTIONS = 16


Results = dict[tuple[int, str], list[tuple[float, float]]]  # (workers, path) -> (req/s, p50 ms) of each round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per path")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the worker counts alternate within each")
    args = parser.parse_args()
    results: Results = {}
    memory: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="workers-bench-") as tmp:
        workdir = Path(tmp)
        with (
            EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis", persist=False)) as redis_server,
            services.fake_upstream(workdir) as upstream,
        ):
            for _ in range(args.rounds):
                for workers in (1, 2):
                    with serve(workdir, redis_server.url, upstream, workers) as (url, pid):
                        memory[workers].append(rss_mb(pid))
                        for path, figures in measure(url, workers, args.duration).items():
                            results.setdefault((workers, path), []).append(figures)
                    print(f"{workers} worker(s): done", file=sys.stderr)
    print(table(results, memory, args))


@contextmanager
def serve(workdir: Path, redis_url: str, upstream: str, workers: int) -> Iterator[tuple[str, int]]:
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    config = workdir / f"workers-{workers}.yaml"
    settings = {"server": {"log_level": "warning", "workers": workers}, "router": {"routes_file": None}}
    config.write_text(json.dumps(settings))  # JSON is YAML
    command = services.cli() + ["serve", "--port", str(port), "--config", str(config)]
    command += ["--redis-url", redis_url, "--upstream", upstream + "/v1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with services.served(command, url + "/readyz", workdir / f"proxy-{workers}.log", env) as pid:
        wait_for_workers(pid, workers)
        yield url, pid


def wait_for_workers(pid: int, workers: int) -> None:
    """/readyz answers once one worker is up: wait (up to two minutes) until `workers` processes hold their model
    and their memory stopped growing."""
    deadline = time.monotonic() + 120
    previous: list[float] = []
    while time.monotonic() < deadline:
        pids = children(pid) if workers > 1 else [pid]
        sizes = [rss_mb(child, with_children=False) for child in pids]
        # Among the children: the workers, and multiprocessing's small resource tracker.
        loaded = sum(size > 150 for size in sizes) >= workers
        steady = len(previous) == len(sizes) and all(abs(a - b) < 2 for a, b in zip(sizes, previous, strict=True))
        if loaded and steady:
            return
        previous = sizes
        time.sleep(1.0)
    raise RuntimeError(f"{workers} workers did not all start within two minutes")


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def rss_mb(root: int, with_children: bool = True) -> float:
    """Resident memory of a process (and its children), in MB."""
    total_kb = 0
    for pid in [root, *children(root)] if with_children else [root]:
        status = Path(f"/proc/{pid}/status").read_text()
        total_kb += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total_kb / 1024


def measure(url: str, workers: int, duration_s: float) -> dict[str, tuple[float, float]]:
    l1 = chat_body(LONG_QUESTION)
    for _ in range(2):  # a miss, then a hit (with two workers each has its own process state; the cache is shared)
        httpx.post(url + CHAT, content=l1, headers=AUTH, timeout=30)
    loads = {
        "L1 hit": wrk.Load(url + CHAT, [l1], AUTH, CONNECTIONS, duration_s),
        "forwarder (BYPASS)": wrk.Load(url + CHAT, MISS_TEMPLATES, BYPASS, CONNECTIONS, duration_s, unique=True),
        "miss": wrk.Load(url + CHAT, MISS_TEMPLATES, AUTH, CONNECTIONS, duration_s, unique=True),
    }
    figures = {}
    for path, load in loads.items():
        wrk.run(wrk.Load(load.url, load.bodies, load.headers, CONNECTIONS, 1.0, load.unique))  # warm-up
        result = wrk.run(load)
        if result.errors or result.non_2xx:
            raise RuntimeError(f"{workers} workers, {path}: {result.errors} errors, {result.non_2xx} non-2xx")
        figures[path] = (result.rps, result.p50_ms)
    return figures


def table(results: Results, memory: dict[int, list[float]], args: argparse.Namespace) -> str:
    lines = [
        f"`llmproxy serve --workers 1` vs `--workers 2`, wrk c={CONNECTIONS}, {args.duration:g} s per path, median of "
        f"{args.rounds} rounds ({os.cpu_count()} cores, wrk and Redis on the same machine)",
        "",
        "| path | 1 worker: req/s (p50 ms) | 2 workers: req/s (p50 ms) | 2 / 1 |",
        "|---|---:|---:|---:|",
    ]
    for path in dict.fromkeys(path for _, path in results):
        rps = {n: statistics.median(figure[0] for figure in results[(n, path)]) for n in (1, 2)}
        p50 = {n: statistics.median(figure[1] for figure in results[(n, path)]) for n in (1, 2)}
        lines.append(
            f"| {path} | {rps[1]:,.0f} ({p50[1]:.2f}) | {rps[2]:,.0f} ({p50[2]:.2f}) | {rps[2] / rps[1]:.2f}x |"
        )
    rss = {n: statistics.median(values) for n, values in memory.items()}
    lines.append(f"| RSS when ready (serve + workers) | {rss[1]:,.0f} MB | {rss[2]:,.0f} MB | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
