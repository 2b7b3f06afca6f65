"""One huge SSE event: decode time in the proxy's SSE decoder, and /healthz latency while the proxy relays it.

Also large JSON bodies: orjson parsing and the cache entry's encoding and decoding, and how long each holds
the event loop when run on it and when handed to a worker thread (`--json`).

Decoder: a single `data:` event of N MB (one chat chunk whose content is N MB), fed in 16 KiB slices as the
aiohttp transport hands them over; best of 3 runs, and the longest single feed (how long one slice holds the
event loop). Through the proxy: `llmproxy serve` with its own Redis Stack and the fake upstream, which sends
the N MB event in 64 KiB slices; /healthz is polled every 10 ms while the stream is read, and its slowest
answer is reported. `upstream.max_event_bytes` is raised to 16 MiB (when this checkout has the setting) so
that every size is relayed in full; the answer is sent with `Cache-Control: no-store`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio.to_thread
import httpx
import orjson

import services
from llmproxy.cache.entry import CacheEntry, decode_entry, encode_entry
from llmproxy.settings import UpstreamSettings
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from llmproxy.streaming import SseDecoder

SLICE = 16 * 1024
MB = 1_000_000


def huge_event(size: int) -> bytes:
    chunk = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x" * size}}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def decode_once(event: bytes) -> tuple[float, float]:
    """Seconds to decode the event, and the longest single feed."""
    decoder = SseDecoder()
    longest = 0.0
    started = time.perf_counter()
    for start in range(0, len(event), SLICE):
        fed = time.perf_counter()
        decoder.feed(event[start : start + SLICE])
        longest = max(longest, time.perf_counter() - fed)
    return time.perf_counter() - started, longest


def decoder_rows(sizes: list[int]) -> None:
    print("| event | decode s (best of 3) | longest feed ms |")
    print("|---:|---:|---:|")
    for size in sizes:
        runs = [decode_once(huge_event(size * MB)) for _ in range(3)]
        total, longest = min(runs)
        print(f"| {size} MB | {total:.3f} | {longest * 1000:.1f} |")


def chat_answer(size: int) -> dict[str, object]:
    message = {"role": "assistant", "content": "word " * (size // 5)}
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}


async def loop_gap(work: Callable[[], object], offload: bool) -> float:
    """The longest the event loop went without running a 1 ms ticker while `work` ran (on it, or in a thread)."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    if offload:
        await anyio.to_thread.run_sync(work)
    else:
        work()
    await asyncio.sleep(0.01)
    stop.set()
    await ticker
    return max(gaps)


def best_of_3(work: Callable[[], object]) -> float:
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    return min(runs)


def json_row(size: int) -> str:
    answer = chat_answer(size * MB)
    body = orjson.dumps(answer)
    entry = CacheEntry(kind="chat", model="m", created_at=0.0, response=answer)
    parse = partial(orjson.loads, body)
    cells = [
        best_of_3(parse),
        best_of_3(partial(encode_entry, entry)),
        best_of_3(partial(decode_entry, encode_entry(entry))),
        asyncio.run(loop_gap(parse, offload=False)),
        asyncio.run(loop_gap(parse, offload=True)),
    ]
    return f"| {size} MB | " + " | ".join(f"{seconds * 1000:.1f}" for seconds in cells) + " |"


def json_rows(sizes: list[int]) -> None:
    print(
        "\n| body | orjson.loads ms | entry encode ms | entry decode ms | loop gap: loads on the loop | in a thread |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        print(json_row(size))


def relay_row(proxy: str, size: int) -> str:
    slowest = 0.0
    done = threading.Event()

    def poll_health() -> None:
        nonlocal slowest
        with httpx.Client(timeout=30) as health:
            while not done.is_set():
                asked = time.perf_counter()
                health.get(proxy + "/healthz").raise_for_status()
                slowest = max(slowest, time.perf_counter() - asked)
                time.sleep(0.01)

    body = {"model": "fake-model", "messages": [{"role": "user", "content": f"huge {size}"}], "stream": True}
    headers = {"Authorization": "Bearer sk-bench", "Cache-Control": "no-store", "X-Fake-Content-Bytes": str(size * MB)}
    poller = threading.Thread(target=poll_health)
    poller.start()
    started = time.perf_counter()
    received = 0
    try:
        with httpx.stream("POST", proxy + "/v1/chat/completions", json=body, headers=headers, timeout=120) as reply:
            for piece in reply.iter_raw():
                received += len(piece)
    finally:
        done.set()
        poller.join()
    elapsed = time.perf_counter() - started
    return f"| {size} MB | {elapsed:.2f} | {received / MB:.1f} | {slowest * 1000:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,10", help="event sizes in MB, comma-separated")
    parser.add_argument("--decoder-only", action="store_true", help="skip the run through the proxy")
    parser.add_argument("--json", action="store_true", help="also time large JSON bodies (parse, entry, loop gap)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    decoder_rows(sizes)
    if args.json:
        json_rows(sizes)
    if args.decoder_only:
        return
    sections: dict[str, dict[str, object]] = {}
    if "max_event_bytes" in UpstreamSettings.model_fields:
        sections["upstream"] = {"max_event_bytes": 16 * 1024 * 1024}
    with tempfile.TemporaryDirectory(prefix="llmproxy-bench-") as tmp:
        workdir = Path(tmp)
        with (
            EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis")) as redis,
            services.fake_upstream(workdir) as upstream,
            services.proxy(workdir, redis.url, upstream, sections=sections) as proxy,
        ):
            print("\n| event | stream s | MB relayed | slowest /healthz ms |")
            print("|---:|---:|---:|---:|")
            for size in sizes:
                print(relay_row(proxy, size))


if __name__ == "__main__":
    main()
