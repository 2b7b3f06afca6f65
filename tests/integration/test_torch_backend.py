"""The torch backend (the fallback), and the ONNX backend's equivalence to it: same vectors, same window.

The rest of the suite runs on the ONNX backend; this module is where torch is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import pytest

from llmproxy.embeddings.embedder import Embedder, EncoderBackend, ModelLoader
from llmproxy.embeddings.onnx_backend import OnnxBackend
from llmproxy.embeddings.torch_backend import TorchBackend
from llmproxy.settings import EmbeddingSettings
from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream

MAX_COSINE_DISTANCE = 1e-5
QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"
SHORT = [
    QUESTION,
    "hi",
    "",
    "   leading and trailing spaces   ",
    "What's 2 + 2? And 17 * 23?",
    "UPPER case and MiXeD CaSe",
]
UNICODE = [
    "Naïve café owners in Zürich paid €12.50 for 3 croissants.",
    "東京の天気はどうですか？",
    "Как перевернуть список в Python?",
    "emoji 🙂🚀 and combining accents: e\u0301",
    "tab\tand\nnewline",
]


@pytest.fixture(scope="module")
def torch_backend(model_loader: ModelLoader) -> EncoderBackend:
    backend = model_loader(EmbeddingSettings(backend="torch"))
    assert isinstance(backend, TorchBackend)
    return backend


@pytest.fixture(scope="module")
def onnx_backend(model_loader: ModelLoader) -> EncoderBackend:
    backend = model_loader(EmbeddingSettings(backend="onnx"))
    assert isinstance(backend, OnnxBackend)
    return backend


def text_of_tokens(backend: EncoderBackend, tokens: int) -> str:
    """A prompt of exactly that many tokens (special tokens not counted)."""
    text = " ".join(["reverse", "the", "list", "please"] * (tokens // 4 + 1)).split()
    prompt = " ".join(text[:tokens])
    assert backend.count_tokens(prompt) == tokens
    return prompt


def near_window(backend: EncoderBackend) -> list[str]:
    limit = backend.window_tokens - 2
    return [text_of_tokens(backend, count) for count in (limit - 1, limit, limit + 1, limit + 40)]


def worst_distance(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.max(1 - np.sum(first.astype(np.float64) * second.astype(np.float64), axis=1)))


def test_both_backends_describe_the_same_model(torch_backend: EncoderBackend, onnx_backend: EncoderBackend) -> None:
    assert (onnx_backend.dimension, onnx_backend.window_tokens) == (torch_backend.dimension, 256)
    assert torch_backend.dimension == 384


@pytest.mark.parametrize("prompts", ["short", "unicode", "near-window"])
def test_onnx_vectors_match_torch_one_prompt_at_a_time(
    torch_backend: EncoderBackend, onnx_backend: EncoderBackend, prompts: str
) -> None:
    texts = {"short": SHORT, "unicode": UNICODE, "near-window": near_window(torch_backend)}[prompts]
    for text in texts:
        onnx, torch = onnx_backend.encode([text]), torch_backend.encode([text])
        assert onnx.dtype == np.float32 and onnx.shape == torch.shape == (1, 384)
        assert worst_distance(onnx, torch) < MAX_COSINE_DISTANCE, text[:40]
        assert abs(float(np.linalg.norm(onnx)) - 1) < 1e-5


def test_onnx_vectors_match_torch_in_a_batch_of_mixed_lengths(
    torch_backend: EncoderBackend, onnx_backend: EncoderBackend
) -> None:
    batch = [*SHORT, *near_window(torch_backend), *UNICODE]
    onnx, torch = onnx_backend.encode(batch), torch_backend.encode(batch)
    assert worst_distance(onnx, torch) < MAX_COSINE_DISTANCE
    # Padding to the batch's longest prompt changes nothing: each row equals the prompt embedded alone.
    alone = np.vstack([onnx_backend.encode([text]) for text in batch])
    assert worst_distance(onnx, alone) < MAX_COSINE_DISTANCE


def test_fits_window_token_counts_and_spans_agree(torch_backend: EncoderBackend, onnx_backend: EncoderBackend) -> None:
    on_torch, on_onnx = Embedder(torch_backend, 32, 0), Embedder(onnx_backend, 32, 0)
    texts = [*SHORT, *UNICODE, *near_window(torch_backend), "x" * 5000, "日本語" * 200]
    assert [on_onnx.fits_window(text) for text in texts] == [on_torch.fits_window(text) for text in texts]
    assert [onnx_backend.count_tokens(text) for text in texts] == [torch_backend.count_tokens(text) for text in texts]
    assert [onnx_backend.token_spans(text) for text in texts] == [torch_backend.token_spans(text) for text in texts]
    limit = torch_backend.window_tokens - 2
    at_limit, beyond = text_of_tokens(torch_backend, limit), text_of_tokens(torch_backend, limit + 1)
    assert [on_onnx.fits_window(at_limit), on_onnx.fits_window(beyond)] == [True, False]
    assert on_onnx.encode([beyond, at_limit])[0] is None


def test_proxy_on_the_torch_backend_serves_a_paraphrase_from_l2(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(embeddings={"backend": "torch"}) as url, openai_sdk(url, api_key, upstream) as sdk:
        statuses = []
        for text in (QUESTION, PARAPHRASE):
            raw = sdk.chat.completions.with_raw_response.create(
                model="fake-model", messages=[{"role": "user", "content": text}]
            )
            statuses.append(raw.headers["x-cache"])
    assert statuses == ["MISS", "HIT-L2"]
    assert upstream.calls() == 1
