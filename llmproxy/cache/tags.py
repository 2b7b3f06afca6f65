"""Tag fields of our RediSearch indexes (L2 and the catalog): one separator and one rule for awkward values."""

from __future__ import annotations

import hashlib

# Tag values are split on the separator at index time. The default "," would turn a model name with a comma
# into two tags; no scope, model or hash contains the ASCII unit separator.
TAG_SEPARATOR = "\x1f"


def tag_field(name: str) -> dict[str, object]:
    """A case-sensitive tag field definition for an IndexSchema."""
    return {"name": name, "type": "tag", "attrs": {"separator": TAG_SEPARATOR, "case_sensitive": True}}


def tag_value(value: str) -> str:
    """The value as stored and matched: itself, or a digest when RediSearch could not match it as given."""
    # RediSearch trims tags and cannot match an empty one; redisvl renders `Tag == ""` as match-all. Such values
    # are stored as a digest instead, so they stay distinct and never widen a filter.
    if value and value == value.strip():
        return value
    return "~" + hashlib.sha256(value.encode()).hexdigest()[:32]
