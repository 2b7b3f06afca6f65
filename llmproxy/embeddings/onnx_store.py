"""The exported ONNX models on disk: one folder per model digest and exporter version, published atomically.

    <onnx_dir>/<model>-<digest[:16]>-v<EXPORT_VERSION>/   model.onnx, tokenizer.json, manifest.json

An export is written into a hidden staging folder and renamed into place once complete, under an exclusive
file lock: processes sharing the folder export a model once, and a half-written export is never seen.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from llmproxy.embeddings.model_files import ModelSource, model_digest, model_source
from llmproxy.settings import EmbeddingSettings

logger = logging.getLogger(__name__)

# Bump when the graph, the files or the manifest change: older exports are then ignored (and re-made).
EXPORT_VERSION = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"  # written last: its presence marks a complete export


class OnnxExportError(Exception):
    """An export is missing, damaged or could not be made; the message says what to do."""


class ExportManifest(BaseModel):
    """What the ONNX backend needs to know about an export besides the graph and the tokenizer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    export_version: int
    model: str
    digest: str
    dimension: int
    window_tokens: int
    inputs: tuple[str, ...]
    output: str
    pad_id: int
    pad_type_id: int
    padding_side: Literal["right", "left"]
    exported_with: str


@dataclass(frozen=True, slots=True)
class PreparedModel:
    """A complete export, and whether this call made it."""

    folder: Path
    manifest: ExportManifest
    exported: bool

    @property
    def model_file(self) -> Path:
        return self.folder / MODEL_FILE

    @property
    def tokenizer_file(self) -> Path:
        return self.folder / TOKENIZER_FILE


Exporter = Callable[[ModelSource, str, Path], ExportManifest]
"""Writes MODEL_FILE and TOKENIZER_FILE of (source, digest) into an empty folder and returns the manifest."""


def export_name(source: ModelSource, digest: str) -> str:
    """The folder name of a model's export: its name, the digest of its files and the exporter version."""
    return f"{source.name}-{digest[:16]}-v{EXPORT_VERSION}"


def find_export(root: Path, name: str) -> PreparedModel | None:
    """The complete export of that name, or None; never takes a lock nor writes (the folder may be read-only).

    Raises:
        OnnxExportError: the folder exists but is not a complete export.
    """
    folder = root / name
    if not folder.is_dir():
        return None
    try:
        manifest = ExportManifest.model_validate_json((folder / MANIFEST_FILE).read_bytes())
    except (OSError, ValidationError) as exc:
        raise OnnxExportError(f"{folder} is not a complete ONNX export ({exc.__class__.__name__}): remove it") from exc
    for required in (MODEL_FILE, TOKENIZER_FILE):
        if not (folder / required).is_file():
            raise OnnxExportError(f"{folder} has no {required}: remove it and run `llmproxy models prepare`")
    return PreparedModel(folder, manifest, exported=False)


def prepare_for(settings: EmbeddingSettings, *, export_missing: bool = True) -> PreparedModel:
    """The configured model's export under settings.onnx_dir (see `prepare`).

    Raises:
        OnnxExportError: as `prepare`.
        ModelFilesError: the model has no local files.
    """
    return prepare(settings.onnx_dir, model_source(settings), export_with_torch if export_missing else None)


def prepare(root: Path, source: ModelSource, export: Exporter | None) -> PreparedModel:
    """The model's export under root, made first if missing (one process exports, the others wait for it).

    Raises:
        OnnxExportError: the export failed, root is not writable, or it is missing and export is None.
    """
    digest = model_digest(source.folder)
    name = export_name(source, digest)
    if (found := find_export(root, name)) is not None:
        return found
    if export is None:
        raise OnnxExportError(
            f"no ONNX export of embedding model {source.name} in {root} (looked for {name}): run "
            "`llmproxy models prepare`, or set embeddings.onnx_export_on_start: true (or embeddings.backend: torch)"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _exclusive(root / f".{name}.lock"):
            if (found := find_export(root, name)) is not None:
                return found  # another process exported it while this one waited
            return _export_into_place(root, name, source, digest, export)
    except OSError as exc:
        raise OnnxExportError(f"cannot write the ONNX export of {source.name} under {root}: {exc}") from exc


def _export_into_place(root: Path, name: str, source: ModelSource, digest: str, export: Exporter) -> PreparedModel:
    _remove_stale_staging(root, name)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    logger.info("exporting embedding model %s to ONNX under %s (once; takes seconds)", source.name, root)
    started = time.monotonic()
    try:
        manifest = export(source, digest, staging)
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
        _sync_folder(staging)
        staging.chmod(0o755)  # mkdtemp makes it private; other users and workers read the export
        os.rename(staging, root / name)  # atomic on one file system: the export appears whole or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("exported %s in %.1f s", root / name, time.monotonic() - started)
    return PreparedModel(root / name, manifest, exported=True)


def _remove_stale_staging(root: Path, name: str) -> None:
    # Called under the lock: a staging folder of this name belongs to an export that died half-way.
    for leftover in root.glob(f".{name}.*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def _sync_folder(folder: Path) -> None:
    # Flushed before the rename, so a crash right after it cannot leave a complete-looking export of empty files.
    for path in folder.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on lock_file; the kernel releases it if the process dies."""
    with lock_file.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def export_with_torch(source: ModelSource, digest: str, folder: Path) -> ExportManifest:
    """The real exporter; torch and sentence-transformers load only when an export is needed."""
    from llmproxy.embeddings.onnx_export import export_model

    return export_model(source, digest, folder)
