"""L2 (semantic) hit throughput through a real `llmproxy serve`, next to L1 hits and bare embedding time.

Starts its own Redis Stack, fake upstream and proxy (one uvicorn worker) on free loopback ports, stores
a set of questions, then drives paraphrases of them with wrk (Debian package `wrk`). Paraphrase requests
carry `Cache-Control: no-store` so an L2 hit is not promoted into L1: every request takes the L2 path.
L2 is measured at the given concurrency (throughput) and at 1 connection (latency over the embedding).

    .venv/bin/python load_tests/l2_hit_bench.py [--duration 15] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from llmproxy.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from llmproxy.embeddings import Embedder, load_model
from llmproxy.settings import EmbeddingSettings

TOPICS = [
    ("reverse", "list"),
    ("sort", "dictionary"),
    ("merge", "two lists"),
    ("copy", "file"),
    ("parse", "JSON string"),
    ("read", "CSV file"),
    ("flatten", "nested list"),
    ("remove duplicates from", "list"),
    ("split", "string"),
    ("format", "date"),
    ("round", "float"),
    ("shuffle", "list"),
    ("zip", "two lists"),
    ("filter", "list"),
    ("count words in", "string"),
    ("reverse", "string"),
    ("sum", "list of numbers"),
    ("open", "text file"),
    ("delete", "file"),
    ("rename", "folder"),
    ("compress", "folder"),
    ("hash", "password"),
    ("encode", "URL"),
    ("decode", "base64 string"),
    ("measure", "execution time"),
]
LANGUAGES = ["Python", "JavaScript"]


def questions() -> list[tuple[str, str]]:
    """(stored question, paraphrase) pairs with the same entities and no numbers: all should be L2 hits."""
    pairs = []
    for language in LANGUAGES:
        for verb, noun in TOPICS:
            pairs.append((f"How do I {verb} a {noun} in {language}?", f"How can I {verb} a {noun} in {language}?"))
    return pairs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(command: list[str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{command[2:4]} did not start:\n{log.read_text()}")
        yield
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)


def wrk(url: str, bodies: list[str], headers: dict[str, str], duration: int, connections: int) -> dict[str, float]:
    """Run wrk over the bodies round-robin; req/s and latency percentiles in ms."""
    script = Path(tempfile.mkdtemp()) / "bodies.lua"
    lines = ["local bodies = {"] + [f"  {json.dumps(body)}," for body in bodies] + ["}", "local i = 0"]
    lines += ["wrk.method = 'POST'", "wrk.headers['Content-Type'] = 'application/json'"]
    lines += [f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items()]
    lines += ["request = function()", "  i = i % #bodies + 1", "  return wrk.format(nil, nil, nil, bodies[i])", "end"]
    script.write_text("\n".join(lines))
    command = [
        "wrk",
        "-t",
        str(min(2, connections)),
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> dict[str, float]:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for percentile in ("50", "99"):
        result[f"p{percentile}"] = ms(re.search(rf"\s{percentile}%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    return result


def body(text: str) -> str:
    return json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": text}]})


def embedding_latency_ms(samples: int = 200) -> float:
    embedder = Embedder(load_model(EmbeddingSettings()), 32, 0)
    texts = [paraphrase for _, paraphrase in questions()]
    timings = []
    for index in range(samples):
        started = time.perf_counter()
        embedder.encode([texts[index % len(texts)]])
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="llmproxy-bench-"))
    cli = [sys.executable, "-m", "llmproxy"]
    with EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis")) as redis:
        up_port, proxy_port = free_port(), free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        proxy = f"http://127.0.0.1:{proxy_port}"
        env_cmd = cli + ["serve", "--port", str(proxy_port), "--redis-url", redis.url, "--upstream", upstream + "/v1"]
        os.environ["LLMPROXY_SERVER__LOG_LEVEL"] = "warning"
        with (
            process(cli + ["fake-upstream", "--port", str(up_port)], upstream + "/_stats", workdir / "up.log"),
            process(env_cmd, proxy + "/readyz", workdir / "proxy.log"),
        ):
            report(proxy, args.duration, args.connections)


def report(proxy: str, duration: int, connections: int) -> None:
    auth = {"Authorization": "Bearer sk-bench"}
    pairs = questions()
    for stored, _ in pairs:
        httpx.post(proxy + "/v1/chat/completions", content=body(stored), headers=auth, timeout=30).raise_for_status()
    statuses = [
        httpx.post(
            proxy + "/v1/chat/completions", content=body(p), headers={**auth, "Cache-Control": "no-store"}, timeout=30
        ).headers["x-cache"]
        for _, p in pairs
    ]
    hit_ratio = statuses.count("HIT-L2") / len(statuses)
    url = proxy + "/v1/chat/completions"
    l1 = wrk(url, [body(s) for s, _ in pairs], auth, duration, connections)
    no_store = {**auth, "Cache-Control": "no-store"}
    l2 = wrk(url, [body(p) for _, p in pairs], no_store, duration, connections)
    l2_single = wrk(url, [body(p) for _, p in pairs], no_store, duration, 1)
    embed_ms = embedding_latency_ms()
    print(f"paraphrases answered HIT-L2 in the check pass: {hit_ratio:.0%} of {len(statuses)}")
    print(f"single-prompt embedding (in-process, 1 torch thread): p50 {embed_ms:.2f} ms")
    print(f"\n| path ({duration}s each, 1 worker) | connections | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = (("L1 hit", connections, l1), ("L2 hit", connections, l2), ("L2 hit", 1, l2_single))
    for name, conns, row in rows:
        print(f"| {name} | {conns} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} | {row['errors']:.0f} |")
    print(f"\nL2 hit p50 at 1 connection minus embedding p50: {l2_single['p50'] - embed_ms:.2f} ms")


if __name__ == "__main__":
    main()
