"""The optional verifier: a second, stronger embedding model that judges the candidates the primary model found
within a loose distance. The decision (threshold, guards) then reads the verifier's distance instead of the primary
model's.

Each L2 entry stores its verifier vector (written with the entry, off the request path); an entry stored before the
verifier was configured has none, and its vector is computed from its stored prompt when it is a candidate (not
written back). A verifier that fails or is too slow costs the lookup its hit, never the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import numpy as np

from llmproxy.cache.semantic import Neighbour, SemanticIndex
from llmproxy.embeddings.embedder import Embedder, Vector
from llmproxy.trace import RequestTrace

logger = logging.getLogger(__name__)


class Verifier:
    """Second-stage distances for the near candidates of one lookup, and the vector stored with a new entry."""

    def __init__(self, embedder: Embedder, index: SemanticIndex, max_distance: float, timeout_s: float) -> None:
        self._embedder = embedder
        self._index = index
        self.max_distance = max_distance  # primary-model distance within which candidates are verified
        self._timeout_s = timeout_s

    async def vector(self, prompt: str) -> Vector | None:
        """The verifier's vector of a prompt, or None when it is too long or the model failed (logged)."""
        try:
            return await asyncio.wait_for(self._embedder.embed(prompt), self._timeout_s)
        except Exception:  # an entry stored without its verifier vector gets one computed on use
            logger.warning("the verifier could not embed a stored prompt; it will be embedded on use")
            return None

    async def distances(
        self, prompt: str, neighbours: Sequence[Neighbour], trace: RequestTrace
    ) -> dict[str, float] | None:
        """The verifier's cosine distance to the prompt of each neighbour within max_distance, by entry key; None
        when the verifier failed (the lookup then has no hit).

        Raises:
            CacheUnavailableError: Redis failed or timed out (reading the stored vectors).
        """
        near = [neighbour for neighbour in neighbours if neighbour.distance <= self.max_distance]
        if not near:
            return {}
        dimension = self._embedder.dimension
        # A vector of another dimension was stored under an earlier verifier model: computed again, like a missing one.
        stored = [
            vector if vector is not None and vector.shape == (dimension,) else None
            for vector in await self._index.verifier_vectors([neighbour.entry_key for neighbour in near])
        ]
        missing = [neighbour.prompt for neighbour, vector in zip(near, stored, strict=True) if vector is None]
        try:
            # One batch for the model: the query and any candidate stored without its vector.
            embedded = await asyncio.wait_for(
                asyncio.gather(*(self._embedder.embed(text) for text in [prompt, *missing])), self._timeout_s
            )
        except Exception:  # TimeoutError included: a slow verifier must cost the hit, not the request
            logger.warning("the verifier failed or timed out; no L2 hit for this request")
            trace.failed("embedder", "verify")
            return None
        query, computed = embedded[0], iter(embedded[1:])
        if query is None:  # past the verifier's window: it cannot vouch for any candidate
            return None
        vectors = [vector if vector is not None else next(computed) for vector in stored]
        return {
            neighbour.entry_key: 1.0 - float(np.dot(query, vector))
            for neighbour, vector in zip(near, vectors, strict=True)
            if vector is not None
        }
