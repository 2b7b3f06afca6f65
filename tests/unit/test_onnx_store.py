"""The ONNX export store: keying by model digest and exporter version, atomic publication, one export at a time.

The exporter here writes small files in place of a real export (the real one is tested in
tests/integration/test_onnx_backend.py): what is under test is the folder protocol.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from llmproxy.embeddings.model_files import ModelSource, model_digest, safe_name
from llmproxy.embeddings.onnx_store import (
    EXPORT_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    ExportManifest,
    OnnxExportError,
    export_name,
    find_export,
    prepare,
)


def model_folder(root: Path) -> Path:
    folder = root / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text('{"hidden_size": 384}')
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (folder / "README.md").write_text("a model")
    return folder


@pytest.fixture
def source(tmp_path: Path) -> ModelSource:
    return ModelSource("all-MiniLM-L6-v2", model_folder(tmp_path))


class CountingExporter:
    """Writes a small export; counts its calls and can be slowed down or made to fail half-way."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.calls = 0
        self.delay_s, self.fail = delay_s, fail

    def __call__(self, source: ModelSource, digest: str, folder: Path) -> ExportManifest:
        self.calls += 1
        (folder / MODEL_FILE).write_bytes(b"graph")
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("export failed half-way (test)")
        (folder / TOKENIZER_FILE).write_text("{}")
        return manifest(source, digest)


def manifest(source: ModelSource, digest: str) -> ExportManifest:
    return ExportManifest(
        export_version=EXPORT_VERSION,
        model=source.name,
        digest=digest,
        dimension=384,
        window_tokens=256,
        inputs=("input_ids", "attention_mask"),
        output="sentence_embedding",
        pad_id=0,
        pad_type_id=0,
        padding_side="right",
        exported_with="test",
    )


def test_export_name_is_model_name_digest_and_exporter_version(source: ModelSource) -> None:
    digest = model_digest(source.folder)
    assert export_name(source, digest) == f"all-MiniLM-L6-v2-{digest[:16]}-v{EXPORT_VERSION}"


def test_digest_changes_with_weights_config_or_pooling_but_not_with_docs(source: ModelSource) -> None:
    original = model_digest(source.folder)
    (source.folder / "README.md").write_text("edited docs")
    (source.folder / ".gitattributes").write_text("*.safetensors lfs")
    assert model_digest(source.folder) == original
    digests = {original}
    for changed in ("model.safetensors", "config.json", "1_Pooling/config.json"):
        (source.folder / changed).write_text(f"changed {changed}")
        digests.add(model_digest(source.folder))
    assert len(digests) == 4


def test_digest_depends_on_file_names_not_only_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (first / "x.json").write_text("same")
    (second / "y.json").write_text("same")
    assert model_digest(first) != model_digest(second)


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
        ("/models/my model/", "my-model"),
        ("C:\\models\\e5-small", "e5-small"),
        ("...", "model"),
    ],
)
def test_model_names_become_safe_folder_names(model: str, name: str) -> None:
    assert safe_name(model) == name


def test_prepare_exports_once_then_finds_the_export(tmp_path: Path, source: ModelSource) -> None:
    exporter = CountingExporter()
    first = prepare(tmp_path / "onnx", source, exporter)
    second = prepare(tmp_path / "onnx", source, exporter)
    assert (first.exported, second.exported, exporter.calls) == (True, False, 1)
    assert first.folder == second.folder == tmp_path / "onnx" / export_name(source, model_digest(source.folder))
    assert sorted(path.name for path in first.folder.iterdir()) == sorted([MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE])
    assert second.manifest == first.manifest


def test_changed_model_files_get_a_new_export_beside_the_old(tmp_path: Path, source: ModelSource) -> None:
    exporter = CountingExporter()
    before = prepare(tmp_path / "onnx", source, exporter)
    (source.folder / "model.safetensors").write_bytes(b"fine-tuned weights")
    after = prepare(tmp_path / "onnx", source, exporter)
    assert after.exported and after.folder != before.folder and before.folder.is_dir()


def test_failed_export_publishes_nothing_and_leaves_no_staging_folder(tmp_path: Path, source: ModelSource) -> None:
    root = tmp_path / "onnx"
    with pytest.raises(RuntimeError, match="half-way"):
        prepare(root, source, CountingExporter(fail=True))
    assert [path.name for path in root.iterdir() if path.is_dir()] == []
    assert prepare(root, source, CountingExporter()).exported


def test_staging_folder_of_a_dead_export_is_never_loaded_and_is_cleared(tmp_path: Path, source: ModelSource) -> None:
    root = tmp_path / "onnx"
    name = export_name(source, model_digest(source.folder))
    leftover = root / f".{name}.dead1234"
    leftover.mkdir(parents=True)
    (leftover / MODEL_FILE).write_bytes(b"half a graph")
    assert find_export(root, name) is None
    prepared = prepare(root, source, CountingExporter())
    assert prepared.exported and not leftover.exists()


def test_concurrent_prepares_export_once_and_all_get_the_export(tmp_path: Path, source: ModelSource) -> None:
    exporter = CountingExporter(delay_s=0.3)
    results: list[Path] = []

    def worker() -> None:
        results.append(prepare(tmp_path / "onnx", source, exporter).folder)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(10)
    assert exporter.calls == 1
    assert len(results) == 4 and len(set(results)) == 1


def test_missing_export_without_an_exporter_names_the_prepare_command(tmp_path: Path, source: ModelSource) -> None:
    with pytest.raises(OnnxExportError, match="llmproxy models prepare"):
        prepare(tmp_path / "onnx", source, None)
    assert not (tmp_path / "onnx").exists()  # nothing written: the folder may be read-only


def test_a_folder_without_manifest_is_reported_not_loaded(tmp_path: Path, source: ModelSource) -> None:
    root = tmp_path / "onnx"
    broken = root / export_name(source, model_digest(source.folder))
    broken.mkdir(parents=True)
    (broken / MODEL_FILE).write_bytes(b"graph")
    with pytest.raises(OnnxExportError, match="not a complete ONNX export"):
        prepare(root, source, CountingExporter())


def test_finding_an_existing_export_writes_nothing(tmp_path: Path, source: ModelSource) -> None:
    # A container's export folder belongs to root and its proxy runs unprivileged: no lock file, no mkdir.
    root = tmp_path / "onnx"
    prepare(root, source, CountingExporter())
    for lock in root.glob(".*.lock"):
        lock.unlink()
    before = sorted((path.name, path.stat().st_mtime_ns) for path in root.rglob("*"))
    assert not prepare(root, source, None).exported
    assert sorted((path.name, path.stat().st_mtime_ns) for path in root.rglob("*")) == before
