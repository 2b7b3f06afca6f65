"""Embeddings of the fake: a deterministic unit vector per input, derived from sha256 of its text."""

import base64
import hashlib
import math
import struct

from llmproxy.fake_upstream.bodies import Body, model_of, optional_int
from llmproxy.fake_upstream.errors import RequestRejected
from llmproxy.fake_upstream.prompts import count_words, input_texts
from llmproxy.fake_upstream.replies import Json

MAX_DIMENSIONS = 8192


def unit_vector(text: str, dimensions: int) -> tuple[float, ...]:
    """A unit vector of float32 values, the same for the same text."""
    blocks = (hashlib.sha256(f"{block}:{text}".encode()).digest() for block in range(-(-dimensions // 8)))
    words = struct.unpack(f"<{dimensions}I", b"".join(blocks)[: dimensions * 4])
    values = [word / 2**31 - 1.0 for word in words]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    # Round through float32, so the JSON floats equal the decoded base64 ones exactly.
    return struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(value / norm for value in values)))


def encode_base64(vector: tuple[float, ...]) -> str:
    """The vector as base64 of little-endian float32 bytes, as OpenAI sends it."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embeddings_json(body: Body, default_dimensions: int) -> Json:
    """The embeddings `list` body for a request.

    Raises:
        RequestRejected: the body lacks a model or usable input, or has invalid dimensions/encoding.
    """
    model = model_of(body)
    texts = input_texts(body.get("input"))
    if texts is None:
        raise RequestRejected(400, "input must be a string, strings, or token arrays", param="input")
    dimensions = optional_int(body, "dimensions", minimum=1) or default_dimensions
    if dimensions > MAX_DIMENSIONS:
        raise RequestRejected(400, f"dimensions must be at most {MAX_DIMENSIONS}", param="dimensions")
    as_base64 = _wants_base64(body)
    data = [_embedding_json(index, unit_vector(text, dimensions), as_base64) for index, text in enumerate(texts)]
    tokens = sum(map(count_words, texts))
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _embedding_json(index: int, vector: tuple[float, ...], as_base64: bool) -> Json:
    return {"object": "embedding", "index": index, "embedding": encode_base64(vector) if as_base64 else list(vector)}


def _wants_base64(body: Body) -> bool:
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise RequestRejected(400, "encoding_format must be 'float' or 'base64'", param="encoding_format")
    return encoding == "base64"
