"""/admin/*: operator endpoints behind a bearer token. No token configured means the admin API is off."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.context import app_state
from llmproxy.errors import (
    AuthenticationError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from llmproxy.proxy.scope import bearer_token
from llmproxy.settings import AdminSettings
from llmproxy.state import AppState
from llmproxy.store.errors import CacheUnavailableError

AdminHandler = Callable[[Request, AppState], Awaitable[Response]]


def require_admin(request: Request, admin: AdminSettings) -> None:
    """Let the request through only with the configured admin token.

    Raises:
        PermissionDeniedError: no admin token is configured (the admin API is disabled, never open).
        AuthenticationError: the bearer token is missing or wrong.
    """
    if admin.token is None or not admin.token.get_secret_value():  # settings refuse an empty one; never open
        raise PermissionDeniedError("The admin API is disabled: set LLMPROXY_ADMIN__TOKEN to enable it.")
    given = bearer_token(request.headers.get("authorization")) or ""
    # Constant-time: the comparison must not reveal how much of a guess was right.
    if not hmac.compare_digest(given.encode(), admin.token.get_secret_value().encode()):
        raise AuthenticationError("A valid admin bearer token is required.")


def admin_endpoint(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    """The handler behind the admin token, with a Redis outage answered as 503 (admin calls never fail open)."""

    async def endpoint(request: Request) -> Response:
        state = app_state(request)
        require_admin(request, state.settings.admin)
        try:
            return await handler(request, state)
        except CacheUnavailableError as exc:
            raise ServiceUnavailableError(f"The cache store is unavailable ({exc}); nothing more was changed.") from exc

    return endpoint


def json_response(body: Any, status_code: int = 200) -> Response:
    """A JSON response."""
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")
