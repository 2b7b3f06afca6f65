"""A cached answer as stored in Redis, and its (de)serialisation.

The stored response is always the complete non-streaming body; streams are assembled before they
are stored and replayed as SSE on the way out, so one entry serves both formats.
"""

from __future__ import annotations

import logging

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from llmproxy.wire import EndpointKind, JsonObject

logger = logging.getLogger(__name__)

ENTRY_VERSION = 1


class CacheEntry(BaseModel):
    """Validated on the way back from Redis: what is stored there is outside our control."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = ENTRY_VERSION
    kind: EndpointKind
    model: str
    created_at: float
    response: JsonObject


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
