"""POST /admin/routes/reload: read the routes file again; a bad file keeps the routes in force."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.admin.auth import admin_endpoint, json_response
from llmproxy.errors import InvalidRequestError, NotFoundError
from llmproxy.routing import RoutesError
from llmproxy.state import AppState


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
