"""L2: a RediSearch HNSW index of answered prompts, searched by KNN within one partition."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT
from redisvl.index import AsyncSearchIndex
from redisvl.query import VectorQuery, VectorRangeQuery
from redisvl.query.filter import FilterExpression, Tag
from redisvl.schema import IndexSchema

from llmproxy.cache.tags import tag_field, tag_value
from llmproxy.settings import HnswSettings
from llmproxy.store.errors import CacheUnavailableError, causes, redis_call
from llmproxy.store.search_index import create_or_compare, index_missing
from llmproxy.store.search_results import as_text, result_rows

__all__ = ["Neighbour", "Partition", "SemanticIndex", "SemanticIndexError", "SemanticRecord", "document_key"]

logger = logging.getLogger(__name__)

_TAG_FIELDS = ("scope", "model", "params", "context")
_PARTITION_FIELD = "partition"
_VECTOR_FIELD = "vector"
_VERIFIER_FIELD = "verifier_vector"
_RETURN_FIELDS = ("prompt", "entry_key")
_DISTANCE_FIELD = VectorQuery.DISTANCE_ID


class SemanticIndexError(Exception):
    """The L2 index cannot be used as configured (startup); the message says what differs and how to fix it."""


@dataclass(frozen=True, slots=True)
class Partition:
    """What must match for an earlier answer to be served: tenant scope, model, answer parameters, context."""

    scope: str
    model: str
    params_hash: str
    context_hash: str


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One stored prompt near the query, with its COSINE distance (1 - cosine similarity)."""

    prompt: str
    entry_key: str
    distance: float


@dataclass(frozen=True, slots=True)
class SemanticRecord:
    """What is indexed for one answered prompt; `entry_key` is the L1 key holding the answer."""

    partition: Partition
    prompt: str
    entry_key: str
    vector: NDArray[np.float32]
    verifier_vector: NDArray[np.float32] | None = None  # the verifier model's, when one is configured


class SemanticIndex:
    """The L2 index: one HASH document per answered prompt, pointing at its L1 entry."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        dimension: int,
        hnsw: HnswSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._dimension = dimension
        self._hnsw = hnsw
        self._clock = clock
        self._key_prefix = key_prefix
        self._schema = build_schema(key_prefix, dimension, hnsw)
        # The client belongs to the caller (the lifespan closes it): the index must never close it.
        self._index = AsyncSearchIndex(self._schema, redis_client=redis, owns_client=False)
        self._ready = False  # set by ensure(); cleared when a query finds the index gone

    @property
    def name(self) -> str:
        """The RediSearch index name."""
        return str(self._schema.index.name)

    @property
    def schema(self) -> IndexSchema:
        """The index definition, for admin queries over the readable tags (scope, model, params, context)."""
        return self._schema

    async def ensure(self) -> None:
        """Create the index unless it exists, then check that the existing one matches this configuration.

        Safe when several replicas start at once: losing the race to create it is not an error.

        Raises:
            SemanticIndexError: the index exists with another schema, or Redis has no query engine.
            CacheUnavailableError: Redis failed or timed out.
        """
        try:
            differences = await create_or_compare(self._index, self._redis, "L2")
        except CacheUnavailableError as exc:
            self._refuse_unusable(exc)
            raise
        if differences:
            raise SemanticIndexError(self._mismatch_message(differences))
        self._ready = True
        logger.info("semantic index %s ready (%d dimensions)", self.name, self._dimension)

    async def nearest(self, vector: NDArray[np.float32], partition: Partition, k: int) -> list[Neighbour]:
        """Up to k stored prompts of this partition nearest to vector, nearest first.

        Raises:
            CacheUnavailableError: Redis failed, timed out, or the index is missing.
        """
        query = VectorQuery(
            **self._searched(vector),
            filter_expression=partition_filter(partition),
            num_results=k,
            ef_runtime=self._hnsw.ef_runtime,
        )
        return await self._search(query)

    async def within(
        self, vector: NDArray[np.float32], distance: float, where: FilterExpression | None, limit: int, offset: int
    ) -> list[Neighbour]:
        """Stored prompts (of any partition matching `where`) within `distance` of vector, nearest first, paged.

        Raises:
            CacheUnavailableError: Redis failed, timed out, or the index is missing.
        """
        query = VectorRangeQuery(
            **self._searched(vector), filter_expression=where, distance_threshold=distance, num_results=limit
        )
        query.paging(offset, limit)
        return await self._search(query)

    def _searched(self, vector: NDArray[np.float32]) -> dict[str, Any]:
        """What every vector query asks: this vector, against the vector field, returning prompt and entry key."""
        vector_bytes = self._vector_bytes(vector)
        return {"vector": vector_bytes, "vector_field_name": _VECTOR_FIELD, "return_fields": list(_RETURN_FIELDS)}

    async def _search(self, query: VectorQuery | VectorRangeQuery) -> list[Neighbour]:
        if not self._ready:
            await self._recreate()
        try:
            with redis_call("L2 search"):
                raw = await self._index.search(query.query, query_params=query.params)
        except CacheUnavailableError as exc:
            # A Redis that restarted empty (or was flushed) lost the index: make it again next time.
            self._ready = not index_missing(exc)
            raise
        return [hit for hit in map(_neighbour, result_rows(raw)) if hit is not None]

    async def _recreate(self) -> None:
        """Create the index again after Redis lost it; documents still in Redis are indexed again by FT.CREATE.

        Raises:
            CacheUnavailableError: Redis failed, or the index cannot be created (logged).
        """
        try:
            await self.ensure()
        except SemanticIndexError as exc:
            logger.error("semantic index unusable, bypassing L2: %s", exc)
            raise CacheUnavailableError(str(exc)) from exc
        self._ready = True

    def doc_key(self, entry_key: str) -> str:
        """The hash key of the L2 document for an L1 entry key (the scope stays in the name, as in L1)."""
        return document_key(self._key_prefix, entry_key)

    def stage(self, pipe: Pipeline, record: SemanticRecord, ttl_s: int, kind: str | None = None) -> None:
        """Queue the document's HSET and EXPIRE on pipe, so the caller's MULTI writes L1 and L2 together."""
        key = self.doc_key(record.entry_key)
        pipe.hset(key, mapping=self._document(record, kind))
        pipe.expire(key, ttl_s)

    def _document(self, record: SemanticRecord, kind: str | None) -> dict[FieldT, EncodableT]:
        document: dict[FieldT, EncodableT] = {name: value for name, value in partition_tags(record.partition).items()}
        document.update(
            {
                "prompt": record.prompt,
                "entry_key": record.entry_key,
                "created_at": self._clock(),
                _VECTOR_FIELD: self._vector_bytes(record.vector),
            }
        )
        if kind is not None:  # not indexed: read by invalidation when the answer's L1 entry was evicted
            document["kind"] = kind
        if record.verifier_vector is not None:  # not indexed: read back for the candidates a verifier judges
            document[_VERIFIER_FIELD] = np.ascontiguousarray(record.verifier_vector, dtype=np.float32).tobytes()
        return document

    async def verifier_vectors(self, entry_keys: Sequence[str]) -> list[NDArray[np.float32] | None]:
        """The verifier vectors stored with these entries' L2 documents (None where there is none).

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("L2 verifier vectors"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry_key in entry_keys:
                    pipe.hget(self.doc_key(entry_key), _VERIFIER_FIELD)
                stored = await pipe.execute()
        return [np.frombuffer(raw, dtype=np.float32) if isinstance(raw, bytes) and raw else None for raw in stored]

    def _vector_bytes(self, vector: NDArray[np.float32]) -> bytes:
        if vector.shape != (self._dimension,):
            # RediSearch would not index such a document (or reject the query): a bug, not a cache outage.
            raise ValueError(f"expected a vector of shape ({self._dimension},), got {vector.shape}")
        return np.ascontiguousarray(vector, dtype=np.float32).tobytes()

    def _refuse_unusable(self, exc: CacheUnavailableError) -> None:
        """Raise SemanticIndexError when a startup failure is not Redis being unavailable.

        Raises:
            SemanticIndexError: Redis has no query engine, or redisvl refused without a Redis error.
        """
        cause = next((cause for cause in causes(exc) if isinstance(cause, RedisError | OSError)), None)
        if isinstance(cause, ResponseError) and "unknown command" in str(cause).lower():
            raise SemanticIndexError(
                f"Redis has no query engine (FT.* commands), which the semantic cache needs: {cause}. "
                "Use Redis 8 or Redis Stack, or disable the semantic cache (semantic.enabled: false)."
            ) from exc
        if cause is None:
            raise SemanticIndexError(
                f"Could not create or read the semantic index {self.name!r}: {exc.__cause__}"
            ) from exc

    def _mismatch_message(self, differences: list[str]) -> str:
        return (
            f"The semantic index {self.name!r} already exists with another schema: {'; '.join(differences)}. "
            f"Either drop it (FT.DROPINDEX {self.name}; its documents expire on their own, or add DD to delete "
            "them now) and restart, or set another redis.key_prefix."
        )


def build_schema(key_prefix: str, dimension: int, hnsw: HnswSettings) -> IndexSchema:
    """The index definition: partition tags, the prompt and its L1 key, creation time, and the vector."""
    vector_attrs = {
        "algorithm": "hnsw",
        "datatype": "float32",
        "distance_metric": "cosine",
        "dims": dimension,
        "m": hnsw.m,
        "ef_construction": hnsw.ef_construction,
        "ef_runtime": hnsw.ef_runtime,
    }
    fields: list[dict[str, object]] = [tag_field(name) for name in (*_TAG_FIELDS, _PARTITION_FIELD)]
    fields += [
        {"name": "prompt", "type": "text"},
        tag_field("entry_key"),
        {"name": "created_at", "type": "numeric"},
        {"name": _VECTOR_FIELD, "type": "vector", "attrs": vector_attrs},
    ]
    index = {"name": f"{key_prefix}:l2", "prefix": f"{key_prefix}:l2:", "storage_type": "hash"}
    return IndexSchema.from_dict({"index": index, "fields": fields})


def document_key(key_prefix: str, entry_key: str) -> str:
    """The L2 document key of an L1 entry key; also known with the semantic layer off, for deletions."""
    return f"{key_prefix}:l2:{entry_key.removeprefix(f'{key_prefix}:l1:')}"


def partition_tags(partition: Partition) -> dict[str, str]:
    """The tag values stored for a partition, by field name: the four readable ones and their digest."""
    values = (partition.scope, partition.model, partition.params_hash, partition.context_hash)
    tags = {name: tag_value(value) for name, value in zip(_TAG_FIELDS, values, strict=True)}
    tags[_PARTITION_FIELD] = partition_digest(partition)
    return tags


def partition_digest(partition: Partition) -> str:
    """One tag standing for scope, model, params and context together (JSON keeps the four values apart)."""
    values = [partition.scope, partition.model, partition.params_hash, partition.context_hash]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


def partition_filter(partition: Partition) -> FilterExpression:
    """scope & model & params & context, as one exact match on their digest.

    Four tag matches would be the same predicate, but RediSearch then intersects the long lists of the shared
    model, params and context tags: p50 about 3.2 ms instead of 1.6 ms over a tenant's 1% of 100k entries
    (load_tests/results/l2_index.md).
    """
    return Tag(_PARTITION_FIELD) == partition_digest(partition)


def _neighbour(fields: dict[str, object]) -> Neighbour | None:
    """The hit, or None when its fields are gone: a document that expired while the query ran comes back bare."""
    values = [fields.get(name) for name in (*_RETURN_FIELDS, _DISTANCE_FIELD)]
    if any(value is None for value in values):
        return None
    prompt, entry_key, distance = map(as_text, values)
    return Neighbour(prompt=prompt, entry_key=entry_key, distance=float(distance))
