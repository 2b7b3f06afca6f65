"""Shapes shared by stream assembly and replay: endpoint kinds, object names, envelope keys."""

from __future__ import annotations

from typing import Literal

from llmproxy.jsontypes import JsonObject

StreamKind = Literal["chat", "completion"]

RESPONSE_OBJECT: dict[StreamKind, str] = {"chat": "chat.completion", "completion": "text_completion"}
CHUNK_OBJECT: dict[StreamKind, str] = {"chat": "chat.completion.chunk", "completion": "text_completion"}

# Top-level keys a chunk repeats from the response; the optional ones are copied only when present.
REQUIRED_ENVELOPE_KEYS = ("id", "created", "model")
OPTIONAL_ENVELOPE_KEYS = ("system_fingerprint", "service_tier")


def is_usage_only_chunk(chunk: JsonObject) -> bool:
    """Whether this is the `include_usage` tail chunk: no choices, only usage."""
    return chunk.get("choices") == [] and chunk.get("usage") is not None
