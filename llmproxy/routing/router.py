"""The semantic router: KNN of the prompt's vector over route references in a RediSearch index.

Each load writes a new index generation (`<prefix>:routes:<id>`) and swaps it in, so readers always see one
complete set of routes, and replicas sharing a Redis never touch each other's generations.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import numpy as np
from numpy.typing import NDArray
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT
from redisvl.exceptions import RedisVLError
from redisvl.index import AsyncSearchIndex
from redisvl.query import VectorQuery
from redisvl.schema import IndexSchema

from llmproxy.routing.table import DEFAULT_ROUTE, Route, RouteDecision, RoutesError, RouteTable, load_routes
from llmproxy.search_results import as_text, result_rows

__all__ = ["Router"]

logger = logging.getLogger(__name__)

Vector = NDArray[np.float32]
Encode = Callable[[list[str]], list[Vector | None]]

_MAX_K = 10
_ROUTE_FIELD = "route"
_VECTOR_FIELD = "vector"
_DISTANCE_FIELD = VectorQuery.DISTANCE_ID
_REDIS_ERRORS = (RedisVLError, RedisError, OSError)


@dataclass(frozen=True, slots=True)
class _Generation:
    """One complete set of routes and the index holding their references (None for the empty table)."""

    table: RouteTable
    index: AsyncSearchIndex | None
    references: int


_EMPTY = _Generation(RouteTable(()), None, 0)


class Router:
    """Classifies prompt vectors against the routes in force; `decide` is safe to await from many requests."""

    def __init__(self, redis: Redis, key_prefix: str, dimension: int, encode: Encode) -> None:
        self._redis = redis
        self._key_prefix = key_prefix
        self._dimension = dimension
        self._encode = encode
        self._current = _EMPTY

    @property
    def table(self) -> RouteTable:
        """The routes in force (empty before the first load)."""
        return self._current.table

    async def load(self, table: RouteTable) -> None:
        """Embed every reference, index them in a new generation, swap it in and drop the old one.

        Raises:
            RoutesError: a reference is longer than the model window, or Redis failed (the old routes stay).
        """
        vectors = await self._embed(table)
        generation = await self._store(table, vectors) if vectors else _Generation(table, None, 0)
        previous, self._current = self._current, generation
        await _drop(previous)
        logger.info("routes loaded: %d routes, %d references", len(table.routes), len(vectors))

    async def reload(self, path: Path, upstream_names: frozenset[str]) -> RouteTable:
        """Load the routes file at path and put it in force; on any error the old routes stay.

        Raises:
            RoutesError: the file is invalid, or its routes cannot be embedded or stored.
        """
        table = load_routes(path, upstream_names)
        try:
            await self.load(table)
        except RoutesError as exc:
            raise RoutesError(f"{path}: {exc}") from exc
        return table

    async def decide(self, vector: Vector | None) -> RouteDecision:
        """The matching route nearest to vector, or DEFAULT_ROUTE (also when Redis fails: never raises)."""
        generation = self._current
        if vector is None or generation.index is None:
            return DEFAULT_ROUTE
        if vector.shape != (self._dimension,):
            logger.warning("router got a vector of shape %s, expected (%d,)", vector.shape, self._dimension)
            return DEFAULT_ROUTE
        try:
            rows = await _nearest(generation, vector)
        except (*_REDIS_ERRORS, ValueError) as exc:  # ValueError: a reply we cannot parse
            if self._current is not generation:
                return await self.decide(vector)  # a reload dropped the index mid-query: ask the new one
            logger.warning("router query failed, using the default route: %s", _cause(exc))
            return DEFAULT_ROUTE
        return _best_match(generation.table, rows)

    async def close(self) -> None:
        """Drop this router's index generation (never raises)."""
        previous, self._current = self._current, _EMPTY
        await _drop(previous)

    async def _embed(self, table: RouteTable) -> list[Vector]:
        texts = [reference for route in table.routes for reference in route.references]
        if not texts:
            return []
        encoded = await anyio.to_thread.run_sync(self._encode, texts)
        owners = [
            f"routes[{i}] ({route.name}).references[{j}]"
            for i, route in enumerate(table.routes)
            for j in range(len(route.references))
        ]
        too_long = [owner for owner, vector in zip(owners, encoded, strict=True) if vector is None]
        if too_long:
            raise RoutesError(f"{', '.join(too_long)}: longer than the embedding model's window")
        return [vector for vector in encoded if vector is not None]

    async def _store(self, table: RouteTable, vectors: list[Vector]) -> _Generation:
        schema = build_schema(f"{self._key_prefix}:routes:{secrets.token_hex(4)}", self._dimension)
        index = AsyncSearchIndex(schema, redis_client=self._redis, owns_client=False)
        generation = _Generation(table, index, len(vectors))
        try:
            # Index first, documents second: RediSearch indexes each HSET as it happens, so the index is
            # complete when the pipeline returns (documents written before FT.CREATE are scanned in background).
            await index.create(overwrite=False)
            await self._write(schema, table, vectors)
        except _REDIS_ERRORS as exc:
            await _drop(generation)
            raise RoutesError(f"could not store routes: {_cause(exc)}") from exc
        return generation

    async def _write(self, schema: IndexSchema, table: RouteTable, vectors: list[Vector]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        references = [(route.name, text) for route in table.routes for text in route.references]
        for number, ((name, text), vector) in enumerate(zip(references, vectors, strict=True)):
            mapping: dict[FieldT, EncodableT] = {
                _ROUTE_FIELD: name,
                "reference": text,
                _VECTOR_FIELD: _vector_bytes(vector),
            }
            pipe.hset(f"{schema.index.prefix}{number}", mapping=mapping)
        await pipe.execute()


def build_schema(name: str, dimension: int) -> IndexSchema:
    """One generation's index: the route name (tag), the reference text, and its vector (HNSW, COSINE)."""
    vector_attrs = {"algorithm": "hnsw", "datatype": "float32", "distance_metric": "cosine", "dims": dimension}
    fields: list[dict[str, object]] = [
        {"name": _ROUTE_FIELD, "type": "tag", "attrs": {"case_sensitive": True}},
        {"name": "reference", "type": "text"},
        {"name": _VECTOR_FIELD, "type": "vector", "attrs": vector_attrs},
    ]
    index = {"name": name, "prefix": f"{name}:", "storage_type": "hash"}
    return IndexSchema.from_dict({"index": index, "fields": fields})


async def _nearest(generation: _Generation, vector: Vector) -> list[tuple[str, float]]:
    """(route name, distance) of the references nearest to vector."""
    assert generation.index is not None
    query = VectorQuery(
        vector=_vector_bytes(vector),
        vector_field_name=_VECTOR_FIELD,
        return_fields=[_ROUTE_FIELD],
        num_results=min(_MAX_K, generation.references),
    )
    raw = await generation.index.search(query.query, query_params=query.params)
    return [_hit(row) for row in result_rows(raw) if _ROUTE_FIELD in row and _DISTANCE_FIELD in row]


def _best_match(table: RouteTable, hits: list[tuple[str, float]]) -> RouteDecision:
    routes: dict[str, Route] = {route.name: route for route in table.routes}
    matches = [
        (distance, routes[name])
        for name, distance in hits
        if name in routes and distance <= routes[name].distance_threshold
    ]
    if not matches:
        return DEFAULT_ROUTE
    distance, route = min(matches, key=lambda match: match[0])
    return RouteDecision(route.name, route.action, route.cache, distance)


async def _drop(generation: _Generation) -> None:
    """FT.DROPINDEX ... DD, logging failures: a leftover generation only costs memory, never a wrong route."""
    if generation.index is None:
        return
    try:
        await generation.index.delete(drop=True)
    except _REDIS_ERRORS as exc:
        logger.warning("could not drop route index %s: %s", generation.index.name, _cause(exc))


def _vector_bytes(vector: Vector) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _hit(row: dict[str, object]) -> tuple[str, float]:
    return as_text(row[_ROUTE_FIELD]), float(as_text(row[_DISTANCE_FIELD]))


def _cause(exc: Exception) -> str:
    cause = exc.__cause__ if isinstance(exc, RedisVLError) and exc.__cause__ else exc
    return f"{cause.__class__.__name__}: {cause}"
