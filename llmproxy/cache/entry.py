"""A cached answer as stored in Redis, and its (de)serialisation.

The stored response is always the complete non-streaming body; streams are assembled before they
are stored and replayed as SSE on the way out, so one entry serves both formats.

The small fields come first and the response last, so invalidation can read what its filters need (kind, model,
creation time, origin) from the first bytes of a value (GETRANGE) without fetching whole answers.

Every L1 hit decodes an entry, so this is plain code over orjson (no model validation library): the response's
bytes are kept beside its decoded form, and a JSON hit sends them unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.registry import PROTOCOL_NAMES

logger = logging.getLogger(__name__)

ENTRY_VERSION = 1
HEADER_BYTES = 1024  # enough for the fields before the response unless a model name is very long
_RESPONSE_FIELD = b',"response":'


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A complete answer and the facts stored with it.

    `encoded_response` is the response's JSON as it stands in Redis (or will): a JSON hit sends those bytes as
    they are, and a copy (promotion) writes them again, so a stored answer is encoded once in its life. None for
    an entry made in this process that was not encoded yet.
    """

    kind: str
    model: str
    created_at: float
    response: JsonObject
    # The L1 key of the answer this entry copies (an L2 hit promoted into L1), so invalidation by prompt finds
    # the copy even when its catalog document was evicted. None for an original.
    origin: str | None = None
    encoded_response: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EntryHeader:
    """The fields of a stored entry before its response."""

    kind: str
    model: str
    created_at: float
    origin: str | None


def encode_entry(entry: CacheEntry) -> bytes:
    """Compact JSON bytes for Redis: the header fields, then the response last."""
    header = {
        "version": ENTRY_VERSION,
        "kind": entry.kind,
        "model": entry.model,
        "created_at": entry.created_at,
        "origin": entry.origin,
    }
    response = entry.encoded_response if entry.encoded_response is not None else orjson.dumps(entry.response)
    return orjson.dumps(header)[:-1] + _RESPONSE_FIELD + response + b"}"


def decode_entry(raw: bytes | str) -> CacheEntry | None:
    """The entry, or None when the stored bytes are not a current, valid entry (logged when unreadable).

    What is stored in Redis is outside our control, so every field is checked; the response is decoded (for usage,
    replays and the admin API) but kept as bytes too, for JSON hits.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    end = data.find(_RESPONSE_FIELD)
    fields = _header_fields(data[:end]) if end >= 0 and data.endswith(b"}") else None
    encoded = data[end + len(_RESPONSE_FIELD) : -1]
    response = _json_object(encoded) if fields is not None else None
    if fields is None or response is None:
        logger.warning("ignoring an unreadable cache entry")
        return None
    header = _header(fields)
    if header is None:
        return None  # another version: not an error, a cache written by another release
    return CacheEntry(header.kind, header.model, header.created_at, response, header.origin, encoded)


def decode_header(head: bytes) -> EntryHeader | None:
    """The header of an entry from the first bytes of its stored value; None when they are cut short or unreadable.

    In orjson's output every quote inside a string is escaped, so the first `,"response":` ends the header.
    """
    end = head.find(_RESPONSE_FIELD)
    fields = _header_fields(head[:end]) if end >= 0 else None
    return None if fields is None else _header(fields)


def entry_header(entry: CacheEntry) -> EntryHeader:
    """The entry's fields other than its response."""
    return EntryHeader(entry.kind, entry.model, entry.created_at, entry.origin)


def _header_fields(head: bytes) -> dict[str, Any] | None:
    """The fields before the response, checked for type; None when they are unreadable."""
    fields = _json_object(head + b"}")
    if fields is None:
        return None
    version, kind, model = fields.get("version"), fields.get("kind"), fields.get("model")
    created_at, origin = fields.get("created_at"), fields.get("origin")
    valid = (
        _is_number(version)
        and isinstance(kind, str)
        and kind in PROTOCOL_NAMES
        and isinstance(model, str)
        and _is_number(created_at)
        and (origin is None or isinstance(origin, str))
    )
    return fields if valid else None


def _header(fields: dict[str, Any]) -> EntryHeader | None:
    """The header of checked fields, or None when they belong to another version of the entry format."""
    if fields["version"] != ENTRY_VERSION:
        return None
    return EntryHeader(fields["kind"], fields["model"], float(fields["created_at"]), fields.get("origin"))


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
