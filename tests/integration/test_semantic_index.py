"""L2 semantic index against a real Redis Stack: creation, KNN within a partition, TTL, atomic staging, outages."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from redis.asyncio import Redis
from redisvl.index import AsyncSearchIndex
from redisvl.query import FilterQuery
from redisvl.query.filter import FilterExpression, Tag

from llmproxy.cache.semantic import Neighbour, Partition, SemanticIndex, SemanticIndexError, SemanticRecord
from llmproxy.settings import HnswSettings
from llmproxy.store.errors import CacheUnavailableError

pytestmark = pytest.mark.anyio

DIMENSION = 384
HNSW = HnswSettings()
PARTITION = Partition(scope="0123abcd/team-a.prod", model="gpt-4o-mini-2024-07-18", params_hash="p1", context_hash="c1")
TTL_S = 600


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def index(redis: Redis, key_prefix: str) -> AsyncIterator[SemanticIndex]:
    semantic = SemanticIndex(redis, key_prefix, DIMENSION, HNSW)
    await semantic.ensure()
    yield semantic
    await redis.execute_command("FT.DROPINDEX", semantic.name, "DD")


def unit_vectors(count: int, seed: int = 0) -> NDArray[np.float32]:
    vectors = np.random.default_rng(seed).normal(size=(count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def near(vector: NDArray[np.float32], noise: float, seed: int = 1) -> NDArray[np.float32]:
    """A unit vector close to vector: a paraphrase, as the cache sees it."""
    moved = vector + np.random.default_rng(seed).normal(scale=noise, size=vector.shape).astype(np.float32)
    return (moved / np.linalg.norm(moved)).astype(np.float32)


def record(partition: Partition, number: int, vector: NDArray[np.float32]) -> SemanticRecord:
    return SemanticRecord(partition, f"prompt {number}", f"entry-{number}", vector)


async def store(redis: Redis, index: SemanticIndex, records: list[SemanticRecord], ttl_s: int = TTL_S) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        for item in records:
            index.stage(pipe, item, ttl_s)
        await pipe.execute()


async def index_info(redis: Redis, name: str) -> dict[str, Any]:
    raw = await redis.execute_command("FT.INFO", name)
    pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
    return {(key.decode() if isinstance(key, bytes) else key): value for key, value in pairs}


async def test_ensure_creates_the_index_and_is_idempotent(redis: Redis, index: SemanticIndex) -> None:
    await index.ensure()
    info = await index_info(redis, index.name)
    assert info["index_name"] in (index.name, index.name.encode())


async def test_concurrent_ensure_from_many_replicas_creates_one_index(redis: Redis, key_prefix: str) -> None:
    replicas = [SemanticIndex(redis, key_prefix, DIMENSION, HNSW) for _ in range(8)]
    try:
        await asyncio.gather(*(replica.ensure() for replica in replicas))
        names = [name.decode() for name in await redis.execute_command("FT._LIST")]
        assert names.count(replicas[0].name) == 1
    finally:
        await redis.execute_command("FT.DROPINDEX", replicas[0].name)


async def test_an_existing_index_with_another_dimension_is_refused_with_the_fix(
    redis: Redis, index: SemanticIndex, key_prefix: str
) -> None:
    with pytest.raises(SemanticIndexError) as caught:
        await SemanticIndex(redis, key_prefix, 768, HNSW).ensure()
    message = str(caught.value)
    assert "'vector' dims is 384, configured 768" in message
    assert f"FT.DROPINDEX {index.name}" in message and "redis.key_prefix" in message


async def test_an_existing_index_with_another_hnsw_m_is_refused(
    redis: Redis, index: SemanticIndex, key_prefix: str
) -> None:
    with pytest.raises(SemanticIndexError, match="'vector' m is 16, configured 32"):
        await SemanticIndex(redis, key_prefix, DIMENSION, HnswSettings(m=32)).ensure()


async def test_a_different_ef_runtime_is_accepted_because_it_is_sent_per_query(
    redis: Redis, index: SemanticIndex, key_prefix: str
) -> None:
    await SemanticIndex(redis, key_prefix, DIMENSION, HnswSettings(ef_runtime=50)).ensure()


async def test_nearest_returns_the_closest_prompt_with_its_cosine_distance(redis: Redis, index: SemanticIndex) -> None:
    stored = unit_vectors(50)
    await store(redis, index, [record(PARTITION, number, vector) for number, vector in enumerate(stored)])
    query = near(stored[17], noise=0.02)

    found = await index.nearest(query, PARTITION, k=4)

    expected = 1.0 - stored @ query
    order = np.argsort(expected)[:4]
    assert [hit.entry_key for hit in found] == [f"entry-{number}" for number in order]
    assert found[0] == Neighbour("prompt 17", "entry-17", pytest.approx(float(expected[17]), abs=1e-5))
    assert [hit.distance for hit in found] == pytest.approx([float(expected[n]) for n in order], abs=1e-5)


@pytest.mark.parametrize("options", [{"protocol": 2}, {"protocol": 3}, {}], ids=["resp2", "resp3", "default"])
async def test_nearest_parses_every_protocol(
    redis_url: str, index: SemanticIndex, key_prefix: str, options: dict[str, Any]
) -> None:
    vector = unit_vectors(1)[0]
    client = Redis.from_url(redis_url, socket_timeout=5, **options)
    try:
        await store(client, index, [record(PARTITION, 1, vector)])
        found = await SemanticIndex(client, key_prefix, DIMENSION, HNSW).nearest(vector, PARTITION, k=2)
    finally:
        await client.aclose()
    assert [(hit.prompt, hit.entry_key) for hit in found] == [("prompt 1", "entry-1")]
    assert found[0].distance == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize(
    "other",
    [
        Partition("0123abcd/team-b.prod", PARTITION.model, "p1", "c1"),
        Partition("0123abcd/team-a-prod", PARTITION.model, "p1", "c1"),
        Partition("0123abcd", PARTITION.model, "p1", "c1"),
        Partition("0123ABCD/team-a.prod", PARTITION.model, "p1", "c1"),
        Partition(PARTITION.scope, "gpt-4o-mini", "p1", "c1"),
        Partition(PARTITION.scope, "gpt-4o-mini-2024-07-18 ", "p1", "c1"),
        Partition(PARTITION.scope, PARTITION.model, "p2", "c1"),
        Partition(PARTITION.scope, PARTITION.model, "p1", "c2"),
        Partition(PARTITION.scope, PARTITION.model, "p1", ""),
    ],
    ids=["scope", "scope-dash", "scope-prefix", "scope-case", "model", "model-space", "params", "context", "no-ctx"],
)
async def test_an_identical_vector_in_another_partition_is_never_returned(
    redis: Redis, index: SemanticIndex, other: Partition
) -> None:
    vector, unrelated = unit_vectors(2)
    await store(redis, index, [record(other, 1, vector), record(PARTITION, 2, unrelated)])

    assert [hit.entry_key for hit in await index.nearest(vector, PARTITION, k=10)] == ["entry-2"]
    assert [hit.entry_key for hit in await index.nearest(vector, other, k=10)] == ["entry-1"]


async def test_partition_values_with_commas_and_query_syntax_match_exactly(redis: Redis, index: SemanticIndex) -> None:
    odd = Partition("tenant/ns_1.v-2", "org/model:v1,beta|{x} @y *", "p$1", "c\\1")
    vector = unit_vectors(1)[0]
    await store(redis, index, [record(odd, 1, vector), record(PARTITION, 2, vector)])

    assert [hit.entry_key for hit in await index.nearest(vector, odd, k=10)] == ["entry-1"]
    assert await index.nearest(vector, Partition(odd.scope, "org/model:v1", "p$1", "c\\1"), k=10) == []


async def test_readable_partition_tags_match_exactly_for_admin_filters(redis: Redis, index: SemanticIndex) -> None:
    vector = unit_vectors(1)[0]
    await store(
        redis, index, [record(PARTITION, 1, vector), record(replace(PARTITION, scope="0123abcd/team-a"), 2, vector)]
    )
    admin_view = AsyncSearchIndex(index.schema, redis_client=redis, owns_client=False)

    def matching(expression: FilterExpression) -> FilterQuery:
        return FilterQuery(filter_expression=expression, return_fields=["entry_key"])

    by_scope = await admin_view.query(matching(Tag("scope") == PARTITION.scope))
    by_model = await admin_view.query(matching(Tag("model") == PARTITION.model))
    assert [hit["entry_key"] for hit in by_scope] == ["entry-1"]
    assert sorted(hit["entry_key"] for hit in by_model) == ["entry-1", "entry-2"]


async def test_expired_documents_leave_the_results(redis: Redis, index: SemanticIndex) -> None:
    vector = unit_vectors(1)[0]
    await store(redis, index, [record(PARTITION, 1, vector)], ttl_s=1)
    assert len(await index.nearest(vector, PARTITION, k=1)) == 1
    assert 0 < await redis.ttl(index.doc_key("entry-1")) <= 1

    for _ in range(60):  # active expiry runs every 100 ms; allow a slow machine a few seconds
        if not await index.nearest(vector, PARTITION, k=1):
            break
        await asyncio.sleep(0.1)
    assert await index.nearest(vector, PARTITION, k=1) == []


async def test_stage_writes_l1_and_l2_in_one_transaction(redis: Redis, index: SemanticIndex, key_prefix: str) -> None:
    entry_key = f"{key_prefix}:l1:{PARTITION.scope}:{'ab' * 32}"
    vector = unit_vectors(1)[0]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(entry_key, b"{}", ex=TTL_S)
        index.stage(pipe, SemanticRecord(PARTITION, "What is the capital of France?", entry_key, vector), TTL_S)
        await pipe.execute()

    assert index.doc_key(entry_key) == f"{key_prefix}:l2:{PARTITION.scope}:{'ab' * 32}"
    assert await index.nearest(vector, PARTITION, k=1) == [
        Neighbour("What is the capital of France?", entry_key, pytest.approx(0.0, abs=1e-5))
    ]
    assert 0 < await redis.ttl(index.doc_key(entry_key)) <= TTL_S


async def test_a_vector_of_the_wrong_dimension_is_a_programming_error(index: SemanticIndex) -> None:
    with pytest.raises(ValueError, match="shape"):
        await index.nearest(np.zeros(8, dtype=np.float32), PARTITION, k=1)


@pytest.fixture
async def dead_redis() -> AsyncIterator[Redis]:
    """A client for a loopback port where no server listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Redis(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
    yield client
    await client.aclose()


async def test_redis_down_makes_nearest_raise_cache_unavailable(dead_redis: Redis, key_prefix: str) -> None:
    with pytest.raises(CacheUnavailableError):
        await SemanticIndex(dead_redis, key_prefix, DIMENSION, HNSW).nearest(unit_vectors(1)[0], PARTITION, k=4)


async def test_redis_down_makes_ensure_raise_cache_unavailable(dead_redis: Redis, key_prefix: str) -> None:
    with pytest.raises(CacheUnavailableError):
        await SemanticIndex(dead_redis, key_prefix, DIMENSION, HNSW).ensure()
