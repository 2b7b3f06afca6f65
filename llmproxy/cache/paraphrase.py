"""The L2 step: embed the prompt once, find cached paraphrases in its partition, decide, fetch the answer.

The vector computed here is reused for the write-back on a miss, so each request is embedded at most
once. Embedding or Redis failures skip L2 for that request (fail open); they never fail the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from llmproxy.cache.decision.guards import features
from llmproxy.cache.decision.policy import Policy, decide_features, load_policy_model
from llmproxy.cache.entry import CacheEntry
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.keys import SemanticKey, semantic_key
from llmproxy.cache.semantic import Partition, SemanticIndex, SemanticRecord
from llmproxy.cache.verifier import Verifier
from llmproxy.embeddings.embedder import Embedder
from llmproxy.protocols.base import ParsedRequest, WireProtocol
from llmproxy.settings import SemanticSettings
from llmproxy.trace import RequestTrace

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ParaphraseHit:
    entry: CacheEntry
    ttl_ms: int  # what is left of the cached answer's lifetime
    similarity: float
    entry_key: str  # the L1 key of the cached answer (a promoted copy names it as its origin)

    def is_exact(self, key: str) -> bool:
        """Whether the answer is under the request's own L1 key: an exact hit that L1 missed by a moment."""
        return self.entry_key == key


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request's L2 view with its vector: used for the lookup, the router and the write-back."""

    kind: str  # the request's protocol: only its answers may be served (a view never spans two protocols)
    key: SemanticKey
    record: SemanticRecord


# Why a request has no vector: no plain-text prompt, a prompt past the model's window, or the model's trouble.
UnembeddedReason = Literal["no-text", "too-long", "timeout", "embedder-error"]


@dataclass(frozen=True, slots=True)
class Unembedded:
    """A request whose prompt was not embedded, and why; the router decides long prompts on its own."""

    reason: UnembeddedReason
    prompt: str | None = None  # the text that was not embedded (None: there is none)


class ParaphraseFinder:
    """Looks up earlier prompts with the same meaning in the same partition."""

    def __init__(
        self,
        embedder: Embedder,
        index: SemanticIndex,
        exact: ExactCache,
        settings: SemanticSettings,
        embed_timeout_s: float,
        effective_threshold: Callable[[str], float | None] | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self._verifier = verifier
        self._effective_threshold = effective_threshold  # an error budget's tightened threshold per model
        self._embedder = embedder
        self._embed_timeout_s = embed_timeout_s
        self._index = index
        self._exact = exact
        self._settings = settings
        self._model = load_policy_model(settings.decision, settings.decision_model)  # read once, at startup

    async def prepare(
        self, protocol: WireProtocol, parsed: ParsedRequest, scope: str, entry_key: str, trace: RequestTrace
    ) -> Prepared | Unembedded:
        """Embed the request's prompt once; Unembedded when it has no L2 view, is too long or the model failed."""
        key = semantic_key(protocol, parsed.body, parsed.key_headers)
        if key is None:
            return Unembedded("no-text")
        try:
            vector = await asyncio.wait_for(self._embedder.embed(key.prompt), self._embed_timeout_s)
        except TimeoutError:  # a busy or stuck model must cost the cache, not the request
            logger.warning("embedding took over %.0f ms; skipping the semantic cache", self._embed_timeout_s * 1000)
            trace.failed("embedder", "timeout")
            return Unembedded("timeout", key.prompt)
        except Exception:  # the model failing must cost the cache, not the request
            logger.exception("embedding failed; skipping the semantic cache for this request")
            trace.failed("embedder", "embed")
            return Unembedded("embedder-error", key.prompt)
        if vector is None:
            return Unembedded("too-long", key.prompt)
        partition = Partition(scope, parsed.model, key.params_hash, key.context_hash)
        return Prepared(protocol.name, key, SemanticRecord(partition, key.prompt, entry_key, vector))

    async def find(self, prepared: Prepared, threshold: float | None, trace: RequestTrace) -> ParaphraseHit | None:
        """The first cached paraphrase the decision accepts, nearest first, or None.

        Raises:
            CacheUnavailableError: Redis failed or timed out (the caller bypasses L2 and tells the breaker).
        """
        policy = self.policy(prepared.record.partition.model, threshold)
        return await self._find(prepared, policy, trace)

    def policy(self, model: str, threshold: float | None) -> Policy:
        """The request's header threshold, else the model's, else the default, at most the model's effective
        threshold under an error budget; guards per settings."""
        if threshold is None:
            threshold = self._settings.model_thresholds.get(model, self._settings.threshold)
        tightened = None if self._effective_threshold is None else self._effective_threshold(model)
        if tightened is not None:  # the error budget caps a header's threshold too
            threshold = min(threshold, tightened)
        return Policy(threshold=threshold, guards=self._settings.guards, learned=self._model)

    async def _find(self, prepared: Prepared, policy: Policy, trace: RequestTrace) -> ParaphraseHit | None:
        """The first accepted neighbour whose answer is still cached.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        record = prepared.record
        neighbours = await self._index.nearest(record.vector, record.partition, self._settings.top_k)
        # The request's own key: an identical request stored it after this one's L1 lookup. No decision needed.
        if any(neighbour.entry_key == record.entry_key for neighbour in neighbours):
            found = await self._answer(record.entry_key, prepared.kind)
            if found is not None:
                return ParaphraseHit(found[0], found[1], 1.0, record.entry_key)
        distances = {neighbour.entry_key: neighbour.distance for neighbour in neighbours}
        if self._verifier is not None:
            with trace.timing("verify"):
                verified = await self._verifier.distances(prepared.key.prompt, neighbours, trace)
            if verified is None:
                return None
            distances = verified  # only the candidates within the verifier's loose distance
        query = features(prepared.key.prompt)  # once per lookup, whatever the number of candidates
        for neighbour in neighbours:
            distance = distances.get(neighbour.entry_key)
            if distance is None or not decide_features(query, features(neighbour.prompt), distance, policy).hit:
                continue
            found = await self._answer(neighbour.entry_key, prepared.kind)
            if found is not None:
                return ParaphraseHit(found[0], found[1], 1.0 - distance, neighbour.entry_key)
        return None

    async def _answer(self, entry_key: str, kind: str) -> tuple[CacheEntry, int] | None:
        """The cached answer and its remaining lifetime, if it is still there and of the request's protocol.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        found = await self._exact.get_with_ttl(entry_key)
        return found if found is not None and found[0].kind == kind else None
