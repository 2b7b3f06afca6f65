"""Exporting a sentence-transformers model to ONNX (fp32), checked against torch before it is published.

The graph is the model's whole module chain (transformer, its configured pooling, Normalize when the model
has one), traced by torch's TorchScript exporter with dynamic batch and sequence axes. The tokenizer is the
model's own fast tokenizer as sentence-transformers configured it (e.g. lower-casing), saved as tokenizer.json.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from llmproxy.embeddings.model_files import ModelSource
from llmproxy.embeddings.onnx_store import EXPORT_VERSION, MODEL_FILE, TOKENIZER_FILE, ExportManifest, OnnxExportError

OPSET = 17
OUTPUT = "sentence_embedding"
MAX_CHECK_DISTANCE = 1e-5  # cosine distance allowed between the export and torch on the probe prompts
# Probe prompts of different lengths: the traced batch must be padded, or the attention mask could be traced away.
_PROBES = (
    "How do I reverse a list in Python?",
    "ok",
    "Naïve café owners in Zürich — 東京 — paid €12.50 🙂 for 3 croissants, didn't they?",
    "Summarise the following paragraph about distributed consensus protocols and their failure modes. " * 3,
)


class _SentenceGraph(torch.nn.Module):
    """The model's module chain with positional tensor inputs, as the exporter needs."""

    def __init__(self, model: SentenceTransformer, inputs: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.inputs = inputs

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        features: dict[str, Any] = dict(zip(self.inputs, tensors, strict=True))
        features["modality"] = "text"
        output: torch.Tensor = self.model(features)[OUTPUT]
        return output


def export_model(source: ModelSource, digest: str, folder: Path) -> ExportManifest:
    """Write MODEL_FILE and TOKENIZER_FILE into folder; returns the manifest to publish with them.

    Raises:
        OnnxExportError: the exported graph does not reproduce torch's vectors.
    """
    model = SentenceTransformer(str(source.folder), device="cpu", local_files_only=True)
    model.eval()
    features = model.preprocess(list(_PROBES))
    inputs = tuple(name for name, value in features.items() if isinstance(value, torch.Tensor))
    _trace(_SentenceGraph(model, inputs), tuple(features[name] for name in inputs), inputs, folder / MODEL_FILE)
    model.tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    _check_against_torch(model, folder / MODEL_FILE, {name: features[name].numpy() for name in inputs})
    tokenizer = model.tokenizer
    return ExportManifest(
        export_version=EXPORT_VERSION,
        model=source.name,
        digest=digest,
        dimension=int(model.get_embedding_dimension() or 0),
        window_tokens=int(model.max_seq_length or tokenizer.model_max_length),
        inputs=inputs,
        output=OUTPUT,
        pad_id=int(tokenizer.pad_token_id or 0),
        pad_type_id=int(tokenizer.pad_token_type_id or 0),
        padding_side=tokenizer.padding_side,
        exported_with=f"torch {torch.__version__}, onnx opset {OPSET}",
    )


def _trace(graph: torch.nn.Module, example: tuple[torch.Tensor, ...], inputs: tuple[str, ...], path: Path) -> None:
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs} | {OUTPUT: {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, which we do not use; its tracer warnings
        # are about Python branches that are constant for this graph (the check below proves the export right).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            example,
            str(path),
            input_names=list(inputs),
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _check_against_torch(model: SentenceTransformer, path: Path, feed: dict[str, np.ndarray]) -> None:
    import onnx
    import onnxruntime

    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = np.asarray(session.run([OUTPUT], feed)[0], dtype=np.float64)
    expected = model.encode(list(_PROBES), convert_to_numpy=True, show_progress_bar=False).astype(np.float64)
    cosine = (exported * expected).sum(axis=1) / np.linalg.norm(exported, axis=1) / np.linalg.norm(expected, axis=1)
    worst = float(np.max(1 - cosine))
    if worst > MAX_CHECK_DISTANCE:
        raise OnnxExportError(f"the ONNX export {path} is off by a cosine distance of {worst:.2e}: not published")
