"""What each embedding backend costs a proxy process: startup time to /readyz and resident memory once ready.

Starts `llmproxy serve` (one worker, the checkout's default configuration, an embedded Redis Stack of its own)
with each backend in turn, interleaved, several times; reports medians, and whether torch was loaded.

    .venv/bin/python load_tests/embedding_startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from services import cli, free_port, served

BACKENDS = ("onnx", "torch")


def start_once(backend: str, redis_url: str, workdir: Path) -> tuple[float, float, float, bool]:
    """Seconds to /readyz, RSS and peak RSS (MB) once ready, whether libtorch is mapped."""
    port = free_port()
    command = cli() + ["serve", "--port", str(port), "--redis-url", redis_url]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LLMPROXY_EMBEDDINGS__BACKEND": backend}
    env["LLMPROXY_SERVER__LOG_LEVEL"] = "warning"
    started = time.monotonic()
    with served(command, f"http://127.0.0.1:{port}/readyz", workdir / f"proxy-{backend}.log", env) as pid:
        elapsed = time.monotonic() - started
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        torch_loaded = "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    rss, peak = (int(status[field].split()[0]) / 1024 for field in ("VmRSS", "VmHWM"))
    return elapsed, rss, peak, torch_loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float, float, bool]]] = {backend: [] for backend in BACKENDS}
    with tempfile.TemporaryDirectory(prefix="llmproxy-startup-") as work:
        with EmbeddedRedis(EmbeddedRedisConfig(data_dir=Path(work) / "redis")) as redis:
            for _ in range(args.repeat):
                for backend in BACKENDS:
                    runs[backend].append(start_once(backend, redis.url, Path(work)))
    print(f"medians of {args.repeat} interleaved starts\n")
    print("| backend | startup to /readyz s | RSS when ready MB | peak RSS MB | torch loaded | startups s |")
    print("|---|---:|---:|---:|---|---|")
    for backend, got in runs.items():
        seconds, rss, peak = (statistics.median(run[index] for run in got) for index in range(3))
        each = ", ".join(f"{run[0]:.1f}" for run in got)
        loaded = "yes" if any(run[3] for run in got) else "no"
        print(f"| {backend} | {seconds:.1f} | {rss:.0f} | {peak:.0f} | {loaded} | {each} |")


if __name__ == "__main__":
    main()
