"""The ONNX backend: the exported model run by ONNX Runtime with the model's Rust tokenizer; no torch imported.

One intra-op thread by default, sequential execution; ONNX Runtime releases the GIL while it runs, so the
Embedder's worker thread leaves the event loop free. A batch is padded to its longest prompt.
"""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime
from numpy.typing import NDArray
from tokenizers import Encoding, Tokenizer

from llmproxy.embeddings.onnx_store import PreparedModel, prepare_for
from llmproxy.settings import EmbeddingSettings

logger = logging.getLogger(__name__)

_ATTENTION_MASK = "attention_mask"
_TOKEN_TYPE_IDS = "token_type_ids"


class OnnxBackend:
    """An exported sentence-transformers model: unit-length float32 vectors, as sentence-transformers gives."""

    def __init__(self, prepared: PreparedModel, threads: int) -> None:
        manifest = prepared.manifest
        self.dimension: int = manifest.dimension
        self.window_tokens: int = manifest.window_tokens
        self._manifest = manifest
        self._session = onnxruntime.InferenceSession(
            str(prepared.model_file), _session_options(threads), providers=["CPUExecutionProvider"]
        )
        # Two copies of the tokenizer: one truncates at the window like sentence-transformers, one counts.
        self._tokenizer = Tokenizer.from_file(str(prepared.tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(manifest.window_tokens)
        self._counter = Tokenizer.from_file(str(prepared.tokenizer_file))
        self._counter.no_padding()
        self._counter.no_truncation()

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        """Unit-length vectors of texts, one row each (truncated at the window)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = [self._tokenizer.encode(text) for text in texts]
        (pooled,) = self._session.run([self._manifest.output], self._feed(encodings))
        vectors = np.asarray(pooled, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: NDArray[np.float32] = vectors / np.maximum(norms, 1e-12)  # as sentence-transformers normalises
        return unit

    def count_tokens(self, text: str) -> int:
        """Tokens of text without the special tokens, untruncated."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character offsets of each token of text, without the special tokens, untruncated."""
        return [(int(start), int(end)) for start, end in self._counter.encode(text, add_special_tokens=False).offsets]

    def _feed(self, encodings: list[Encoding]) -> dict[str, NDArray[np.int64]]:
        longest = max(len(encoding.ids) for encoding in encodings)
        shape = (len(encodings), longest)
        arrays = {
            "input_ids": np.full(shape, self._manifest.pad_id, dtype=np.int64),
            _ATTENTION_MASK: np.zeros(shape, dtype=np.int64),
            _TOKEN_TYPE_IDS: np.full(shape, self._manifest.pad_type_id, dtype=np.int64),
        }
        for row, encoding in enumerate(encodings):
            width = len(encoding.ids)
            columns = slice(0, width) if self._manifest.padding_side == "right" else slice(longest - width, longest)
            arrays["input_ids"][row, columns] = encoding.ids
            arrays[_ATTENTION_MASK][row, columns] = encoding.attention_mask
            arrays[_TOKEN_TYPE_IDS][row, columns] = encoding.type_ids
        return {name: arrays[name] for name in self._manifest.inputs}


def load_onnx_backend(settings: EmbeddingSettings) -> OnnxBackend:
    """The configured model's ONNX export, exported first when missing and settings allow it.

    Raises:
        OnnxExportError: no export and onnx_export_on_start is off, or the export failed.
        ModelFilesError: the model has no local files.
    """
    prepared = prepare_for(settings, export_missing=settings.onnx_export_on_start)
    backend = OnnxBackend(prepared, settings.onnx_threads)
    logger.info("embedding model %s loaded on ONNX Runtime from %s", prepared.manifest.model, prepared.folder)
    return backend


def _session_options(threads: int) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return options
