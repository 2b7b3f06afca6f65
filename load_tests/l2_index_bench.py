"""L2 index benchmark (not a test): insert rate, memory per entry, KNN latency and recall against exact search.

Runs its own Redis Stack (embedded, temp dir) and loads N entries through `SemanticIndex.stage` in pipelines, for
each HNSW M and two regimes: one big partition (every entry in one scope, so the HNSW graph does the work) and many
tenants (entries spread over many scopes, so the partition filter is selective). Queries are noisy copies of
stored vectors, as a cache sees near-duplicates; recall is measured against numpy brute force within the
query's partition. Vectors: the unique prompts of the labelled pairs, embedded with the proxy's model, plus
gaussian-noise variants of them (clustered like real traffic, unlike uniform random vectors).

    python load_tests/l2_index_bench.py                      # full run: about 11-12 minutes on 2 cores
    python load_tests/l2_index_bench.py --sizes 10000 --m 16 # a quick look: about 2 minutes

Embedding the ~7,200 prompts takes 1.5-2 minutes of that (--vector-cache keeps them between runs). Results go to
load_tests/results/l2_index.md; a "## Analysis" section written there by hand survives a rerun.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from redis.asyncio import Redis
from redisvl.index import AsyncSearchIndex
from redisvl.query import VectorQuery
from redisvl.query.filter import FilterExpression, Tag

from llmproxy.cache.semantic import (
    Partition,
    SemanticIndex,
    SemanticRecord,
    build_schema,
    partition_filter,
    partition_tags,
)
from llmproxy.settings import EmbeddingSettings, HnswSettings
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig

Matrix = NDArray[np.float32]

PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "semcache_pairs_dev.jsonl"
RESULTS = Path(__file__).resolve().parent / "results" / "l2_index.md"
MODEL, PARAMS, CONTEXT = "gpt-4o-mini-2024-07-18", "p" * 16, "c" * 16
LOAD_BATCH = 1000
# Variants sit 0.04-0.28 (cosine distance) from their source prompt, like real paraphrases (median 0.11 in the
# labelled pairs); queries sit 0.005-0.2 from a stored entry: the near-duplicates and paraphrases a cache serves
# (semantic.max_threshold is 0.2), where a missed neighbour is a lost hit.
STORE_NOISE = (0.015, 0.045)
QUERY_NOISE = (0.004, 0.04)
RECALL_TARGET = 0.99
FOUR_TAG_EF = 100
ANALYSIS = "## Analysis"
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Options:
    sizes: list[int]
    ms: list[int]
    efs: list[int]
    tenants: int
    queries: int
    k: int
    ef_construction: int
    vector_cache: Path | None
    write: bool
    seed: int


@dataclass(frozen=True, slots=True)
class Dataset:
    """N stored entries: vectors, the base prompt of each, and the scope (tenant) of each."""

    vectors: Matrix
    prompt_ids: NDArray[np.int64]
    scopes: NDArray[np.int64]
    scope_names: list[str]


@dataclass(frozen=True, slots=True)
class Workload:
    """Query vectors, each looked up in the partition of the stored entry it was derived from."""

    vectors: Matrix
    scopes: NDArray[np.int64]
    truth: Matrix  # exact top-k distances per query, ascending


@dataclass(frozen=True, slots=True)
class Build:
    size: int
    regime: str
    m: int
    insert_per_s: float
    bytes_per_entry: float
    vector_index_bytes_per_entry: float
    other_index_bytes_per_entry: float
    auto_mode: str


@dataclass(frozen=True, slots=True)
class Row:
    size: int
    regime: str
    m: int
    policy: str
    ef: int | None
    recall_1: float
    recall_k: float
    p50_ms: float
    p99_ms: float


@dataclass(slots=True)
class Report:
    builds: list[Build] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


def sizes(text: str) -> list[int]:
    """`10000,100000` or `10000` → entry counts (space-separated values work too)."""
    return [int(part) for part in text.split(",") if part.strip()]


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", type=sizes, nargs="+", default=[[10_000, 100_000]], help="entries per index: 10000,100000"
    )
    parser.add_argument("--m", type=int, nargs="+", default=[16, 32], help="HNSW M values")
    parser.add_argument("--ef", type=int, nargs="+", default=[10, 50, 100, 200, 400], help="EF_RUNTIME values")
    parser.add_argument("--tenants", type=int, default=100, help="scopes in the many-tenants regime")
    parser.add_argument("--queries", type=int, default=1000, help="queries per measurement")
    parser.add_argument("--k", type=int, default=4, help="neighbours per query (semantic.top_k)")
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--vector-cache", type=Path, help="keep the embedded prompts in this .npz (outside the repo)")
    parser.add_argument("--no-write", dest="write", action="store_false", help=f"do not write {RESULTS.name}")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    return Options(
        [size for group in args.sizes for size in group],
        args.m,
        args.ef,
        args.tenants,
        args.queries,
        args.k,
        args.ef_construction,
        args.vector_cache,
        args.write,
        args.seed,
    )


# --- vectors -------------------------------------------------------------------------------------------------


def unique_prompts() -> list[str]:
    with PAIRS.open(encoding="utf-8") as lines:
        pairs = [json.loads(line) for line in lines]
    return sorted({pair[side] for pair in pairs for side in ("a", "b")})


def embed_prompts(prompts: list[str], cache: Path | None) -> tuple[Matrix, list[str]]:
    """Unit vectors of the prompts from the proxy's own embedder, and the prompts kept (those within its window)."""
    if cache is not None and cache.exists():
        saved = np.load(cache)
        return np.asarray(saved["vectors"], dtype=np.float32), [prompts[i] for i in saved["kept"]]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llmproxy.embeddings.embedder import Embedder, load_model  # the model loads only when embedding is needed

    threads = os.cpu_count() or 1
    embedder = Embedder(load_model(EmbeddingSettings(torch_threads=threads, onnx_threads=threads)), 64, 0)
    encoded = [
        vector for start in range(0, len(prompts), 64) for vector in embedder.encode(prompts[start : start + 64])
    ]
    kept = [i for i, vector in enumerate(encoded) if vector is not None]
    base = np.stack([vector for vector in encoded if vector is not None]).astype(np.float32)
    if cache is not None:
        np.savez(cache, vectors=base, kept=np.array(kept))
    return base, [prompts[i] for i in kept]


def jitter(vectors: Matrix, noise: tuple[float, float], rng: np.random.Generator) -> Matrix:
    """Unit vectors moved by gaussian noise of a per-vector scale drawn from the noise range."""
    scale = rng.uniform(*noise, size=(len(vectors), 1)).astype(np.float32)
    moved = vectors + rng.normal(size=vectors.shape).astype(np.float32) * scale
    unit: Matrix = (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)
    return unit


def make_dataset(base: Matrix, size: int, tenants: int, rng: np.random.Generator) -> Dataset:
    """The real vectors first, then noisy variants of random real ones; scopes assigned at random."""
    real = min(size, len(base))
    sources = np.concatenate([np.arange(real), rng.integers(0, len(base), size - real)])
    vectors = np.concatenate([base[:real], jitter(base[sources[real:]], STORE_NOISE, rng)])
    scopes = rng.integers(0, tenants, size)
    names = [hashlib.sha256(f"tenant-{t}".encode()).hexdigest()[:32] + "/prod" for t in range(tenants)]
    return Dataset(vectors, sources.astype(np.int64), scopes.astype(np.int64), names)


def make_workload(data: Dataset, count: int, k: int, rng: np.random.Generator) -> Workload:
    picked = rng.integers(0, len(data.vectors), count)
    vectors = jitter(data.vectors[picked], QUERY_NOISE, rng)
    scopes = data.scopes[picked]
    return Workload(vectors, scopes, exact_distances(data, vectors, scopes, k))


def exact_distances(data: Dataset, queries: Matrix, scopes: NDArray[np.int64], k: int) -> Matrix:
    """Brute-force top-k cosine distances of each query within its own scope."""
    truth = np.empty((len(queries), k), dtype=np.float32)
    for scope in np.unique(scopes):
        rows = np.flatnonzero(scopes == scope)
        members = data.vectors[data.scopes == scope]
        for start in range(0, len(rows), 256):  # bounded memory: 256 x 100k distances at a time
            chunk = rows[start : start + 256]
            distances = 1.0 - queries[chunk] @ members.T
            truth[chunk] = np.sort(np.partition(distances, k - 1, axis=1)[:, :k], axis=1)
    return truth


# --- Redis ---------------------------------------------------------------------------------------------------


def partition_of(data: Dataset, scope: int) -> Partition:
    return Partition(data.scope_names[scope], MODEL, PARAMS, CONTEXT)


async def load(redis: Redis, index: SemanticIndex, data: Dataset, prompts: list[str]) -> float:
    """Stage every entry through pipelines of LOAD_BATCH; returns entries per second."""
    started = time.perf_counter()
    for start in range(0, len(data.vectors), LOAD_BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for row in range(start, min(start + LOAD_BATCH, len(data.vectors))):
                index.stage(pipe, entry(data, row, prompts), ttl_s=86_400)
            await pipe.execute()
    return len(data.vectors) / (time.perf_counter() - started)


def entry(data: Dataset, row: int, prompts: list[str]) -> SemanticRecord:
    partition = partition_of(data, int(data.scopes[row]))
    entry_key = f"bench:l1:{partition.scope}:{row:064x}"
    return SemanticRecord(partition, prompts[data.prompt_ids[row]], entry_key, data.vectors[row])


async def used_memory(redis: Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


async def index_bytes(index: AsyncSearchIndex) -> tuple[float, float]:
    """(vector index, rest of the search index: tags, prompt text, doc and key tables), from FT.INFO."""
    info = await index.info()
    return float(info["vector_index_sz_mb"]) * MB, float(info["total_index_memory_sz_mb"]) * MB


async def auto_mode(redis: Redis, name: str, query: VectorQuery) -> str:
    """Which hybrid mode RediSearch picks for this query (FT.PROFILE shows batches only in BATCHES mode)."""
    params = [item for pair in query.params.items() for item in pair]
    command = ["FT.PROFILE", name, "SEARCH", "QUERY", query.query_string(), "PARAMS", len(params), *params]
    profile = await redis.execute_command(*command, "DIALECT", 2)  # type: ignore[no-untyped-call]
    return "BATCHES" if "Batches number" in repr(profile) else "ADHOC_BF"


@dataclass(frozen=True, slots=True)
class Plan:
    """How one KNN row queries: hybrid policy (None: RediSearch decides, as the proxy does), EF_RUNTIME, filter."""

    label: str
    policy: str | None
    ef: int | None
    four_tags: bool = False


def vector_query(vector: Matrix, partition: Partition, k: int, plan: Plan) -> VectorQuery:
    return VectorQuery(
        vector=vector.tobytes(),
        vector_field_name="vector",
        return_fields=["entry_key"],
        filter_expression=four_tag_filter(partition) if plan.four_tags else partition_filter(partition),
        num_results=k,
        hybrid_policy=plan.policy,
        ef_runtime=plan.ef,
    )


def four_tag_filter(partition: Partition) -> FilterExpression:
    """scope & model & params & context as four tag matches: what the proxy's one digest tag replaces."""
    tags = partition_tags(partition)
    return (
        (Tag("scope") == tags["scope"])
        & (Tag("model") == tags["model"])
        & (Tag("params") == tags["params"])
        & (Tag("context") == tags["context"])
    )


async def measure(
    index: AsyncSearchIndex, data: Dataset, work: Workload, k: int, plan: Plan
) -> tuple[float, float, float, float]:
    """(recall@1, recall@k, p50 ms, p99 ms) of the workload, one query at a time."""
    latencies, hits_1, hits_k = [], 0, 0
    for vector, scope, truth in zip(work.vectors, work.scopes, work.truth, strict=True):
        query = vector_query(vector, partition_of(data, int(scope)), k, plan)
        started = time.perf_counter()
        found = await index.query(query)
        latencies.append(time.perf_counter() - started)
        rows = [int(hit["entry_key"].rsplit(":", 1)[1], 16) for hit in found]
        exact = 1.0 - data.vectors[rows] @ vector  # recompute: ties and float32 noise are judged the same way
        hits_1 += bool(len(exact)) and exact.min() <= truth[0] + 1e-5
        hits_k += int(np.sum(exact <= truth[-1] + 1e-5))
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    return hits_1 / len(work.vectors), hits_k / (k * len(work.vectors)), float(p50), float(p99)


async def bench_index(
    redis: Redis, opts: Options, size: int, regime: str, m: int, base: Matrix, prompts: list[str], report: Report
) -> None:
    rng = np.random.default_rng(opts.seed + size)
    data = make_dataset(base, size, 1 if regime == "one partition" else opts.tenants, rng)
    work = make_workload(data, opts.queries, opts.k, rng)
    prefix = f"bench{size}-{m}-{regime.split()[0]}"
    hnsw = HnswSettings(m=m, ef_construction=opts.ef_construction)
    semantic = SemanticIndex(redis, prefix, base.shape[1], hnsw)
    await semantic.ensure()
    index = AsyncSearchIndex(build_schema(prefix, base.shape[1], hnsw), redis_client=redis, owns_client=False)
    rate, memory, vector_memory, other_memory = await build_index(redis, semantic, index, data, prompts)
    sample = vector_query(work.vectors[0], partition_of(data, int(work.scopes[0])), opts.k, Plan("auto", None, 200))
    mode = await auto_mode(redis, semantic.name, sample)
    build = Build(size, regime, m, rate, memory, vector_memory, other_memory, mode)
    report.builds.append(build)
    log(f"built {size} {regime} M={m}: {rate:.0f}/s, {memory:.0f} B/entry, auto mode {mode}")
    await query_rows(index, data, work, opts, build, report)
    await index.delete(drop=True)


async def build_index(
    redis: Redis, semantic: SemanticIndex, index: AsyncSearchIndex, data: Dataset, prompts: list[str]
) -> tuple[float, float, float, float]:
    """Load the data; (inserts/s, memory, vector index and other index bytes per entry)."""
    memory_before, (vector_before, other_before) = await used_memory(redis), await index_bytes(index)
    rate = await load(redis, semantic, data, prompts)
    memory_after, (vector_after, other_after) = await used_memory(redis), await index_bytes(index)
    size = len(data.vectors)
    return (
        rate,
        (memory_after - memory_before) / size,
        (vector_after - vector_before) / size,
        (other_after - other_before) / size,
    )


async def query_rows(
    index: AsyncSearchIndex, data: Dataset, work: Workload, opts: Options, build: Build, report: Report
) -> None:
    """auto at every EF, the policy auto did not pick (BATCHES at every EF, or ADHOC_BF), and a four-tag filter."""
    auto = f"auto ({build.auto_mode})"
    plans = [Plan(auto, None, ef) for ef in opts.efs]
    if build.auto_mode == "ADHOC_BF":
        plans += [Plan("BATCHES", "BATCHES", ef) for ef in opts.efs]
    else:
        plans.append(Plan("ADHOC_BF", "ADHOC_BF", None))
    plans.append(Plan(f"{auto}, 4-tag filter", None, FOUR_TAG_EF, four_tags=True))
    await measure(index, data, work, opts.k, plans[0])  # warm-up
    for plan in plans:
        recall_1, recall_k, p50, p99 = await measure(index, data, work, opts.k, plan)
        report.rows.append(Row(build.size, build.regime, build.m, plan.label, plan.ef, recall_1, recall_k, p50, p99))
        log(f"  {plan.label:<30} ef={plan.ef}: recall@1 {recall_1:.4f} @k {recall_k:.4f} p50 {p50:.2f} p99 {p99:.2f}")


# --- report --------------------------------------------------------------------------------------------------


def recommend(report: Report, size: int) -> list[str]:
    """The fastest (M, EF_RUNTIME) reaching the recall target in both regimes, and the fastest with no miss."""
    rows = [
        row for row in report.rows if row.size == size and row.policy.startswith("auto") and "4-tag" not in row.policy
    ]
    if all("ADHOC_BF" in row.policy for row in rows):
        return [
            f"At {size:,} entries RediSearch answers every measured query by exact brute force over the partition "
            "(auto picked ADHOC_BF): M and EF_RUNTIME do not change recall or latency here."
        ]
    settings: dict[tuple[int, int], list[Row]] = {}
    for row in rows:
        settings.setdefault((row.m, row.ef or 0), []).append(row)
    return [
        fastest(settings, size, RECALL_TARGET, f"recall@1 and recall@k >= {RECALL_TARGET}"),
        fastest(settings, size, 1.0, "no missed neighbour (recall 1.0)"),
    ]


def fastest(settings: dict[tuple[int, int], list[Row]], size: int, target: float, wanted: str) -> str:
    """The setting with the lowest p50 where the graph is searched (BATCHES) among those reaching target."""
    passing = {
        key: max(row.p50_ms for row in group if "BATCHES" in row.policy)
        for key, group in settings.items()
        if all(min(row.recall_1, row.recall_k) >= target for row in group)
        and any("BATCHES" in row.policy for row in group)
    }
    if not passing:
        return f"At {size:,} entries no measured (M, EF_RUNTIME) gave {wanted} in both regimes."
    (m, ef), p50 = min(passing.items(), key=lambda item: (item[1], item[0]))
    return f"At {size:,} entries, fastest with {wanted} in both regimes: M={m}, EF_RUNTIME={ef} (p50 {p50:.2f} ms)."


def markdown(report: Report, opts: Options, command: str, runtime_s: float, facts: dict[str, str]) -> str:
    lines = ["# L2 index benchmark", "", f"Command: `{command}`", "", f"Runtime: {runtime_s / 60:.1f} min", ""]
    lines += [f"- {name}: {value}" for name, value in facts.items()]
    lines += [
        "",
        f"k = {opts.k}, {opts.queries} queries per row, EF_CONSTRUCTION = {opts.ef_construction}, {opts.tenants} "
        "tenants in the many-tenants regime. Latency is client-side (redisvl query over loopback, one at a time).",
        "",
        "## Build",
        "",
        "Memory per entry: Redis `used_memory` growth over the load, of which the vector index (FT.INFO "
        "`vector_index_sz_mb`) and the rest of the search index (`total_index_memory_sz_mb`: tags, prompt text, doc "
        "and key tables); the remainder is the hashes themselves (a 1,536-byte float32 vector, the prompt, tags).",
        "",
        "| N | regime | M | inserts/s | memory B/entry | vector index B/entry | other index B/entry | auto mode |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {b.size:,} | {b.regime} | {b.m} | {b.insert_per_s:,.0f} | {b.bytes_per_entry:,.0f} | "
        f"{b.vector_index_bytes_per_entry:,.0f} | {b.other_index_bytes_per_entry:,.0f} | {b.auto_mode} |"
        for b in report.builds
    ]
    lines += ["", "## KNN", "", "| N | regime | M | policy | EF_RUNTIME | recall@1 | recall@k | p50 ms | p99 ms |"]
    lines += ["|---|---|---|---|---|---|---|---|---|"]
    lines += [
        f"| {r.size:,} | {r.regime} | {r.m} | {r.policy} | {r.ef if r.ef is not None else '-'} | {r.recall_1:.4f} | "
        f"{r.recall_k:.4f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} |"
        for r in report.rows
    ]
    lines += ["", "## Measured choice", ""]
    lines += [f"- {line}" for size in opts.sizes for line in recommend(report, size)]
    return "\n".join(lines) + "\n"


def machine_facts() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {"nproc": str(os.cpu_count()), "CPU": cpu, "Python": platform.python_version(), "load average at end": load}


async def server_facts(redis: Redis) -> dict[str, str]:
    info = await redis.info("server")
    modules = {
        _text(m.get(b"name", m.get("name"))): _text(m.get(b"ver", m.get("ver"))) for m in await redis.module_list()
    }
    return {"Redis": str(info["redis_version"]), "search module": modules.get("search", "?")}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run(url: str, opts: Options, base: Matrix, prompts: list[str]) -> tuple[Report, dict[str, str]]:
    report = Report()
    redis = Redis.from_url(url, socket_timeout=120)
    try:
        facts = await server_facts(redis)
        for size in opts.sizes:
            for m in opts.ms:
                for regime in ("one partition", f"{opts.tenants} tenants"):
                    await bench_index(redis, opts, size, regime, m, base, prompts, report)
    finally:
        await redis.aclose()
    return report, facts


def main(argv: list[str]) -> None:
    opts = parse_options(argv)
    started = time.perf_counter()
    base, prompts = embed_prompts(unique_prompts(), opts.vector_cache)
    log(f"{len(base)} prompt vectors ready after {time.perf_counter() - started:.0f} s")
    with (
        tempfile.TemporaryDirectory(prefix="l2-bench-") as tmp,
        EmbeddedRedis(EmbeddedRedisConfig(Path(tmp))) as server,
    ):
        report, server_info = asyncio.run(run(server.url, opts, base, prompts))
    runtime = time.perf_counter() - started
    command = "python load_tests/l2_index_bench.py " + " ".join(argv)
    text = markdown(report, opts, command.strip(), runtime, {**machine_facts(), **server_info})
    print(text)
    if opts.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text + kept_analysis(), encoding="utf-8")


def kept_analysis() -> str:
    """The hand-written analysis of an earlier results file, kept when the tables are regenerated."""
    previous = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    start = previous.find(ANALYSIS)
    return "" if start < 0 else "\n" + previous[start:]


if __name__ == "__main__":
    main(sys.argv[1:])
