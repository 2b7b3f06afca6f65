"""Side-by-side benchmark, in one run on one machine: the proxy's paths against a bare baseline and direct calls.

Starts its own Redis Stack (embedded), the fake upstream (0 ms latency), the baseline app (baseline_app.py) and
`llmproxy serve` (1 worker, log level warning, router off unless --routes) on free loopback ports, drives each
with wrk, measures streaming TTFB with an httpx client at concurrency 1, and prints a markdown table with ratios
and added latency against the issue 6 targets.

    .venv/bin/python load_tests/compare.py --duration 10 --out load_tests/results/compare.md
    .venv/bin/python load_tests/compare.py --duration 3 --warmup 1 --ttfb-requests 30   # a smoke test

Needs wrk (`apt-get install wrk`). Runtime ≈ 13 x duration + 7 x warmup + about 40 s (3 min by default).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

import baseline_app
import compare_paths
import machine
import services
import wrk
from compare_report import document
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig

TITLE = "llmproxy side by side: proxy paths vs a bare baseline and the upstream called directly"


@dataclass(frozen=True, slots=True)
class Options:
    duration_s: float
    warmup_s: float
    connections: int
    wrk_threads: int
    ttfb_requests: int
    embed_samples: int
    routes: Path | None
    out: Path | None


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured wrk run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk before each c=N path (0: none)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections for throughput rows")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (at most one per connection)")
    parser.add_argument("--ttfb-requests", type=int, default=200, help="streamed requests per TTFB row")
    parser.add_argument("--embed-samples", type=int, default=200, help="prompts embedded for the embedding row")
    parser.add_argument("--routes", type=Path, help="routes file for the proxy's router (default: router off)")
    parser.add_argument("--out", type=Path, help="also write the results (markdown) here")
    args = parser.parse_args(argv)
    return Options(
        args.duration,
        args.warmup,
        args.connections,
        args.wrk_threads,
        args.ttfb_requests,
        args.embed_samples,
        args.routes,
        args.out,
    )


def command_line(opts: Options) -> str:
    """The exact command, with every option spelled out (defaults included), to repeat this run."""
    words = [sys.executable, sys.argv[0], "--duration", f"{opts.duration_s:g}", "--warmup", f"{opts.warmup_s:g}"]
    words += ["--connections", str(opts.connections), "--wrk-threads", str(opts.wrk_threads)]
    words += ["--ttfb-requests", str(opts.ttfb_requests), "--embed-samples", str(opts.embed_samples)]
    words += ["--routes", str(opts.routes)] if opts.routes else []
    words += ["--out", str(opts.out)] if opts.out else []
    return shlex.join(words)


def redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        server = client.info("server")
        modules = {text(m.get(b"name")): text(m.get(b"ver")) for m in client.module_list()}
    finally:
        client.close()
    return f"{server['redis_version']} (search {modules.get('search', '?')})"


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def store_baseline_answer(redis_url: str, answer: bytes) -> None:
    """The baseline's GET returns exactly the bytes of the proxy's L1 answer."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(baseline_app.DEFAULT_KEY, answer)
    finally:
        client.close()


def run(opts: Options, command: str) -> str:
    wrk.require_wrk()
    with tempfile.TemporaryDirectory(prefix="llmproxy-compare-") as tmp:
        workdir = Path(tmp)
        with EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis")) as server:
            facts = machine.facts(redis_version(server.url))
            with (
                services.fake_upstream(workdir) as upstream,
                services.baseline(workdir, server.url) as baseline,
                services.proxy(workdir, server.url, upstream, opts.routes) as proxy,
            ):
                log(f"redis {server.url}, upstream {upstream}, baseline {baseline}, proxy {proxy}")
                settings = compare_paths.Settings(
                    opts.duration_s, opts.warmup_s, opts.connections, opts.wrk_threads, opts.ttfb_requests
                )
                urls = compare_paths.Urls(upstream, baseline, proxy)
                bench = compare_paths.Bench(settings, urls, log)
                store_baseline_answer(server.url, compare_paths.prime_l1(urls))
                rows = compare_paths.all_paths(bench, opts.embed_samples)
    facts["load average after the run"] = machine.load_average()
    facts["proxy"] = "1 uvicorn worker (uvloop, httptools), log level warning, router " + (
        f"on ({opts.routes})" if opts.routes else "off (router.routes_file: null)"
    )
    return document(TITLE, command, facts, compare_paths.notes(settings), rows)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    opts = parse_options(argv)
    command = command_line(opts)
    log(f"command: {command}")
    text = run(opts, command)
    print(text)
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(text, encoding="utf-8")
        log(f"written to {opts.out}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except httpx.HTTPError as exc:
        sys.exit(f"request failed: {exc!r}")
