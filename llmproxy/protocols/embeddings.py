"""Embeddings (`POST /v1/embeddings`): deterministic answers, cached by exact match only, never streamed.

Embeddings have no `stream` parameter: `stream` and `stream_options` on them are unknown fields of any type,
forwarded for the upstream to judge.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest, RequestHeaders, cut
from llmproxy.protocols.deterministic import Deterministic
from llmproxy.protocols.json_body import StrictBody, validated
from llmproxy.protocols.openai import OpenAIProtocol, shown_texts


class EmbeddingRequest(StrictBody):
    model: str = Field(min_length=1)
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)


class EmbeddingsProtocol(Deterministic, OpenAIProtocol):
    name = "embedding"
    path = "/v1/embeddings"

    def parse(self, raw: bytes, headers: RequestHeaders) -> ParsedRequest:
        body, request = validated(EmbeddingRequest, raw)
        # Embeddings have no `stream` parameter: such a field is an unknown one, forwarded as it came.
        return ParsedRequest(body, request.model, stream=False, key_headers=self.headers_in_key(headers))

    def display_prompt(self, body: JsonObject, limit: int) -> str:
        return cut(shown_texts(body.get("input"), limit), limit)

    def is_complete(self, answer: JsonObject) -> bool:
        data = answer.get("data")
        return "error" not in answer and isinstance(data, list) and bool(data)


EMBEDDINGS = EmbeddingsProtocol()
