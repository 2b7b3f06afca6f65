"""POST /admin/invalidate and POST /admin/flush: delete cached answers by condition, by prompt, or all.

Both answer `{"dry_run", "matched", "deleted", "filters", "audited"}` and record the change (dry runs too) in the audit
log; `audited` is false when Redis refused the audit write (the change is done all the same).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.admin.audit import Change, record_change
from llmproxy.api.admin.auth import admin_endpoint, json_response
from llmproxy.api.admin.payloads import actor, flush_body, invalidate_body
from llmproxy.api.body import read_body
from llmproxy.cache.catalog.invalidation import InvalidationRejected
from llmproxy.errors import InvalidRequestError
from llmproxy.state import AppState

MAX_ADMIN_BODY_BYTES = 64 * 1024


@admin_endpoint
async def invalidate(request: Request, state: AppState) -> Response:
    """Delete (or, with dry_run, count) the entries matching every condition given.

    Raises:
        InvalidRequestError: a bad body, no condition, or a prompt while the semantic cache is off.
    """
    who = actor(request)  # a bad X-LLMProxy-Actor is refused before anything is deleted
    body = invalidate_body(await read_body(request, MAX_ADMIN_BODY_BYTES, state.settings.server.body_read_timeout_s))
    entry_filter = body.entry_filter(state.clock())
    filters = body.described()
    try:
        if body.prompt is None:
            outcome = await state.admin.invalidator.by_filter(entry_filter, body.dry_run)
        else:
            distance = state.settings.semantic.threshold if body.distance is None else body.distance
            filters["distance"] = distance
            outcome = await state.admin.invalidator.by_prompt(body.prompt, distance, entry_filter, body.dry_run)
    except InvalidationRejected as exc:
        raise InvalidRequestError(str(exc), param="prompt") from exc
    return await _answer(request, state, Change(who, "invalidate", filters, outcome, body.dry_run))


@admin_endpoint
async def flush(request: Request, state: AppState) -> Response:
    """Delete (or count) every cached answer, with its L2 and catalog documents; history and audit stay.

    Raises:
        InvalidRequestError: the body lacks {"confirm": "flush-all"}.
    """
    who = actor(request)
    body = flush_body(await read_body(request, MAX_ADMIN_BODY_BYTES, state.settings.server.body_read_timeout_s))
    outcome = await state.admin.invalidator.flush(body.dry_run)
    return await _answer(request, state, Change(who, "flush", {}, outcome, body.dry_run))


async def _answer(request: Request, state: AppState, change: Change) -> Response:
    audited = await record_change(request, state, change)
    outcome = change.outcome
    body = {
        "dry_run": change.dry_run,
        "matched": outcome.matched,
        "deleted": outcome.deleted,
        "filters": dict(change.filters),
        "audited": audited,
    }
    return json_response(body)
