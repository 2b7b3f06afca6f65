"""Shadow verification against a known truth: does the live precision estimate match the injected share of wrong
L2 hits, and does the error budget tighten the threshold when it is exceeded?

Starts its own Redis Stack, the fake upstream answering by meaning (`--answers meaning`: the same content words get
the same answer, a changed content word another) and `llmproxy serve` with guards off and a loose threshold, so that
wrong paraphrases are served. Each stored question ("How do I reset my password?") lives in a tenant of its own
and is asked again in variants: same content words (a right hit: "how can I reset my password") or, with the
chosen probability, one content word changed (a wrong hit when it is near enough: "How do I change my password?").
Truth is known per hit (the fake's answers differ exactly when the content words do).

Phase 1 audits every hit (semantic.audit_rate 1) until `--hits` were audited and compares the estimate of
/admin/stats with the truth. Phase 2 starts a proxy with semantic.max_error_rate and sends the same kind of traffic
in rounds, printing the effective threshold and the true wrong share of each round's hits.

    .venv/bin/python load_tests/shadow_audit_bench.py [--hits 500] [--wrong 0.5] [--seed 15]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import services
from llmproxy.fake_upstream.meaning import content_words
from llmproxy.proxy.scope import caller_credentials, tenant_id
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig

CHAT = "/v1/chat/completions"
ADMIN = "bench-admin-token"
MODEL = "fake-model"
VERBS = ("reset", "change", "recover", "update", "delete", "protect", "share", "unlock", "sync", "encrypt", "back up",
         "clean", "repair", "replace", "insure", "sell", "paint", "charge")  # fmt: skip
NOUNS = ("password", "laptop", "phone", "account", "router", "printer", "car", "bike", "email", "tablet", "camera",
         "keyboard", "watch", "house", "garden", "fridge", "television", "calendar")  # fmt: skip
SAME_MEANING = ("how can I {verb} my {noun}", "How do I {verb} my {noun} please?", "{verb} my {noun}: how?",
                "how do you {verb} your {noun}", "How can I {verb} my {noun}?")  # fmt: skip
STORED = "How do I {verb} my {noun}?"
LOOSE = {"guards": False, "threshold": 0.3, "max_threshold": 0.3, "audit_rate": 1.0, "audit_max_per_minute": 100_000,
         "audit_queue_size": 100_000}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Hit:
    tenant: str  # the caller's API key
    asked: str
    wrong: bool  # the fake's answer to the asked prompt differs from the served one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=500, help="audited L2 hits in phase 1")
    parser.add_argument("--wrong", type=float, default=0.5, help="share of variants with a content word changed")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmproxy-audit-bench-") as tmp:
        workdir = Path(tmp)
        with EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis")) as redis, meaning_upstream(workdir) as up:
            estimate_phase(workdir, redis.url, up, args)
            budget_phase(workdir, redis.url, up, args)


@contextmanager
def meaning_upstream(workdir: Path) -> Iterator[str]:
    """The fake model server answering by meaning; yields its base URL."""
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    command = services.cli() + ["fake-upstream", "--port", str(port), "--answers", "meaning", "--log-level", "warning"]
    with services.served(command, url + "/_stats", workdir / "upstream.log"):
        yield url


def proxy(workdir: Path, redis_url: str, upstream: str, prefix: str, semantic: dict[str, Any]) -> Any:
    sections: dict[str, dict[str, object]] = {
        "semantic": {**LOOSE, **semantic},
        "admin": {"token": ADMIN},
        "redis": {"key_prefix": prefix},
    }
    return services.proxy(workdir, redis_url, upstream, sections=sections)


def traffic(rng: random.Random, wrong_share: float) -> Any:
    """Endless (tenant, stored prompt, asked prompt) triples: a new tenant and stored prompt every five asks."""
    for round_number in itertools.count():
        for verb, noun in itertools.product(VERBS, NOUNS):
            tenant = f"sk-audit-{round_number}-{verb}-{noun}".replace(" ", "-")
            stored = STORED.format(verb=verb, noun=noun)
            for template in SAME_MEANING:
                if rng.random() < wrong_share:
                    other = rng.choice([v for v in VERBS if v != verb])
                    yield tenant, stored, STORED.format(verb=other, noun=noun)
                else:
                    yield tenant, stored, template.format(verb=verb, noun=noun)


def ask(http: httpx.Client, url: str, tenant: str, prompt: str) -> str:
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
    response = http.post(url + CHAT, content=json.dumps(body), headers={"authorization": f"Bearer {tenant}"})
    response.raise_for_status()
    return response.headers["x-cache"]


def send_hits(http: httpx.Client, url: str, source: Any, count: int, stored: set[str]) -> list[Hit]:
    """Ask until `count` L2 hits were served; each hit with its truth."""
    hits: list[Hit] = []
    while len(hits) < count:
        tenant, base, asked = next(source)
        if tenant not in stored:
            ask(http, url, tenant, base)
            stored.add(tenant)
        if ask(http, url, tenant, asked) == "HIT-L2":
            hits.append(Hit(tenant, asked, wrong=content_words(asked) != content_words(base)))
    return hits


def precision(http: httpx.Client, url: str) -> dict[str, Any]:
    response = http.get(url + "/admin/stats", headers={"authorization": f"Bearer {ADMIN}"})
    response.raise_for_status()
    return dict(response.json().get("l2_precision", {}).get(MODEL, {}))


def settled(http: httpx.Client, url: str, audited: int, timeout_s: float = 300) -> dict[str, Any]:
    """The estimate once `audited` audits (errors included) were recorded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        figures = precision(http, url)
        if figures and figures["audited"] + figures["errors"] >= audited:
            return figures
        time.sleep(0.5)
    raise RuntimeError(f"only {precision(http, url)} audited after {timeout_s} s")


def judged_wrong(http: httpx.Client, url: str, hits: list[Hit]) -> list[bool]:
    """For each hit, whether its audit disagreed: its entry id (from the catalog, by tenant and prompt) is named by
    an `l2_disagree` event of the audit log."""
    auth = {"authorization": f"Bearer {ADMIN}"}
    events = http.get(url + "/admin/audit", params={"limit": 1000}, headers=auth).json()["events"]
    disagreed = {event["filters"]["request_entry"] for event in events if event["action"] == "l2_disagree"}
    ids: dict[tuple[str, str], str] = {}
    for tenant in {hit.tenant for hit in hits}:
        tenant_hash = tenant_id(
            caller_credentials([("authorization", f"Bearer {tenant}")]), shared=False, anonymous=False
        )
        listed = http.get(url + "/admin/entries", params={"tenant": tenant_hash, "limit": 50}, headers=auth).json()
        ids.update({(tenant, entry["prompt"]): entry["id"] for entry in listed["entries"]})
    return [ids[(hit.tenant, hit.asked)] in disagreed for hit in hits]


def estimate_phase(workdir: Path, redis_url: str, upstream: str, args: argparse.Namespace) -> None:
    with proxy(workdir, redis_url, upstream, "bench-audit-1", {}) as url, httpx.Client(timeout=60) as http:
        started = time.perf_counter()
        hits = send_hits(http, url, traffic(random.Random(args.seed), args.wrong), args.hits, set())
        figures = settled(http, url, len(hits))
        elapsed = time.perf_counter() - started
        verdicts = judged_wrong(http, url, hits)
    truth = 1 - sum(hit.wrong for hit in hits) / len(hits)
    print(f"phase 1: {len(hits)} L2 hits served and audited in {elapsed:.1f} s (variants changed: {args.wrong:.0%})")
    print("| figure | value |\n|---|---:|")
    print(f"| true precision of the served hits | {truth:.4f} |")
    print(f"| shadow estimate (agree / audited) | {figures['precision']:.4f} |")
    print(f"| Wilson 95% interval | [{figures['precision_low']:.4f}, {figures['precision_high']:.4f}] |")
    print(f"| estimate - truth | {100 * (figures['precision'] - truth):+.2f} points |")
    print(f"| audited: agree / disagree / errors | {figures['agree']} / {figures['disagree']} / {figures['errors']} |")
    for wrong in (True, False):
        judged = [verdict for hit, verdict in zip(hits, verdicts, strict=True) if hit.wrong is wrong]
        print(f"| {'wrong' if wrong else 'right'} hits judged disagreeing | {sum(judged)} of {len(judged)} |")


def budget_phase(workdir: Path, redis_url: str, upstream: str, args: argparse.Namespace) -> None:
    budget = {
        "max_error_rate": 0.1,
        "audit_min_samples": 30,
        "audit_threshold_step": 0.04,
        "audit_threshold_floor": 0.04,
    }
    rounds, per_round = 8, 60
    with proxy(workdir, redis_url, upstream, "bench-audit-2", budget) as url, httpx.Client(timeout=60) as http:
        source, stored, audited = traffic(random.Random(args.seed + 1), args.wrong), set[str](), 0
        print(f"\nphase 2: error budget {budget}; rounds of {per_round} hits")
        print("| round | effective threshold (start) | true wrong share of the round's hits |\n|---:|---:|---:|")
        for number in range(1, rounds + 1):
            threshold = precision(http, url).get("effective_threshold", LOOSE["threshold"])
            hits = send_hits(http, url, source, per_round, stored)
            audited += len(hits)
            settled(http, url, audited)
            wrong = sum(hit.wrong for hit in hits) / len(hits)
            print(f"| {number} | {threshold:.2f} | {wrong:.3f} |")
        print(f"final effective threshold: {precision(http, url)['effective_threshold']:.2f}")


if __name__ == "__main__":
    main()
