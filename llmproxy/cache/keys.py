"""The cache keys of a request (pure): the L1 key, and the L2 prompt and partition hashes.

Which fields and headers can change the answer, and what L2 compares, is each protocol's to say (protocols/);
here they are put in one normal form and hashed. The protocol's name is part of every L1 key, so protocols
never share answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import WireProtocol
from llmproxy.store.hash_tags import hash_tag

# The integers orjson can encode. A larger integral float (1e20, or an integer literal past 2^64 that orjson
# decoded as a float) stays a float: as an int it could not be encoded into the key.
_ENCODABLE_INTS = range(-(2**63), 2**64)


def canonical(value: Any) -> Any:
    """The value with numbers in one normal form: JSON does not tell 1 from 1.0, so neither may a key."""
    if isinstance(value, float) and value.is_integer() and int(value) in _ENCODABLE_INTS:
        return int(value)
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def key_part(request_hash: str, hash_tags: bool) -> str:
    """The request hash as the last part of its answer's keys (L1 entry, L2 record, catalog record, lease).

    On a cluster (`hash_tags`) it is a hash tag, so the keys of one answer share a slot: the write-back's MULTI and
    the single-flight lease stay on one shard, while answers spread evenly over all of them. On a standalone Redis
    the keys keep their untagged names, so entries written before an upgrade keep hitting.
    """
    return hash_tag(request_hash) if hash_tags else request_hash


def request_key(protocol: WireProtocol, scope: str, body: JsonObject, headers: Sequence[tuple[str, str]] = ()) -> str:
    """SHA-256 hex of (protocol, scope, answer-changing fields, answer-changing headers): the L1 key."""
    document: JsonObject = {"kind": protocol.name, "scope": scope, "body": canonical(protocol.key_fields(body))}
    if headers:  # only protocols with key headers have the field, so the other keys stay what they were
        document["headers"] = [list(header) for header in headers]
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class SemanticKey:
    """What the L2 cache compares: the embedded prompt, inside a partition of identical everything-else."""

    prompt: str  # the text that is embedded: the latest user turn, or a completion prompt
    params_hash: str  # every answer-changing field except the model and the conversation (and the key headers)
    context_hash: str  # the whole conversation before the latest user turn (system prompt, earlier turns)


def semantic_key(
    protocol: WireProtocol, body: JsonObject, headers: Sequence[tuple[str, str]] = ()
) -> SemanticKey | None:
    """The L2 view of a request, or None when only an exact match may answer it (no view, or a blank prompt)."""
    view = protocol.semantic_view(body)
    if view is None or not view.prompt.strip():
        return None
    params: Any = canonical(view.params)
    if headers:
        params = {"params": params, "headers": [list(header) for header in headers]}
    return SemanticKey(prompt=view.prompt, params_hash=_digest(params), context_hash=_digest(canonical(view.context)))


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
