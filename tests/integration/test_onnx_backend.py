"""The ONNX embedding engine: `llmproxy models prepare`, the export at startup, and a real proxy serving on it.

Exports here go to temporary folders (a real export with torch, ~10-30 s each); the proxies use the
export `make install` prepared, or make it once in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pytest
from openai import OpenAI

from llmproxy.embeddings.embedder import EncoderBackend, ModelLoader, load_model
from llmproxy.embeddings.onnx_backend import OnnxBackend
from llmproxy.embeddings.onnx_store import MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE, OnnxExportError, prepare_for
from llmproxy.settings import EmbeddingSettings
from tests.support.clients import openai_sdk
from tests.support.servers import free_port, wait_answering
from tests.support.upstream import FakeUpstream

QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"
EXPORT_TIMEOUT_S = 300
TORCH_LIBRARIES = ("libtorch", "libc10")


def llmproxy(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env}
    command = [sys.executable, "-m", "llmproxy", *args]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S)


def export_folders(root: Path) -> list[Path]:
    return [path for path in root.iterdir() if path.is_dir()]


@pytest.mark.timeout(EXPORT_TIMEOUT_S)
def test_models_prepare_exports_the_model_and_a_second_run_is_a_no_op(tmp_path: Path) -> None:
    onnx_dir = tmp_path / "onnx"
    first = llmproxy("models", "prepare", cwd=tmp_path, LLMPROXY_EMBEDDINGS__ONNX_DIR=str(onnx_dir))
    assert first.returncode == 0, first.stderr
    (folder,) = export_folders(onnx_dir)
    assert first.stdout.strip() == f"exported: {folder}"
    assert {path.name for path in folder.iterdir()} == {MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE}
    written = (folder / MODEL_FILE).stat().st_mtime_ns
    second = llmproxy("models", "prepare", cwd=tmp_path, LLMPROXY_EMBEDDINGS__ONNX_DIR=str(onnx_dir))
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"already prepared: {folder}"
    assert export_folders(onnx_dir) == [folder] and (folder / MODEL_FILE).stat().st_mtime_ns == written


@pytest.mark.timeout(EXPORT_TIMEOUT_S)
def test_workers_starting_at_once_on_a_fresh_folder_share_one_export(tmp_path: Path, model_loader: ModelLoader) -> None:
    settings = EmbeddingSettings(onnx_dir=tmp_path / "onnx")
    loaded: list[EncoderBackend] = []
    failures: list[BaseException] = []

    def start_worker() -> None:
        try:
            loaded.append(load_model(settings))
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    workers = [threading.Thread(target=start_worker) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(EXPORT_TIMEOUT_S)
    assert failures == [] and len(loaded) == 2
    assert len(export_folders(settings.onnx_dir)) == 1  # one export, no staging folder left behind
    shared = model_loader(EmbeddingSettings())
    vectors = [backend.encode([QUESTION])[0] for backend in (*loaded, shared)]
    assert all(float(np.dot(vector, vectors[-1])) > 1 - 1e-5 for vector in vectors)


def test_missing_export_with_export_at_start_off_names_the_prepare_command(tmp_path: Path) -> None:
    settings = EmbeddingSettings(onnx_dir=tmp_path / "onnx", onnx_export_on_start=False)
    with pytest.raises(OnnxExportError, match=r"run `llmproxy models prepare`"):
        load_model(settings)


def test_serve_fails_with_the_prepare_command_when_the_export_is_missing_and_may_not_be_made(
    tmp_path: Path, redis_url: str
) -> None:
    port = str(free_port())
    failed = llmproxy(
        "serve",
        "--redis-url",
        redis_url,
        "--port",
        port,
        cwd=tmp_path,
        LLMPROXY_EMBEDDINGS__ONNX_DIR=str(tmp_path / "onnx"),
        LLMPROXY_EMBEDDINGS__ONNX_EXPORT_ON_START="false",
    )
    assert failed.returncode != 0
    assert "llmproxy models prepare" in failed.stderr


def test_proxy_on_the_onnx_backend_serves_a_paraphrase_from_l2(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(embeddings={"backend": "onnx"}) as url, openai_sdk(url, api_key, upstream) as sdk:
        statuses = [ask(sdk, text)["x-cache"] for text in (QUESTION, PARAPHRASE)]
    assert statuses == ["MISS", "HIT-L2"]
    assert upstream.calls() == 1


def test_suite_shares_the_onnx_backend_by_default(model_loader: ModelLoader) -> None:
    assert isinstance(model_loader(EmbeddingSettings()), OnnxBackend)


@pytest.fixture
def served_proxy(tmp_path: Path, redis_url: str, upstream_url: str) -> Iterator[tuple[int, str]]:
    """`llmproxy serve` as its own process on the ONNX backend (pid, URL); stopped by its pid."""
    onnx_dir = prepare_for(EmbeddingSettings()).folder.parent.resolve()  # made here if make install did not
    port = free_port()
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "LLMPROXY_EMBEDDINGS__ONNX_DIR": str(onnx_dir)}
    environment["LLMPROXY_SERVER__LOG_LEVEL"] = "warning"
    command = [sys.executable, "-m", "llmproxy", "serve", "--redis-url", redis_url, "--port", str(port)]
    command += ["--upstream", upstream_url + "/v1"]
    process = subprocess.Popen(command, cwd=tmp_path, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(url + "/healthz", process, timeout_s=90)
        yield process.pid, url
    finally:
        process.terminate()
        process.wait(30)


def test_a_proxy_serving_on_onnx_never_loads_torch(
    served_proxy: tuple[int, str], api_key: str, upstream: FakeUpstream
) -> None:
    pid, url = served_proxy
    with openai_sdk(url, api_key, upstream) as sdk:
        assert [ask(sdk, text)["x-cache"] for text in (QUESTION, PARAPHRASE)] == ["MISS", "HIT-L2"]
    libraries = Path(f"/proc/{pid}/maps").read_text()
    assert "onnxruntime" in libraries
    assert not [name for name in TORCH_LIBRARIES if name in libraries]


def ask(sdk: OpenAI, text: str) -> dict[str, str]:
    raw = sdk.chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": text}]
    )
    return dict(raw.headers)
