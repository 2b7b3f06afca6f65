"""Slow clients against `llmproxy serve` with its default read deadlines: how long they hold a connection, and
how a normal request fares meanwhile.

Starts an embedded Redis Stack, the fake upstream and `llmproxy serve` (services.py), then opens --connections
raw connections of three kinds in equal parts: half a header line and then silence (the header deadline), a
chat request whose Content-Length promises more than is sent (the body deadline), and headers trickled one byte
per second (the header deadline is for the whole header block). Records when the server closed each one, and
while they are open times a normal chat request every 0.5 s.

    .venv/bin/python load_tests/slowloris_bench.py --connections 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

import machine
import services
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig

GIVE_UP_S = 60.0
CHAT = b'{"model": "fake-model", "messages": [{"role": "user", "content": "Still answering?"}]}'
KINDS = {
    "half a header line": [b"POST /v1/chat/completions HTTP/1.1\r\nhost: pro"],
    "lying Content-Length": [
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer sk-slow\r\n"
        b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n" + CHAT[:20]
    ],
    "headers, 1 byte/s": [bytes([byte]) for byte in b"GET /healthz HTTP/1.1\r\nx-slow: " + b"a" * 100],
}


async def slow_client(url: str, pieces: list[bytes]) -> float:
    """Seconds from connecting until the server closed the connection (GIVE_UP_S if it never did)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    try:
        async with asyncio.timeout(GIVE_UP_S):
            for piece in pieces:
                writer.write(piece)
                if await _closed_within(reader, 1.0):
                    return time.monotonic() - started
            while await reader.read(65536):
                pass
    except TimeoutError:
        return GIVE_UP_S
    except ConnectionError:
        pass  # reset or broken pipe while trickling: closed by the server
    finally:
        writer.close()
    return time.monotonic() - started


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Wait up to `seconds` (the pause between trickled bytes) for the server to close the connection."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass  # the 408 the server answers before closing
    except TimeoutError:
        return False
    return True


async def normal_requests(url: str, stop: asyncio.Event) -> list[float]:
    """Latencies (ms) of chat requests sent every 0.5 s until stop; every one must be a 200."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            response = await client.post(
                "/v1/chat/completions", content=CHAT, headers={"authorization": "Bearer sk-normal"}
            )
            assert response.status_code == 200, response.text
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.5)
    return latencies


async def measure(url: str, connections: int) -> tuple[dict[str, list[float]], list[float]]:
    stop = asyncio.Event()
    normal = asyncio.create_task(normal_requests(url, stop))
    per_kind = max(1, connections // len(KINDS))
    tasks = {kind: [asyncio.create_task(slow_client(url, p)) for _ in range(per_kind)] for kind, p in KINDS.items()}
    held = {kind: list(await asyncio.gather(*group)) for kind, group in tasks.items()}
    stop.set()
    return held, await normal


def report(held: dict[str, list[float]], latencies: list[float], connections: int) -> str:
    lines = [
        f"{connections} slow connections against `llmproxy serve` (defaults: header_timeout_s 10, "
        f"body_read_timeout_s 10); commit {machine.commit()}, {os.cpu_count()} cores, "
        f"load average {machine.load_average()}",
        "",
        "| slow client | connections | held p50 s | held max s | never closed |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, seconds in held.items():
        never = sum(1 for value in seconds if value >= GIVE_UP_S)
        lines.append(f"| {kind} | {len(seconds)} | {statistics.median(seconds):.1f} | {max(seconds):.1f} | {never} |")
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    lines += [
        "",
        f"Normal chat requests meanwhile: {len(latencies)} sent, all 200; latency p50 "
        f"{statistics.median(latencies):.1f} ms, p99 {quantiles[98]:.1f} ms, max {max(latencies):.1f} ms.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmproxy-slowloris-") as tmp:
        workdir = Path(tmp)
        with (
            EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis", persist=False)) as redis_server,
            services.fake_upstream(workdir) as upstream_url,
            services.proxy(workdir, redis_server.url, upstream_url) as url,
        ):
            held, latencies = asyncio.run(measure(url, args.connections))
    print(report(held, latencies, args.connections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
