"""GET /admin/routes (the routes in force and their traffic) and POST /admin/routes/reload (read the file again)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.admin.auth import admin_endpoint, json_response
from llmproxy.errors import InvalidRequestError, NotFoundError
from llmproxy.routing import BlockAction, ForwardAction, RespondAction, Route, RoutesError
from llmproxy.state import AppState
from llmproxy.telemetry.prometheus import MetricSample, ProxyMetrics

HIT_RESULTS = frozenset({"hit_l1", "hit_l2"})


async def _reload(request: Request, state: AppState) -> Response:
    """Reload the routes file and name the routes now in force.

    Raises:
        NotFoundError: no router is configured.
        InvalidRequestError: the routes file is invalid (the previous routes stay in force).
    """
    path = state.settings.router.routes_file
    if state.router is None or path is None:
        raise NotFoundError("No semantic router is configured (router.routes_file, semantic.enabled).")
    try:
        table = await state.router.reload(path, state.settings.upstream_names())
    except RoutesError as exc:
        raise InvalidRequestError(
            f"Routes not reloaded; the previous routes stay in force. {exc}", code="invalid_routes"
        ) from exc
    return json_response({"reloaded": True, "routes": [route.name for route in table.routes]})


reload_routes = admin_endpoint(_reload)


@admin_endpoint
async def list_routes(request: Request, state: AppState) -> Response:
    """The routes in force, in file order, with their requests and hits since the proxy started.

    `other` holds the traffic of route labels outside the table: `default` (no route matched), `undecided`, `none`
    (L1 hits, which are served before routing, and requests refused before it) and routes removed by a reload.
    """
    path = state.settings.router.routes_file
    traffic = route_traffic(state.telemetry.metrics)
    if state.router is None or path is None:
        return json_response({"configured": False, "routes_file": None, "routes": [], "other": []})
    routes = state.router.table.routes
    named = {route.name for route in routes}
    return json_response(
        {
            "configured": True,
            "routes_file": str(path),
            "routes": [{**describe(route), **traffic.get(route.name, _NO_TRAFFIC)} for route in routes],
            "other": [{"name": name, **counts} for name, counts in sorted(traffic.items()) if name not in named],
        }
    )


_NO_TRAFFIC = {"requests": 0, "hits": 0}


def route_traffic(metrics: ProxyMetrics) -> dict[str, dict[str, int]]:
    """Requests and cache hits per route label, from llmproxy_requests_total (every endpoint and model)."""
    traffic: dict[str, dict[str, int]] = {}
    samples: list[MetricSample] = metrics.samples("llmproxy_requests_total")
    for sample in samples:
        counts = traffic.setdefault(sample.labels.get("route", ""), {"requests": 0, "hits": 0})
        counts["requests"] += int(sample.value)
        if sample.labels.get("result") in HIT_RESULTS:
            counts["hits"] += int(sample.value)
    return traffic


def describe(route: Route) -> dict[str, Any]:
    """A route as the admin API shows it: its action with the action's fields, threshold and cache policy."""
    described: dict[str, Any] = {
        "name": route.name,
        "distance_threshold": route.distance_threshold,
        "references": len(route.references),
        "cache": {"no_cache": route.cache.no_cache, "ttl_s": route.cache.ttl_s},
    }
    action = route.action
    if isinstance(action, ForwardAction):
        described.update(action="forward", upstream=action.upstream, model=action.model)
    elif isinstance(action, RespondAction):
        described.update(action="respond", content=action.content)
    elif isinstance(action, BlockAction):
        described.update(action="block", status=action.status, message=action.message)
    return described
