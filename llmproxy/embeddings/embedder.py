"""Embedder: an encoder backend (ONNX Runtime or torch) run in a worker thread, with concurrent requests
micro-batched.

Prompts longer than the model's window are not embedded at all (`None`): the model would silently
truncate them, and two long prompts sharing their first 256 tokens would look identical.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import numpy as np
from numpy.typing import NDArray

from llmproxy.settings import EmbeddingSettings

logger = logging.getLogger(__name__)

Vector = NDArray[np.float32]
_SPECIAL_TOKENS = 2  # [CLS] and [SEP] count against the window


class EncoderBackend(Protocol):
    """What runs the model: unit-length vectors for a batch, and the tokenizer's count."""

    dimension: int
    window_tokens: int

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        """One unit-length row per text; called in a worker thread, one batch at a time."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of text without the special tokens, untruncated."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character offsets of each token of text, without the special tokens, untruncated."""
        ...


def load_model(settings: EmbeddingSettings) -> EncoderBackend:
    """The configured backend with its model loaded from local files only (nothing is downloaded at run time).

    Raises:
        OnnxExportError: backend onnx, and the export is missing (export at start off) or failed.
    """
    # Imported here: the ONNX serving path never imports torch (seconds and hundreds of MB per worker).
    if settings.backend == "onnx":
        from llmproxy.embeddings.onnx_backend import load_onnx_backend

        return load_onnx_backend(settings)
    from llmproxy.embeddings.torch_backend import load_torch_backend

    return load_torch_backend(settings)


@dataclass(slots=True)
class _Pending:
    text: str
    future: asyncio.Future[Vector | None]


class Embedder:
    """Turns prompts into unit-length float32 vectors; `embed` is safe to await from many requests at once."""

    def __init__(self, model: EncoderBackend, max_batch: int, max_wait_ms: float) -> None:
        self._model = model
        self._max_batch = max_batch
        self._max_wait_s = max_wait_ms / 1000
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.dimension: int = model.dimension
        self.window_tokens: int = model.window_tokens

    def encode(self, texts: Sequence[str]) -> list[Vector | None]:
        """Embed a batch synchronously (the caller picks the thread); None for texts beyond the window."""
        fitting = [index for index, text in enumerate(texts) if self.fits_window(text)]
        vectors: list[Vector | None] = [None] * len(texts)
        if fitting:
            encoded = self._model.encode([texts[index] for index in fitting])
            for index, vector in zip(fitting, encoded, strict=True):
                vectors[index] = np.asarray(vector, dtype=np.float32)
        return vectors

    @property
    def window_limit(self) -> int:
        """Tokens of a text the model sees (its window, less the special tokens)."""
        return self.window_tokens - _SPECIAL_TOKENS

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Where each token of text lies in it, as (start, end) character offsets; runs the tokenizer only."""
        return self._model.token_spans(text)

    def fits_window(self, text: str) -> bool:
        """Whether the model sees the whole text (no truncation)."""
        limit = self.window_limit
        if len(text) <= limit:
            return True  # every token covers at least one character
        return self._model.count_tokens(text) <= limit

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


ModelLoader = Callable[[EmbeddingSettings], EncoderBackend]
