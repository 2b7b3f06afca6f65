"""The audit side of admin changes: recording who changed what, and GET /admin/audit to read it back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.admin.auth import admin_endpoint, json_response
from llmproxy.api.admin.payloads import AuditQuery, validated
from llmproxy.cache.catalog.audit import AuditEvent, FilterValue
from llmproxy.cache.catalog.invalidation import Invalidation
from llmproxy.state import AppState
from llmproxy.store.errors import CacheUnavailableError


@dataclass(frozen=True, slots=True)
class Change:
    """One admin change (or dry run) as it is audited: by `who` (see admin_payloads.actor), what, and its outcome."""

    who: str
    action: str
    filters: Mapping[str, FilterValue]
    outcome: Invalidation
    dry_run: bool


async def record_change(request: Request, state: AppState, change: Change) -> bool:
    """Append one change to the audit log, with the client's address; False when Redis did not take it.

    The change is done (or was a dry run) by then: failing the request would only make the caller repeat it, so a
    refused audit write (e.g. a full Redis) is logged with the whole event and answered as `"audited": false`.
    """
    client = request.client.host if request.client is not None else "unknown"
    outcome = change.outcome
    event = AuditEvent(
        change.who, client, change.action, change.filters, outcome.matched, outcome.deleted, change.dry_run
    )
    try:
        await state.admin.audit.record(event)
    except CacheUnavailableError:
        return False
    return True


@admin_endpoint
async def audit_log(request: Request, state: AppState) -> Response:
    """GET /admin/audit: the latest changes, newest first.

    Raises:
        InvalidRequestError: an unknown or invalid query parameter.
    """
    query = validated(AuditQuery, dict(request.query_params))
    records = await state.admin.audit.latest(query.limit)
    return json_response({"events": [record.model_dump() for record in records]})
