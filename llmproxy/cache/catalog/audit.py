"""The audit log of admin changes: a capped Redis Stream of who deleted what, when, and how much."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from llmproxy.store.errors import CacheUnavailableError, redis_call
from llmproxy.store.search_results import as_text

logger = logging.getLogger(__name__)

MAX_EVENTS = 10_000  # approximate cap (XADD MAXLEN ~): old events are trimmed, the stream never grows unbounded
FilterValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One admin change (dry runs included): who asked, from where, what, and how many entries it touched."""

    who: str
    client: str
    action: str  # invalidate, flush or delete
    filters: Mapping[str, FilterValue]
    matched: int
    deleted: int
    dry_run: bool


class AuditRecord(BaseModel):
    """An event as read back from the stream, with its stream id and time (validated: it comes from Redis)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    at: str
    who: str
    client: str
    action: str
    filters: dict[str, FilterValue]
    matched: int
    deleted: int
    dry_run: bool


class AuditLog:
    """Appends events to `{prefix}:audit` and reads the latest back."""

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._key = f"{key_prefix}:audit"

    async def record(self, event: AuditEvent, at: datetime | None = None) -> None:
        """Append one event, stamped with the time (UTC, ISO 8601).

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        fields: dict[FieldT, EncodableT] = {
            "at": (at or datetime.now(UTC)).isoformat(timespec="milliseconds"),
            "who": event.who,
            "client": event.client,
            "action": event.action,
            "filters": orjson.dumps(dict(event.filters)),
            "matched": event.matched,
            "deleted": event.deleted,
            "dry_run": int(event.dry_run),
        }
        try:
            with redis_call("audit log write"):
                await self._redis.xadd(self._key, fields, maxlen=MAX_EVENTS, approximate=True)
        except CacheUnavailableError:
            logger.error("audit event not recorded: %s", event)  # the lost event itself, for the operator
            raise

    async def latest(self, limit: int) -> list[AuditRecord]:
        """Up to limit events, newest first; unreadable ones are skipped.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("audit log read"):
            entries = await self._redis.xrevrange(self._key, count=limit)
        records = [_record(as_text(stream_id), fields or {}) for stream_id, fields in entries or []]
        return [record for record in records if record is not None]


def _record(stream_id: str, fields: Mapping[bytes | str, bytes | str]) -> AuditRecord | None:
    values = {as_text(name): as_text(value) for name, value in fields.items()}
    try:
        return AuditRecord.model_validate(
            {**values, "id": stream_id, "filters": orjson.loads(values.get("filters", "{}"))}
        )
    except (ValidationError, orjson.JSONDecodeError):
        logger.warning("skipping an unreadable audit event %s", stream_id)
        return None
