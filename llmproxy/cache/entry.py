"""A cached answer as stored in Redis, and its (de)serialisation.

The stored response is always the complete non-streaming body; streams are assembled before they
are stored and replayed as SSE on the way out, so one entry serves both formats.

The small fields come first and the response last, so invalidation can read what its filters need (kind, model,
creation time, origin) from the first bytes of a value (GETRANGE) without fetching whole answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.registry import ProtocolName

logger = logging.getLogger(__name__)

ENTRY_VERSION = 1
HEADER_BYTES = 1024  # enough for the fields before the response unless a model name is very long
_RESPONSE_FIELD = b',"response":'


class CacheEntry(BaseModel):
    """Validated on the way back from Redis: what is stored there is outside our control."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = ENTRY_VERSION
    kind: ProtocolName
    model: str
    created_at: float
    # The L1 key of the answer this entry copies (an L2 hit promoted into L1), so invalidation by prompt finds
    # the copy even when its catalog document was evicted. None for an original. Keep `response` last.
    origin: str | None = None
    response: JsonObject


@dataclass(frozen=True, slots=True)
class EntryHeader:
    """The fields of a stored entry before its response."""

    kind: str
    model: str
    created_at: float
    origin: str | None


def encode_entry(entry: CacheEntry) -> bytes:
    """Compact JSON bytes for Redis."""
    return orjson.dumps(entry.model_dump())


def decode_entry(raw: bytes | str) -> CacheEntry | None:
    """The entry, or None (logged) when the stored bytes are not a current, valid entry."""
    try:
        entry = CacheEntry.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError):
        logger.warning("ignoring an unreadable cache entry")
        return None
    return entry if entry.version == ENTRY_VERSION else None


def decode_header(head: bytes) -> EntryHeader | None:
    """The header of an entry from the first bytes of its stored value; None when they are cut short or unreadable.

    In orjson's output every quote inside a string is escaped, so the first `,"response":` ends the header.
    """
    end = head.find(_RESPONSE_FIELD)
    if end < 0:
        return None
    try:
        fields = orjson.loads(head[:end] + b"}")
        entry = CacheEntry.model_validate({**fields, "response": {}}) if isinstance(fields, dict) else None
    except (orjson.JSONDecodeError, ValidationError):
        return None
    return None if entry is None or entry.version != ENTRY_VERSION else entry_header(entry)


def entry_header(entry: CacheEntry) -> EntryHeader:
    """The entry's fields other than its response."""
    return EntryHeader(entry.kind, entry.model, entry.created_at, entry.origin)
