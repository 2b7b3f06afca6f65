"""Take the README's screenshots of the web console: the overview and the entries page.

    .venv/bin/python -m scripts.console_screenshots            # writes docs/console-overview.png, console-entries.png
    .venv/bin/python -m scripts.console_screenshots --out /tmp

It starts an embedded Redis Stack, the fake upstream and `llmproxy serve` (load_tests/services.py), writes a day of
traffic history (synthetic samples, written with the proxy's own history writer, so the 24 h charts have a shape),
then sends real requests through the proxy with the OpenAI SDK (misses, exact repeats, paraphrases) and photographs
the console in Debian's Chromium at a laptop's size.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import tempfile
import time
from pathlib import Path

from openai import OpenAI
from playwright.sync_api import Page
from redis.asyncio import Redis

from llmproxy.settings import TimeSeriesSettings
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from llmproxy.telemetry.history import HistoryWriter
from llmproxy.telemetry.prometheus import ProxyMetrics
from llmproxy.telemetry.sample import Sample
from llmproxy.telemetry.timeseries import HistoryStore
from load_tests.services import fake_upstream, proxy
from tests.support.console import chromium, console_page

REPO = Path(__file__).resolve().parents[1]
TOKEN = "screenshot-admin-token-0123456789"
PREFIX = "llmproxy"
MODELS = {"gpt-4o-mini": 0.7, "gpt-4o": 0.3}  # share of the synthetic traffic
QUESTIONS = [
    ("How do I reverse a list in Python?", "What is the way to reverse a Python list?"),
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("Explain the difference between TCP and UDP.", "What is the difference between TCP and UDP?"),
    ("How do I sort a dictionary by value in Python?", "How can I sort a Python dict by its values?"),
    ("Write a haiku about autumn leaves.", None),
    ("Summarise the plot of Hamlet in two sentences.", None),
    ("What does HTTP status 429 mean?", "What is the meaning of HTTP status code 429?"),
    ("Convert 100 degrees Fahrenheit to Celsius.", None),
]


async def backfill(redis_url: str, hours: int = 24) -> None:
    """Synthetic samples, one per ~40 s of the last `hours` (a busier afternoon), oldest first, ending a minute ago."""
    rng = random.Random(17)
    redis = Redis.from_url(redis_url)
    store = HistoryStore(redis, PREFIX, TimeSeriesSettings())
    writer = HistoryWriter(store, ProxyMetrics(), TimeSeriesSettings(queue_size=100_000))
    now_ms = int(time.time() * 1000) - 60_000
    start_ms = now_ms - hours * 3_600_000
    for at_ms in range(start_ms, now_ms, 40_000):
        hour = (at_ms // 3_600_000) % 24
        busy = 1.6 + math.sin((hour - 9) / 24 * 2 * math.pi)
        for _ in range(rng.randint(0, int(3 * busy))):
            writer.offer(synthetic_sample(rng, at_ms + rng.randint(0, 39_999)))
    await writer.flush()
    await redis.aclose()


def synthetic_sample(rng: random.Random, at_ms: int) -> Sample:
    model = rng.choices(list(MODELS), weights=list(MODELS.values()))[0]
    roll = rng.random()
    if roll < 0.42:
        return Sample(at_ms, "hit_l1", model, rng.uniform(0.6, 2.5), 180, 0.00009 if model == "gpt-4o-mini" else 0.0015)
    if roll < 0.58:
        return Sample(at_ms, "hit_l2", model, rng.uniform(9, 25), 210, 0.0001 if model == "gpt-4o-mini" else 0.0018)
    if roll < 0.97:
        return Sample(at_ms, "miss", model, rng.uniform(400, 1800), 0, 0.0)
    return Sample(at_ms, "error", model, rng.uniform(20, 400), 0, 0.0)


def live_traffic(proxy_url: str) -> None:
    """Real requests through the proxy: each question, a repeat (L1 hit) and its paraphrase (L2 hit)."""
    tenants = [OpenAI(base_url=proxy_url + "/v1", api_key=f"sk-team-{name}", max_retries=0) for name in ("a", "b")]
    for index, (question, paraphrase) in enumerate(QUESTIONS):
        sdk = tenants[index % 2]
        model = "gpt-4o-mini" if index % 3 else "gpt-4o"
        ask = {"model": model, "extra_headers": {"X-LLMProxy-Namespace": "support"} if index % 4 == 1 else {}}
        for text in [question, question, paraphrase]:
            if text is not None:
                sdk.chat.completions.create(messages=[{"role": "user", "content": text}], **ask)
    tenants[0].embeddings.create(model="text-embedding-3-small", input="release notes for version 2.4")
    for sdk in tenants:
        sdk.close()


def photograph(proxy_url: str, out: Path) -> None:
    with chromium() as browser, console_page(browser, proxy_url) as console:
        page = console.page
        console.open()
        console.sign_in(TOKEN)
        page.get_by_text("24 h", exact=True).click()
        wait_overview(page)
        page.screenshot(path=out / "console-overview.png", full_page=True)
        console.go("Entries")
        page.locator("#entries-table tbody tr").first.wait_for()
        invalidate = page.get_by_role("region", name="Invalidate", exact=True)
        invalidate.get_by_label("Model").fill("gpt-4o")
        invalidate.get_by_role("button", name="Count matches (dry run)").click()
        page.get_by_text("Dry run:").wait_for()
        page.screenshot(path=out / "console-entries.png", full_page=True)
        console.assert_no_errors()


def wait_overview(page: Page) -> None:
    page.get_by_text("Traffic over the last 24 hours").wait_for()
    page.locator(".chart").first.wait_for()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        with EmbeddedRedis(EmbeddedRedisConfig(data_dir=work / "redis")) as redis_server:
            with fake_upstream(work, latency_ms=300) as upstream:
                sections: dict[str, dict[str, object]] = {"admin": {"token": TOKEN}, "redis": {"key_prefix": PREFIX}}
                with proxy(work, redis_server.url, upstream, sections=sections) as url:
                    asyncio.run(backfill(redis_server.url))
                    live_traffic(url)
                    time.sleep(2)  # the history writer flushes every second
                    photograph(url, args.out)
    print(f"wrote {args.out / 'console-overview.png'} and {args.out / 'console-entries.png'}")


if __name__ == "__main__":
    main()
