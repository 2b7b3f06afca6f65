"""The torch backend: the sentence-transformers model itself (the fallback engine, and the ONNX export's source)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from numpy.typing import NDArray
from sentence_transformers import SentenceTransformer

from llmproxy.embeddings.model_files import default_model_path
from llmproxy.settings import EmbeddingSettings

logger = logging.getLogger(__name__)


class TorchBackend:
    """A sentence-transformers model on the CPU: unit-length float32 vectors."""

    def __init__(self, model: SentenceTransformer) -> None:
        self._model = model
        self.dimension: int = int(model.get_embedding_dimension() or 0)
        self.window_tokens: int = int(model.max_seq_length or model.tokenizer.model_max_length)

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        """Unit-length vectors of texts, one row each (truncated at the window)."""
        encoded = self._model.encode(
            texts,
            batch_size=max(len(texts), 1),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(encoded, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Tokens of text without the special tokens, untruncated."""
        return len(self._model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character offsets of each token of text, without the special tokens, untruncated."""
        encoded = self._model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [(int(start), int(end)) for start, end in encoded["offset_mapping"]]


def load_torch_backend(settings: EmbeddingSettings) -> TorchBackend:
    """Load the model from local files only: nothing is downloaded at run time."""
    torch.set_num_threads(settings.torch_threads)
    source = settings.model or str(default_model_path())
    model = SentenceTransformer(source, device="cpu", local_files_only=True)
    logger.info("embedding model %s loaded on torch (%d dimensions)", source, model.get_embedding_dimension())
    return TorchBackend(model)
