"""Canonical form of a request and its L1 (exact) cache key.

Everything in the body takes part in the key except the fields that cannot change the answer
(how it is delivered, who asked, billing and storage hints). Unknown fields are kept: an unknown
parameter may change the answer, and a needless miss is cheaper than a wrong hit.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from llmproxy.wire import EndpointKind, JsonObject

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


def _normal_numbers(value: Any) -> Any:
    # JSON does not tell 1 from 1.0, so neither may the key ("temperature": 1 vs 1.0).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _normal_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normal_numbers(item) for item in value]
    return value
