"""Time to first byte of streamed chat completions, one request at a time (wrk does not report it).

For each request: the clock starts before the request is sent and stops when the first chunk of the response
body arrives (after the status line and headers); the rest of the stream is then read to the end, so the
proxy sees a complete stream and stores it as it would for a real client.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
from dataclasses import dataclass

import httpx

from workload import UNIQUE


@dataclass(frozen=True, slots=True)
class Ttfb:
    requests: int
    p50_ms: float
    p99_ms: float
    x_cache: tuple[str, ...]  # distinct X-Cache values seen


async def _first_byte_ms(client: httpx.AsyncClient, url: str, body: str, headers: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    async with client.stream("POST", url, content=body, headers=headers) as response:
        elapsed = None
        async for _ in response.aiter_raw():
            if elapsed is None:
                elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or elapsed is None:
            raise RuntimeError(f"stream from {url} answered {response.status_code} with no body")
        return elapsed, response.headers.get("x-cache", "-")


async def _measure(url: str, templates: list[str], headers: dict[str, str], requests: int, warmup: int) -> Ttfb:
    run_tag = random.randrange(100_000, 999_999)
    numbers = itertools.count(1)
    timings, statuses = [], set()
    async with httpx.AsyncClient(timeout=30) as client:
        for index in range(warmup + requests):
            body = templates[index % len(templates)].replace(UNIQUE, f"{run_tag}{next(numbers):07d}")
            elapsed, status = await _first_byte_ms(client, url, body, headers)
            if index >= warmup:
                timings.append(elapsed)
                statuses.add(status)
    timings.sort()
    p99 = timings[min(len(timings) - 1, round(len(timings) * 0.99) - 1)]
    return Ttfb(len(timings), statistics.median(timings), p99, tuple(sorted(statuses)))


def measure(url: str, templates: list[str], headers: dict[str, str], requests: int, warmup: int = 5) -> Ttfb:
    """TTFB p50/p99 over `requests` streamed requests (bodies from templates, UNIQUE numbered), after a warm-up."""
    return asyncio.run(_measure(url, templates, headers, requests, warmup))
