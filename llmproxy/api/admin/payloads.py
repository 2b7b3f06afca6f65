"""Admin request payloads, a trust boundary: query parameters and JSON bodies, validated field by field.

Every model forbids unknown fields, so a typo ("namespce") is a 400 rather than a filter silently left out,
and every 400 names the field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request

from llmproxy.cache.catalog.audit import FilterValue
from llmproxy.cache.catalog.query import EntryFilter, search_terms
from llmproxy.errors import InvalidRequestError
from llmproxy.protocols.json_body import decode_json_object
from llmproxy.protocols.registry import ProtocolName
from llmproxy.proxy.headers import ACTOR_HEADER
from llmproxy.proxy.scope import NAMESPACE_PATTERN, TENANT_PATTERN
from llmproxy.telemetry.duration import FORMS, parse_duration

DEFAULT_ACTOR = "admin"
MAX_ACTOR_CHARS = 64
_ENTRY_ID = re.compile(r"^[0-9a-f]{64}$")

Model = TypeVar("Model", bound=BaseModel)


def _seconds(value: object) -> float:
    if not isinstance(value, str | int | float):
        raise ValueError(f"must be {FORMS}")
    return parse_duration(value)


Seconds = Annotated[float, BeforeValidator(_seconds)]


class EntryFilters(BaseModel):
    """Which entries: conditions combined with AND."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: str | None = Field(None, pattern=rf"^({TENANT_PATTERN})(/{NAMESPACE_PATTERN})?$")
    tenant: str | None = Field(None, pattern=rf"^({TENANT_PATTERN})$")
    namespace: str | None = Field(None, pattern=rf"^{NAMESPACE_PATTERN}$")
    model: str | None = Field(None, min_length=1, max_length=256)
    kind: ProtocolName | None = None
    older_than: Seconds | None = None

    def entry_filter(self, now: float, text: str | None = None) -> EntryFilter:
        """The cache-level filter, with older_than resolved against now."""
        before = None if self.older_than is None else now - self.older_than
        return EntryFilter(self.scope, self.tenant, self.namespace, self.model, self.kind, before, text)

    def described(self) -> dict[str, FilterValue]:
        """The conditions given, as echoed in responses and recorded in the audit log."""
        return {name: value for name, value in self.model_dump(exclude={"dry_run"}).items() if value is not None}


class ListQuery(EntryFilters):
    """GET /admin/entries: filters, a text search in the prompt, and paging (query strings, so not strict)."""

    q: str | None = Field(None, min_length=1, max_length=500)
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10_000)

    @field_validator("q")
    @classmethod
    def _has_words(cls, value: str | None) -> str | None:
        if value is not None and not search_terms(value):
            raise ValueError("needs at least one word (letters or digits) to search for")
        return value


class InvalidateBody(EntryFilters):
    """POST /admin/invalidate: filters and/or a prompt (semantic), and whether to only count."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    prompt: str | None = Field(None, min_length=1, max_length=4_000)
    distance: float | None = Field(None, ge=0, le=2)  # cosine distance; the semantic threshold when unset
    dry_run: bool = False


class FlushBody(BaseModel):
    """POST /admin/flush: deleting everything needs an explicit confirmation."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    confirm: Literal["flush-all"]
    dry_run: bool = False


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(50, ge=1, le=1_000)


def validated(model: type[Model], data: Mapping[str, Any]) -> Model:
    """data as a model.

    Raises:
        InvalidRequestError: a field is unknown, missing or invalid (the first problem, naming the field).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        if error["type"] == "extra_forbidden":
            message = f"Unknown field {field!r}."
        else:
            message = f"Invalid {field or 'request'}: {error['msg'].removeprefix('Value error, ')}."
        raise InvalidRequestError(message, param=field, code="invalid_admin_request") from exc


def invalidate_body(raw: bytes) -> InvalidateBody:
    """The parsed body of POST /admin/invalidate.

    Raises:
        InvalidRequestError: not a JSON object, a bad field, no condition at all, or a distance without a prompt.
    """
    body = validated(InvalidateBody, decode_json_object(raw))
    if body.distance is not None and body.prompt is None:
        raise InvalidRequestError("distance applies to an invalidation by prompt: give prompt too.", param="distance")
    if body.prompt is None and body.entry_filter(0.0).is_empty():
        raise InvalidRequestError(
            "Give at least one condition (scope, tenant, namespace, model, kind, older_than, prompt); "
            "to delete everything, use POST /admin/flush.",
            code="invalid_admin_request",
        )
    return body


def flush_body(raw: bytes) -> FlushBody:
    """The parsed body of POST /admin/flush.

    Raises:
        InvalidRequestError: not a JSON object, or without {"confirm": "flush-all"}.
    """
    data = decode_json_object(raw)
    if data.get("confirm") != "flush-all":
        raise InvalidRequestError(
            'Flushing deletes every cached answer: send {"confirm": "flush-all"} to confirm.', param="confirm"
        )
    return validated(FlushBody, data)


def entry_id_param(request: Request) -> str:
    """The {id} path parameter: an entry's request hash.

    Raises:
        InvalidRequestError: not 64 hexadecimal digits.
    """
    value = str(request.path_params["id"]).lower()
    if not _ENTRY_ID.match(value):
        raise InvalidRequestError("An entry id is 64 hexadecimal digits (its request hash).", param="id")
    return value


def actor(request: Request) -> str:
    """Who is asking, for the audit log: the X-LLMProxy-Actor header, else "admin".

    Raises:
        InvalidRequestError: the header is empty, too long or holds unprintable characters.
    """
    value = request.headers.get(ACTOR_HEADER)
    if value is None:
        return DEFAULT_ACTOR
    if not value.strip() or len(value) > MAX_ACTOR_CHARS or not value.isprintable():
        raise InvalidRequestError(
            f"X-LLMProxy-Actor must be 1-{MAX_ACTOR_CHARS} printable characters.", param="X-LLMProxy-Actor"
        )
    return value.strip()
