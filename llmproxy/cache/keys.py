"""Canonical form of a request and its L1 (exact) cache key.

Everything in the body takes part in the key except the fields that cannot change the answer
(how it is delivered, who asked, billing and storage hints). Unknown fields are kept: an unknown
parameter may change the answer, and a needless miss is cheaper than a wrong hit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.wire import EndpointKind

# Delivery, attribution and storage hints; none of them changes what the model answers.
NON_ANSWER_FIELDS = frozenset(
    {"stream", "stream_options", "user", "safety_identifier", "metadata", "store", "service_tier", "prompt_cache_key"}
)


def canonical_body(body: JsonObject) -> JsonObject:
    """The answer-changing part of a request body, with numbers in one normal form."""
    return {key: _normal_numbers(value) for key, value in body.items() if key not in NON_ANSWER_FIELDS}


def request_key(kind: EndpointKind, scope: str, body: JsonObject) -> str:
    """SHA-256 hex of (endpoint kind, scope, canonical body): the L1 key."""
    document = {"kind": kind, "scope": scope, "body": canonical_body(body)}
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


# The integers orjson can encode. A larger integral float (1e20, or an integer literal past 2^64 that orjson
# decoded as a float) stays a float: as an int it could not be encoded into the key.
_ENCODABLE_INTS = range(-(2**63), 2**64)


def _normal_numbers(value: Any) -> Any:
    # JSON does not tell 1 from 1.0, so neither may the key ("temperature": 1 vs 1.0).
    if isinstance(value, float) and value.is_integer() and int(value) in _ENCODABLE_INTS:
        return int(value)
    if isinstance(value, dict):
        return {key: _normal_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normal_numbers(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class SemanticKey:
    """What the L2 cache compares: the embedded prompt, inside a partition of identical everything-else."""

    prompt: str  # the text that is embedded: the latest user turn, or a completion prompt
    params_hash: str  # every answer-changing field except the model and the prompt/messages
    context_hash: str  # the whole conversation before the latest user turn (system prompt, earlier turns)


def semantic_key(kind: EndpointKind, body: JsonObject) -> SemanticKey | None:
    """The L2 view of a request, or None when only an exact match may answer it.

    Only a plain-text final user turn (chat) or a single string prompt (completions) is compared by
    meaning. A conversation ending in a tool result or an assistant turn, images or audio in the
    prompt, and batched prompts are exact-match only: their meaning is not in the text alone.
    """
    if kind == "embedding":
        return None
    canonical = canonical_body(body)
    canonical.pop("model", None)
    if kind == "chat":
        split = _split_chat(canonical.pop("messages", None))
        if split is None:
            return None
        prompt, context = split
    else:
        prompt, context = canonical.pop("prompt", None), []
        if not isinstance(prompt, str):
            return None
    if not prompt.strip():
        return None
    return SemanticKey(prompt=prompt, params_hash=_digest(canonical), context_hash=_digest(context))


def _split_chat(messages: Any) -> tuple[str, list[Any]] | None:
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    text = _plain_text(last.get("content"))
    if text is None:
        return None
    # Fields of the final turn besides its text (e.g. `name`) belong to the context.
    rest_of_turn = {key: value for key, value in last.items() if key != "content"}
    return text, [*messages[:-1], rest_of_turn]


def _plain_text(content: Any) -> str | None:
    """The text of a message, or None when it carries anything but text parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") == "text"]
    strings = [text for text in texts if isinstance(text, str)]
    return "\n".join(strings) if len(strings) == len(content) else None


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
