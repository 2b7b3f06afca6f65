"""CPU time the proxy spends per request, path by path, for one or more checkouts side by side.

Wall-clock benchmarks (compare.py) need a quiet machine; the CPU seconds the proxy's processes are charged for one
request (the kernel's per-process utime + stime, read from /proc) move much less when other work shares the cores.
So this compares checkouts (e.g. a tag before a refactoring and main) on a busy machine too: each checkout's own
`.venv` runs its own `llmproxy serve` against one shared Redis Stack and fake upstream, in alternating rounds.

    .venv/bin/python load_tests/cpu_per_request.py --tree /path/to/old-checkout --tree . --requests 300 --rounds 3

Paths, each with requests sent one at a time (c=1): a miss (a new prompt: embed, L1 + L2 lookup, forward, write),
an L1 hit (one prompt repeated), and the forwarder (BYPASS: `Cache-Control: no-cache, no-store`, a new prompt).
`--backend` sets the embedding backend of every checkout (default torch: older checkouts have no other).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

import services
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from workload import UNIQUE, chat_body, unique_question

CHAT = "/v1/chat/completions"
AUTH = {"Authorization": "Bearer sk-llmproxy-cpu-bench", "Content-Type": "application/json"}
BYPASS = {**AUTH, "Cache-Control": "no-cache, no-store"}
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
WARMUP_REQUESTS = 20


@dataclass(frozen=True, slots=True)
class BenchPath:
    name: str
    headers: dict[str, str]
    unique: bool  # a new prompt every request (a miss or a bypass); else one prompt repeated (an L1 hit)
    expected: str  # X-Cache of every measured request


PATHS = (
    BenchPath("miss (embed, L1+L2 lookup, forward, write)", AUTH, True, "MISS"),
    BenchPath("L1 hit", AUTH, False, "HIT-L1"),
    BenchPath("forwarder (BYPASS)", BYPASS, True, "BYPASS"),
)


@dataclass(frozen=True, slots=True)
class Sample:
    tree: str
    path: str
    cpu_ms: float  # CPU time of the proxy's processes per request
    p50_ms: float  # wall time per request, for reference only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", type=Path, help="a checkout with its own .venv (repeatable)")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per path and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the checkouts alternate within each")
    parser.add_argument("--backend", default="torch", help="LLMPROXY_EMBEDDINGS__BACKEND for every checkout")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in args.tree or [services.REPO]]
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="cpu-bench-") as tmp:
        workdir = Path(tmp)
        with (
            EmbeddedRedis(EmbeddedRedisConfig(data_dir=workdir / "redis", persist=False)) as redis_server,
            services.fake_upstream(workdir) as upstream,
        ):
            counter = iter(range(10**9))
            for round_number in range(args.rounds):
                for tree in trees:
                    with proxy(tree, workdir, redis_server.url, upstream, args.backend) as (url, pid):
                        for path in PATHS:
                            samples.append(measure(tree, path, url, pid, args.requests, counter))
                    print(f"round {round_number + 1}, {tree}: done", file=sys.stderr)
    print(table(trees, samples, args))


@contextmanager
def proxy(tree: Path, workdir: Path, redis_url: str, upstream: str, backend: str) -> Iterator[tuple[str, int]]:
    """`llmproxy serve` of one checkout, with that checkout's interpreter and code; yields (URL, pid)."""
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    python = str(tree / ".venv" / "bin" / "python")
    settings: dict[str, dict[str, object]] = {
        "server": {"log_level": "warning", "workers": 1},
        "router": {"routes_file": None},
    }
    if knows_backends(python, tree):  # checkouts from before the ONNX backend always embed with torch
        settings["embeddings"] = {"backend": backend}
    config = workdir / f"llmproxy-{tree.name}.yaml"
    config.write_text(json.dumps(settings))  # JSON is YAML
    command = [python, "-m", "llmproxy", "serve", "--port", str(port), "--config", str(config)]
    command += ["--redis-url", redis_url, "--upstream", upstream + "/v1"]
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    log = workdir / f"proxy-{tree.name}.log"
    with log.open("wb") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=tree)
    try:
        services.wait_ready(child, url + "/readyz", log)
        yield url, child.pid
    finally:
        child.terminate()
        child.wait(timeout=services.STOP_TIMEOUT_S)


def knows_backends(python: str, tree: Path) -> bool:
    probe = "from llmproxy.settings import EmbeddingSettings; print('backend' in EmbeddingSettings.model_fields)"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    answer = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env, cwd=tree)
    return answer.stdout.strip() == "True"


def measure(tree: Path, path: BenchPath, url: str, pid: int, requests: int, counter: Iterator[int]) -> Sample:
    template = chat_body(unique_question(next(counter)))
    fixed = template.replace(UNIQUE, str(next(counter)))
    with httpx.Client(base_url=url, timeout=30) as client:

        def send(expected: str | None) -> None:
            body = template.replace(UNIQUE, str(next(counter))) if path.unique else fixed
            answer = client.post(CHAT, content=body, headers=path.headers)
            status = answer.headers.get("x-cache")
            if answer.status_code != 200 or (expected is not None and status != expected):
                raise RuntimeError(f"{tree}: {path.name}: {answer.status_code} X-Cache {status}: {answer.text[:200]}")

        for _ in range(WARMUP_REQUESTS):
            send(None)  # an L1 path's first request is its miss
        walls: list[float] = []
        cpu_before = cpu_seconds(pid)
        for _ in range(requests):
            start = time.perf_counter()
            send(path.expected)
            walls.append((time.perf_counter() - start) * 1000)
        cpu_after = cpu_seconds(pid)
    return Sample(str(tree), path.name, (cpu_after - cpu_before) * 1000 / requests, statistics.median(walls))


def cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and all its descendants (every thread included), in seconds."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we read
        fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may contain spaces
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS_PER_S
    family = {root}
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in family} - family
        family |= children
        grew = bool(children)
    return sum(times.get(pid, 0.0) for pid in family)


def table(trees: list[Path], samples: list[Sample], args: argparse.Namespace) -> str:
    lines = [
        f"CPU ms per request (proxy processes), median over {args.rounds} rounds of {args.requests} requests "
        f"at c=1, embedding backend {args.backend}; wall p50 for reference",
        "",
        "| path | " + " | ".join(f"{tree.name}: CPU ms (rounds) | wall p50 ms" for tree in trees) + " |",
        "|---|" + "---:|---:|" * len(trees),
    ]
    for path in PATHS:
        cells = []
        for tree in trees:
            mine = [sample for sample in samples if sample.tree == str(tree) and sample.path == path.name]
            cpu = statistics.median(sample.cpu_ms for sample in mine)
            rounds = ", ".join(f"{sample.cpu_ms:.2f}" for sample in mine)
            cells.append(f"{cpu:.2f} ({rounds}) | {statistics.median(sample.p50_ms for sample in mine):.2f}")
        lines.append(f"| {path.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
