"""/admin/entries: list and search cached answers, inspect one, delete one (with its promoted copies)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.admin.audit import Change, record_change
from llmproxy.api.admin.auth import admin_endpoint, json_response
from llmproxy.api.admin.payloads import ListQuery, actor, entry_id_param, validated
from llmproxy.cache.catalog.entry_view import EntryView
from llmproxy.cache.catalog.index import entry_id
from llmproxy.cache.catalog.query import filter_expression
from llmproxy.errors import NotFoundError
from llmproxy.state import AppState


@admin_endpoint
async def list_entries(request: Request, state: AppState) -> Response:
    """GET /admin/entries: matching entries, newest first, and how many match in all.

    Raises:
        InvalidRequestError: an unknown or invalid query parameter.
    """
    query = validated(ListQuery, dict(request.query_params))
    where = filter_expression(query.entry_filter(state.clock(), text=query.q))
    page = await state.admin.catalog.search(where, query.limit, query.offset)
    views = await state.admin.entries.views(page.items)
    return json_response({"total": page.total, "entries": [summary(view) for view in views]})


@admin_endpoint
async def show_entry(request: Request, state: AppState) -> Response:
    """GET /admin/entries/{id}: the entry's summary and its cached response.

    Raises:
        InvalidRequestError: the id is not a request hash.
        NotFoundError: no such entry (or it expired).
    """
    wanted = entry_id_param(request)
    item = await state.admin.catalog.get(wanted)
    view = None if item is None else await state.admin.entries.full(item)
    if view is None:
        raise _not_found(wanted)
    return json_response({**summary(view), "response": view.response})


@admin_endpoint
async def delete_entry(request: Request, state: AppState) -> Response:
    """DELETE /admin/entries/{id}: the entry, its L2 document, and the copies promoted from it (audited).

    Raises:
        InvalidRequestError: the id is not a request hash.
        NotFoundError: no such entry.
    """
    wanted, who = entry_id_param(request), actor(request)
    outcome = await state.admin.invalidator.delete_entry(wanted)
    if outcome is None:
        raise _not_found(wanted)
    audited = await record_change(request, state, Change(who, "delete", {"id": wanted}, outcome, dry_run=False))
    return json_response({"deleted": outcome.deleted, "audited": audited})


def summary(view: EntryView) -> dict[str, Any]:
    """An entry as the admin API shows it."""
    item = view.item
    return {
        "id": item.id,
        "scope": item.scope,
        "tenant": item.tenant,
        "namespace": item.namespace_name,
        "model": item.model,
        "kind": item.kind,
        "prompt": item.prompt,
        "created_at": item.created_at,
        "expires_in_s": view.expires_in_s,
        "semantic": view.semantic,
        "promoted_from": None if item.origin == item.entry_key else entry_id(item.origin),
    }


def _not_found(wanted: str) -> NotFoundError:
    return NotFoundError(f"No cached entry {wanted} (it may have expired or been deleted).", param="id")
