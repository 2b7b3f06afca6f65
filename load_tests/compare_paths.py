"""The paths compare.py measures, each checked to be the path it claims (X-Cache, upstream call counts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

import services
import ttfb
import wrk
from compare_report import Comparison, Measured, at_least_ratio, at_least_rps, at_most_added
from embedding_time import single_prompt_ms
from workload import LONG_QUESTION, UNIQUE, chat_body, questions, unique_question

CHAT = "/v1/chat/completions"
AUTH = {"Authorization": "Bearer sk-llmproxy-bench"}
NO_STORE = {**AUTH, "Cache-Control": "no-store"}  # an L2 hit is not promoted into L1
BYPASS = {**AUTH, "Cache-Control": "no-cache, no-store"}  # no lookup, no write: X-Cache BYPASS
MISS_TEMPLATES = [chat_body(unique_question(topic)) for topic in range(25)]
STREAM_TEMPLATES = [chat_body(unique_question(topic), stream=True) for topic in range(25)]


@dataclass(frozen=True, slots=True)
class Settings:
    duration_s: float
    warmup_s: float
    connections: int
    wrk_threads: int
    ttfb_requests: int


@dataclass(frozen=True, slots=True)
class Urls:
    upstream: str
    baseline: str
    proxy: str


class Bench:
    """Runs wrk against one URL and reports what the upstream saw meanwhile."""

    def __init__(self, settings: Settings, urls: Urls, log: Callable[[str], None]) -> None:
        self.settings = settings
        self.urls = urls
        self._log = log

    def load(
        self, label: str, url: str, bodies: list[str], headers: dict[str, str], connections: int, unique: bool = False
    ) -> Measured:
        """One measured wrk run (after a warm-up for the throughput rows); check names the upstream calls made."""
        s = self.settings
        if s.warmup_s > 0 and connections > 1:
            wrk.run(wrk.Load(url, bodies, headers, connections, s.warmup_s, unique, s.wrk_threads))
        before = services.settled_upstream_calls(self.urls.upstream)
        result = wrk.run(wrk.Load(url, bodies, headers, connections, s.duration_s, unique, s.wrk_threads))
        calls = services.settled_upstream_calls(self.urls.upstream) - before
        if result.errors or result.non_2xx:
            raise RuntimeError(f"{label}: {result.errors} socket errors, {result.non_2xx} non-2xx responses")
        self._log(f"{label} c={connections}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms ({result.command})")
        check = f"upstream calls/request {calls / result.requests:.2f}" if result.requests else ""
        return Measured(label, connections, result.rps, result.p50_ms, result.p99_ms, check)


def x_cache(url: str, body: str, headers: dict[str, str]) -> str:
    response = httpx.post(url + CHAT, content=body, headers=headers, timeout=30)
    response.raise_for_status()
    return response.headers.get("x-cache", "-")


def expect(url: str, body: str, headers: dict[str, str], wanted: str) -> None:
    """Raises RuntimeError unless the proxy answers this request with X-Cache `wanted`."""
    got = x_cache(url, body, headers)
    if got != wanted:
        raise RuntimeError(f"expected X-Cache {wanted}, got {got} for {body[:80]}")


def prime_l1(urls: Urls) -> bytes:
    """Store the L1 question (a ~1 KB answer); returns the answer's bytes as the proxy serves them."""
    x_cache(urls.proxy, chat_body(LONG_QUESTION), AUTH)
    response = httpx.post(urls.proxy + CHAT, content=chat_body(LONG_QUESTION), headers=AUTH, timeout=30)
    if response.headers.get("x-cache") != "HIT-L1":
        raise RuntimeError(f"L1 priming failed: X-Cache {response.headers.get('x-cache')}")
    return response.content


def prime_l2(urls: Urls) -> str:
    """Store every question, then check each paraphrase is answered HIT-L2. Raises RuntimeError if none is."""
    for stored, _ in questions():
        x_cache(urls.proxy, chat_body(stored), AUTH)
    statuses = [x_cache(urls.proxy, chat_body(paraphrase), NO_STORE) for _, paraphrase in questions()]
    hits = statuses.count("HIT-L2")
    if hits == 0:
        raise RuntimeError(f"no paraphrase was an L2 hit: {statuses}")
    return f"X-Cache HIT-L2 for {hits}/{len(statuses)} paraphrases"


def all_paths(bench: Bench, embed_samples: int) -> list[Comparison]:
    """Every row of the table, in the order measured."""
    rows = baseline_and_l1(bench)
    embed_l2, embed_miss = embedding_rows(embed_samples)
    rows += [Comparison(embed_l2), Comparison(embed_miss)]
    rows += l2_rows(bench, embed_l2)
    rows += miss_rows(bench, embed_miss)
    rows += stream_rows(bench, embed_miss)
    return rows


def baseline_and_l1(bench: Bench) -> list[Comparison]:
    urls, c = bench.urls, bench.settings.connections
    l1_body = [chat_body(LONG_QUESTION)]
    bare = bench.load("baseline: bare Starlette POST", urls.baseline + "/bare", l1_body, AUTH, c)
    get_c = bench.load("baseline: Starlette + 1 redis GET", urls.baseline + CHAT, l1_body, AUTH, c)
    get_1 = bench.load("baseline: Starlette + 1 redis GET", urls.baseline + CHAT, l1_body, AUTH, 1)
    expect(urls.proxy, l1_body[0], AUTH, "HIT-L1")
    l1_c = with_check(bench.load("proxy: L1 hit", urls.proxy + CHAT, l1_body, AUTH, c), "X-Cache HIT-L1")
    l1_1 = with_check(bench.load("proxy: L1 hit", urls.proxy + CHAT, l1_body, AUTH, 1), "X-Cache HIT-L1")
    versus = "baseline + GET, same c"
    return [
        Comparison(bare),
        Comparison(get_c, bare, "bare, same c"),
        Comparison(get_1),
        Comparison(l1_c, get_c, versus, target=at_least_ratio(0.8)),
        Comparison(l1_1, get_1, versus, target=at_most_added(1)),
    ]


def embedding_rows(samples: int) -> tuple[Measured, Measured]:
    """The proxy's embedder in this process, on the L2 paraphrases and on the miss prompts, while the servers idle."""
    texts = [paraphrase for _, paraphrase in questions()]
    # Numbered as wrk numbers the measured misses (run tag, thread, 7-digit counter: 14 digits), since the digits
    # are a good part of the prompt's tokens: shorter numbers made this row ~2 ms cheaper than the misses' embedding.
    misses = [unique_question(topic).replace(UNIQUE, f"{123_456}1{topic + 1:07d}") for topic in range(25)]
    timed = single_prompt_ms({"L2 prompts": texts, "miss prompts": misses}, samples)
    l2, miss = (
        Measured(f"embedding only (in-process, {name})", 1, None, t.p50_ms, t.p99_ms) for name, t in timed.items()
    )
    return l2, miss


def l2_rows(bench: Bench, embedding: Measured) -> list[Comparison]:
    urls, c = bench.urls, bench.settings.connections
    hit_check = prime_l2(urls)
    paraphrases = [chat_body(paraphrase) for _, paraphrase in questions()]
    l2_c = with_check(bench.load("proxy: L2 hit", urls.proxy + CHAT, paraphrases, NO_STORE, c), hit_check)
    l2_1 = with_check(bench.load("proxy: L2 hit", urls.proxy + CHAT, paraphrases, NO_STORE, 1), hit_check)
    return [Comparison(l2_c), Comparison(l2_1, embedding, "embedding only", target=at_most_added(3))]


def miss_rows(bench: Bench, embedding: Measured) -> list[Comparison]:
    """The upstream called directly, then the proxy's miss path and its forwarder (BYPASS) with the same bodies."""
    urls, c, proxy = bench.urls, bench.settings.connections, bench.urls.proxy + CHAT
    direct_c = bench.load("fake upstream, direct", urls.upstream + CHAT, MISS_TEMPLATES, AUTH, c, unique=True)
    direct_1 = bench.load("fake upstream, direct", urls.upstream + CHAT, MISS_TEMPLATES, AUTH, 1, unique=True)
    expect(urls.proxy, MISS_TEMPLATES[0].replace(UNIQUE, "1"), AUTH, "MISS")
    miss = "proxy: miss (embed, L1+L2 lookup, forward, write)"
    miss_c = with_check(bench.load(miss, proxy, MISS_TEMPLATES, AUTH, c, unique=True), "X-Cache MISS")
    miss_1 = with_check(bench.load(miss, proxy, MISS_TEMPLATES, AUTH, 1, unique=True), "X-Cache MISS")
    expect(urls.proxy, MISS_TEMPLATES[0].replace(UNIQUE, "2"), BYPASS, "BYPASS")
    forwarder = "proxy: forwarder (BYPASS)"
    fwd_c = with_check(bench.load(forwarder, proxy, MISS_TEMPLATES, BYPASS, c, unique=True), "X-Cache BYPASS")
    fwd_1 = with_check(bench.load(forwarder, proxy, MISS_TEMPLATES, BYPASS, 1, unique=True), "X-Cache BYPASS")
    versus = "upstream direct, same c"
    beyond = at_most_added(2, " beyond the embedding")
    return [
        Comparison(direct_c),
        Comparison(direct_1),
        Comparison(miss_c, direct_c, versus),
        Comparison(miss_1, direct_1, "upstream direct + embedding", embedding.p50_ms, beyond),
        Comparison(fwd_c, direct_c, versus, target=at_least_rps(5000)),
        Comparison(fwd_1, direct_1, versus),
    ]


def stream_rows(bench: Bench, embedding: Measured) -> list[Comparison]:
    """TTFB of streamed misses: direct, through the proxy (miss path), through the proxy (BYPASS)."""
    urls, n = bench.urls, bench.settings.ttfb_requests
    direct = ttfb.measure(urls.upstream + CHAT, STREAM_TEMPLATES, AUTH, n)
    miss = ttfb.measure(urls.proxy + CHAT, STREAM_TEMPLATES, AUTH, n)
    bypass = ttfb.measure(urls.proxy + CHAT, STREAM_TEMPLATES, BYPASS, n)
    direct_row = ttfb_row("stream TTFB: fake upstream, direct", direct)
    miss_row = ttfb_row("stream TTFB: proxy miss", miss)
    bypass_row = ttfb_row("stream TTFB: proxy BYPASS", bypass)
    beyond = at_most_added(2, " beyond the embedding")
    return [
        Comparison(direct_row),
        Comparison(miss_row, direct_row, "direct + embedding", embedding.p50_ms, beyond),
        Comparison(bypass_row, direct_row, "direct", target=at_most_added(2)),
    ]


def ttfb_row(label: str, measured: ttfb.Ttfb) -> Measured:
    seen = [status for status in measured.x_cache if status != "-"]  # the upstream sends no X-Cache
    check = "X-Cache " + "/".join(seen) if seen else ""
    return Measured(label, 1, None, measured.p50_ms, measured.p99_ms, check)


def with_check(row: Measured, check: str) -> Measured:
    return Measured(row.label, row.connections, row.rps, row.p50_ms, row.p99_ms, f"{check}; {row.check}")


def notes(settings: Settings) -> list[str]:
    """How each row was taken, for the results file."""
    s = settings
    return [
        f"wrk: {s.duration_s:g} s per row, {s.wrk_threads} threads (1 at c=1), keep-alive connections; a "
        f"{s.warmup_s:g} s wrk warm-up precedes each c={s.connections} row. Latency is wrk's, per request.",
        "Baseline: load_tests/baseline_app.py (one uvicorn worker, uvloop, httptools, log level warning, like the "
        "proxy). Its GET returns the exact bytes of the proxy's L1 answer (about 1 KB); /bare returns a 1 KB constant.",
        "L1 hit: one chat request repeated (primed once). L2 hit: 50 paraphrases of 50 stored questions sent "
        "round-robin with `Cache-Control: no-store` (no promotion into L1), so each is embedded and looked up.",
        "Embedding only: the proxy's Embedder called in this process, one prompt at a time, while the servers idle.",
        "Miss: every request a new prompt (a per-request number in the text, unique across threads and runs), so each "
        "is embedded, looked up in L1 and L2 (the number guard refuses near neighbours), forwarded, and written "
        "back. Upstream direct: the same bodies sent to the fake upstream.",
        "Forwarder: `Cache-Control: no-cache, no-store` (X-Cache BYPASS): no lookup, no write, and with the router "
        "off no embedding; the proxy parses, keys and forwards.",
        f"Stream TTFB: {s.ttfb_requests} streamed misses one at a time (httpx, after 5 warm-up requests); the time "
        "from sending the request to the first body chunk, then the stream is read to the end.",
        "Added p50 = row p50 - reference p50 (- the embedding p50 where the reference does not embed). "
        f"At c={s.connections} p50 is mostly queueing (connections / req/s); the c=1 rows measure latency.",
        "check: what the proxy answered (X-Cache, checked before the run) and fake-upstream calls per request "
        "during the run (0 for hits, 1 for misses and the forwarder).",
    ]
