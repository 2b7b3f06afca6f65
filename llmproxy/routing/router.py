"""The semantic router: the prompt's vector against every route reference, in memory, in one matrix product.

The references are embedded when routes are loaded and kept in this process as one matrix of unit rows: a few
hundred vectors at most, nothing another process or an evicted key can take away. Routing needs no Redis,
so block and no-cache routes hold while Redis is down, flushed or evicting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import numpy as np
from numpy.typing import NDArray

from llmproxy.routing.passages import cut_passages
from llmproxy.routing.table import (
    DEFAULT_ROUTE,
    BlockAction,
    RespondAction,
    RouteDecision,
    RoutesError,
    RouteTable,
    UndecidedReason,
    load_routes,
)

__all__ = ["PromptEmbedder", "Router"]

logger = logging.getLogger(__name__)

Vector = NDArray[np.float32]
# Tokens kept free in each cut window: re-tokenising a slice that starts inside a word may add one or two.
_CUT_MARGIN = 8
# Passages up to this length (about 100 tokens) are embedded together, longer ones in a round of their own.
_SHORT_PASSAGE_CHARS = 400
# A prompt whose tokens average more characters than this is not text to route; it is never tokenised whole.
_MAX_CHARS_PER_TOKEN = 64


class PromptEmbedder(Protocol):
    """What the router needs of the embedding model (the Embedder)."""

    @property
    def window_limit(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> list[Vector | None]: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...

    async def embed(self, text: str) -> Vector | None: ...


@dataclass(frozen=True, slots=True)
class _Generation:
    """One complete set of routes and its reference matrix: row i belongs to routes[owners[i]]."""

    table: RouteTable
    matrix: NDArray[np.float32]  # (references, dimension), unit rows
    owners: NDArray[np.intp]
    thresholds: NDArray[np.float32]  # the owner's distance_threshold, per row
    strict: bool = False  # some route blocks or forbids caching: the sentences of a long prompt matter


class Router:
    """Classifies prompts against the routes in force; safe to use from many requests at once."""

    def __init__(self, embedder: PromptEmbedder, dimension: int, max_windows: int, timeout_s: float) -> None:
        self._embedder = embedder
        self._dimension = dimension
        self._max_windows = max_windows
        self._timeout_s = timeout_s
        self._current = _empty(dimension)

    @property
    def table(self) -> RouteTable:
        """The routes in force (empty before the first load)."""
        return self._current.table

    @property
    def active(self) -> bool:
        """Whether any route is in force (with none, every prompt takes the default route without embedding)."""
        return bool(self._current.table.routes)

    async def load(self, table: RouteTable) -> None:
        """Embed every reference and put the table in force at once (a single assignment: readers see old or new).

        Raises:
            RoutesError: a reference is longer than the model's window (the old routes stay).
        """
        self._current = await self._build(table)
        logger.info("routes loaded: %d routes, %d references", len(table.routes), len(self._current.owners))

    async def reload(self, path: Path, upstream_names: frozenset[str]) -> RouteTable:
        """Load the routes file at path and put it in force; on any error the old routes stay.

        Raises:
            RoutesError: the file is invalid, or a reference cannot be embedded.
        """
        table = load_routes(path, upstream_names)
        try:
            await self.load(table)
        except RoutesError as exc:
            raise RoutesError(f"{path}: {exc}") from exc
        return table

    def decide(self, vector: Vector) -> RouteDecision:
        """The route of a prompt that fits the model's window: the nearest route within its threshold."""
        generation = self._current
        if vector.shape != (self._dimension,):
            logger.warning("router got a vector of shape %s, expected (%d,)", vector.shape, self._dimension)
            return DEFAULT_ROUTE
        return _nearest_routes(generation, [vector])[0]

    async def decide_long(self, text: str) -> RouteDecision | UndecidedReason:
        """The route of a prompt longer than the model's window, from its passages (see `strictest`);
        the reason instead when it cannot be decided within the embedding timeout or max_windows."""
        generation = self._current
        try:
            with anyio.fail_after(self._timeout_s):
                passages = await anyio.to_thread.run_sync(
                    self._passages, text, generation.strict, abandon_on_cancel=True
                )
                if passages is None:
                    return "too-long"
                vectors = await self._embed_all(passages)
        except TimeoutError:
            logger.warning("routing a long prompt took over %.0f ms: undecided", self._timeout_s * 1000)
            return "timeout"
        except Exception:  # the model failing leaves the request undecided, never on the default route
            logger.exception("embedding a long prompt for routing failed: undecided")
            return "embedder-error"
        known = [vector for vector in vectors if vector is not None]
        if len(known) < len(vectors):
            return "too-long"  # a cut window did not fit after all: never route on part of the prompt
        decisions = _nearest_routes(generation, known)
        return strictest(decisions[0], decisions[1:])

    async def _embed_all(self, passages: list[str]) -> list[Vector | None]:
        """Vectors of passages, in order. One model call pads every text to its longest (five sentences with a
        window cost 3x what they cost apart): windows and sentences go in separate rounds, sentences by length."""
        vectors: list[Vector | None] = [None] * len(passages)
        by_length = sorted(range(len(passages)), key=lambda index: len(passages[index]))
        long = [index for index in by_length if len(passages[index]) > _SHORT_PASSAGE_CHARS]
        short = [index for index in by_length if len(passages[index]) <= _SHORT_PASSAGE_CHARS]
        for group in (long, short):
            embedded = await asyncio.gather(*(self._embedder.embed(passages[index]) for index in group))
            for index, vector in zip(group, embedded, strict=True):
                vectors[index] = vector
        return vectors

    def _passages(self, text: str, strict: bool) -> list[str] | None:
        """The texts a long prompt is embedded as, or None past max_windows (no strict route: the leading window)."""
        limit = self._embedder.window_limit - _CUT_MARGIN
        most_tokens = self._max_windows * self._embedder.window_limit
        if len(text) > most_tokens * _MAX_CHARS_PER_TOKEN:
            return None
        spans = self._embedder.token_spans(text)
        if len(spans) > most_tokens:
            return None
        passages = cut_passages(text, spans, limit)
        return [passages.leading, *passages.others] if strict else [passages.leading]

    async def _build(self, table: RouteTable) -> _Generation:
        texts = [reference for route in table.routes for reference in route.references]
        if not texts:
            return _empty(self._dimension, table)
        encoded = await anyio.to_thread.run_sync(self._embedder.encode, texts)
        owners = [index for index, route in enumerate(table.routes) for _ in route.references]
        labels = [
            f"routes[{i}] ({route.name}).references[{j}]"
            for i, route in enumerate(table.routes)
            for j in range(len(route.references))
        ]
        too_long = [label for label, vector in zip(labels, encoded, strict=True) if vector is None]
        if too_long:
            raise RoutesError(f"{', '.join(too_long)}: longer than the embedding model's window")
        matrix = _unit_rows(np.stack([vector for vector in encoded if vector is not None]))
        thresholds = np.array([table.routes[owner].distance_threshold for owner in owners], dtype=np.float32)
        strict = any(isinstance(route.action, BlockAction) or route.cache.no_cache for route in table.routes)
        return _Generation(table, matrix, np.array(owners, dtype=np.intp), thresholds, strict)


def strictest(leading: RouteDecision, others: Sequence[RouteDecision]) -> RouteDecision:
    """One decision for a long prompt: block anywhere wins, then no-cache anywhere; else the leading window's.

    The leading window alone chooses a fixed answer or where to forward; the other passages can only make the
    decision stricter. A no-cache route found past the leading window keeps the leading window's forward target.
    """
    blocks = [decision for decision in (leading, *others) if isinstance(decision.action, BlockAction)]
    if blocks:
        return min(blocks, key=_distance)
    if leading.cache.no_cache or isinstance(leading.action, RespondAction):
        return leading  # a fixed answer is never cached either
    no_cache = [decision for decision in others if decision.cache.no_cache]
    if no_cache:
        nearest = min(no_cache, key=_distance)
        return RouteDecision(nearest.name, leading.action, nearest.cache, nearest.distance)
    return leading


def _nearest_routes(generation: _Generation, vectors: Sequence[Vector]) -> list[RouteDecision]:
    """For each vector, the route of its nearest reference among those within their route's threshold."""
    if not generation.table.routes:
        return [DEFAULT_ROUTE] * len(vectors)
    queries = _unit_rows(np.stack(vectors).astype(np.float32, copy=False))
    distances = 1.0 - generation.matrix @ queries.T  # (references, vectors): cosine distance
    within = distances <= generation.thresholds[:, np.newaxis]
    masked = np.where(within, distances, np.inf)
    rows = np.argmin(masked, axis=0)
    decisions = []
    for column, row in enumerate(rows):
        if not within[row, column]:
            decisions.append(DEFAULT_ROUTE)
            continue
        route = generation.table.routes[int(generation.owners[row])]
        decisions.append(RouteDecision(route.name, route.action, route.cache, float(distances[row, column])))
    return decisions


def _unit_rows(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: NDArray[np.float32] = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return unit


def _empty(dimension: int, table: RouteTable | None = None) -> _Generation:
    return _Generation(
        table or RouteTable(()),
        np.zeros((0, dimension), dtype=np.float32),
        np.zeros(0, dtype=np.intp),
        np.zeros(0, dtype=np.float32),
    )


def _distance(decision: RouteDecision) -> float:
    return decision.distance if decision.distance is not None else float("inf")
