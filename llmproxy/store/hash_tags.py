"""Redis Cluster hash tags: the one rule for keys that must share a slot.

A cluster hashes only the part of a key inside its first `{...}`, when there is one, to pick the key's slot: keys
with the same tag live on the same shard, so a MULTI, a Lua script or TS.CREATERULE may use them together. The
cache tags every key of one answer with the answer's request hash (cache/keys.py) and every history series with its
own name (telemetry/series.py). On a standalone Redis nothing is tagged: key names stay what they always were.
"""

from __future__ import annotations


def hash_tag(value: str) -> str:
    """The value as a hash tag: `{value}` (it must hold no braces)."""
    return "{" + value + "}"


def without_tag(value: str) -> str:
    """The value of a tag `{value}`; any other text unchanged."""
    if value.startswith("{") and value.endswith("}"):
        return value[1:-1]
    return value
