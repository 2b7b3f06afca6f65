"""What the optional verifier model costs per L2 lookup, through a real `llmproxy serve`.

Starts its own Redis Stack, fake upstream and two proxies in turn, without and with `semantic.verifier_model`
(all-MiniLM-L6-v2 again, named by its folder: the only sentence-transformers model installed here, so this measures
the verifier's machinery and one extra MiniLM embedding, not a stronger model's time). Stores the workload's
questions, then asks their paraphrases several times with `Cache-Control: no-store` (every request takes the L2
path), and reads the stage histograms from /metrics: `l2` (the whole lookup) and `verify` (inside it).

    .venv/bin/python load_tests/verifier_bench.py [--passes 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import redis as redis_lib
from prometheus_client.parser import text_string_to_metric_families

import services
from llmproxy.embeddings.model_files import default_model_path
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from workload import chat_body, questions

CHAT = "/v1/chat/completions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    verifier = {"verifier_model": str(default_model_path()), "verifier_max_distance": 0.3}
    print("| proxy | L2 hits | request p50 ms | embed mean ms | l2 mean ms | verify mean ms (within l2) | verified |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="llmproxy-verifier-bench-") as tmp:
        workdir = Path(tmp)
        with (
            EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis")) as redis,
            services.fake_upstream(workdir) as upstream,
        ):
            runs = (("without verifier", "plain", {}), ("with verifier (MiniLM)", "verified", verifier))
            for name, prefix, semantic in runs:
                sections: dict[str, dict[str, object]] = {"semantic": semantic, "redis": {"key_prefix": prefix}}
                with services.proxy(workdir, redis.url, upstream, sections=sections) as url:
                    print(measure(name, url, args.passes), stored_vectors(redis.url, prefix))


def measure(name: str, url: str, passes: int) -> str:
    auth = {"Authorization": "Bearer sk-bench"}
    pairs = questions()
    with httpx.Client(timeout=30) as http:
        for stored, _ in pairs:
            http.post(url + CHAT, content=chat_body(stored), headers=auth).raise_for_status()
        time.sleep(1)  # the last write-backs follow their responses (a benchmark, not a test)
        durations, hits = [], 0
        for _ in range(passes):
            for _, paraphrase in pairs:
                started = time.perf_counter()
                response = http.post(
                    url + CHAT, content=chat_body(paraphrase), headers={**auth, "Cache-Control": "no-store"}
                )
                durations.append((time.perf_counter() - started) * 1000)
                hits += response.headers["x-cache"] == "HIT-L2"
        stages = stage_means(http.get(url + "/metrics").text)
    l2_ms, _ = stages.get("l2", (0.0, 0))
    embed_ms, _ = stages.get("embed", (0.0, 0))
    verify_ms, verified = stages.get("verify", (0.0, 0))
    total = passes * len(pairs)
    return (
        f"| {name} | {hits}/{total} | {statistics.median(durations):.2f} | {embed_ms:.2f} | {l2_ms:.2f} | "
        f"{verify_ms:.2f} | {verified} |"
    )


def stored_vectors(redis_url: str, prefix: str) -> str:
    """How many L2 documents carry a verifier vector."""
    with redis_lib.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:l2:*"))
        carrying = sum(bool(client.hexists(key, "verifier_vector")) for key in keys)
    return f"(verifier vectors stored: {carrying}/{len(keys)})"


def stage_means(text: str) -> dict[str, tuple[float, int]]:
    """Mean milliseconds and count per stage of llmproxy_stage_duration_seconds."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            stage = sample.labels.get("stage", "")
            if sample.name == "llmproxy_stage_duration_seconds_sum":
                sums[stage] = sample.value
            elif sample.name == "llmproxy_stage_duration_seconds_count":
                counts[stage] = int(sample.value)
    return {stage: (1000 * sums[stage] / counts[stage], counts[stage]) for stage in counts if counts[stage]}


if __name__ == "__main__":
    main()
