"""Invalidation time with the eviction sweep: the catalog query plus the SCAN walk over L1 keys and L2 records.

For each size N: a fresh embedded Redis Stack, the proxy's indexes, N answers written through `WriteBack.store`
(entry_memory_bench's loader: 1,000-character answers, random unit vectors) over --tenants scopes, then the catalog
documents of --evicted of them deleted, as maxmemory eviction would. Then, through the proxy's own `Invalidator`
with the proxy's request-path client (socket timeout `redis.socket_timeout_s`, 0.25 s: every Redis call of the
sweep must finish within it, or the run fails): a filter that matches nothing (the cost every invalidation now
pays: one SCAN per 1,000 keys and EXISTS per key), one tenant dry and real, then every answer (by model) dry and
real. Times are wall-clock, one run each; the slowest single Redis command of each (SLOWLOG, server side) is
what held Redis longest, and every request waiting behind it.

    python load_tests/invalidation_bench.py --sizes 10000,50000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

import machine
from entry_memory_bench import MODEL, PREFIX, Loader, Options, sizes, vectors_for
from llmproxy.cache.catalog.index import entry_id
from llmproxy.cache.catalog.invalidation import Invalidator
from llmproxy.cache.catalog.query import EntryFilter
from llmproxy.settings import RedisSettings
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from llmproxy.store.errors import CacheUnavailableError

Row = tuple[str, int, float, str]  # (what, matched, ms, the slowest Redis command)


async def measure(url: str, size: int, tenants: int, evicted: float) -> list[Row]:
    """Load, evict catalog documents, then time each invalidation."""
    loader_redis = Redis.from_url(url, socket_timeout=60)
    proxy_redis = Redis.from_url(url, socket_timeout=RedisSettings().socket_timeout_s)
    try:
        opts = Options([size], tenants, 1000, "random", None, None, 7)
        loader = Loader(loader_redis, opts)
        await loader.ensure()
        vectors, prompt_ids = vectors_for(opts, size, ["a question"], None)
        await loader.load(["a question"], vectors, prompt_ids)
        gone = random.Random(7).sample(loader.keys, int(size * evicted))
        for start in range(0, len(gone), 1000):
            await loader_redis.unlink(*(loader.catalog.key(entry_id(key)) for key in gone[start : start + 1000]))
        invalidator = Invalidator(proxy_redis, PREFIX, loader.catalog, loader.index, None)
        tenant = hashlib.sha256(b"tenant-0").hexdigest()[:32]
        plan = [
            ("no match (model=none)", EntryFilter(model="none"), False),
            ("one tenant, dry run", EntryFilter(tenant=tenant), True),
            ("one tenant", EntryFilter(tenant=tenant), False),
            ("every answer (by model), dry run", EntryFilter(model=MODEL), True),
            ("every answer (by model)", EntryFilter(model=MODEL), False),
        ]
        await loader_redis.config_set("slowlog-log-slower-than", 1000)  # µs: every command over 1 ms
        await loader_redis.config_set("slowlog-max-len", 100_000)
        rows = []
        for what, entry_filter, dry_run in plan:
            await loader_redis.slowlog_reset()
            started = time.perf_counter()
            try:
                matched = (await invalidator.by_filter(entry_filter, dry_run)).matched
            except CacheUnavailableError as exc:  # reported, not hidden: a call outlasted the socket timeout
                what, matched = f"{what}: FAILED ({exc})", -1
            elapsed_ms = (time.perf_counter() - started) * 1000
            rows.append((what, matched, elapsed_ms, await slowest(loader_redis)))
        return rows
    finally:
        await loader_redis.aclose()
        await proxy_redis.aclose()


async def slowest(redis: Redis) -> str:
    """The slowest command Redis ran since the last reset, with its time (server side, from SLOWLOG)."""
    entries = await redis.slowlog_get(100_000)
    if not entries:
        return "< 1 ms"
    worst = sorted(entries, key=lambda entry: entry["duration"], reverse=True)[:3]
    return ", ".join(f"{entry['duration'] / 1000:.1f} ms ({name(entry['command'])})" for entry in worst)


def name(command: object) -> str:
    text = command.decode(errors="replace") if isinstance(command, bytes) else str(command)
    return text.split()[0] if text else "?"


def markdown(command: str, facts: dict[str, str], results: dict[int, list[Row]]) -> str:
    lines = [f"Command: `{command}`", "", *(f"- {name}: {value}" for name, value in facts.items()), ""]
    lines += ["| entries | invalidation | matched | ms | slowest Redis commands |", "|---:|---|---:|---:|---|"]
    for size, rows in results.items():
        lines += [f"| {size:,} | {what} | {matched:,} | {ms:,.0f} | {worst} |" for what, matched, ms, worst in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes, default=[10_000, 50_000], help="entries, comma-separated")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--evicted", type=float, default=0.12, help="share of catalog documents deleted")
    parser.add_argument("--out", type=Path, help="also write the markdown results here")
    args = parser.parse_args(argv)
    results: dict[int, list[Row]] = {}
    for size in args.sizes:
        with (
            tempfile.TemporaryDirectory(prefix="llmproxy-inval-") as tmp,
            EmbeddedRedis(EmbeddedRedisConfig(Path(tmp))) as server,
        ):
            results[size] = asyncio.run(measure(server.url, size, args.tenants, args.evicted))
        print(f"{size:,} entries done", file=sys.stderr, flush=True)
    facts = machine.facts("Redis Stack 7.4 (embedded)")
    facts["settings"] = f"{args.tenants} tenants, {args.evicted:.0%} of catalog documents evicted"
    report = markdown(shlex.join([sys.executable, sys.argv[0], *argv]), facts, results)
    print(report)
    if args.out is not None:
        args.out.write_text(report)


if __name__ == "__main__":
    main(sys.argv[1:])
