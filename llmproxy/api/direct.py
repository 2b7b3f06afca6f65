"""The cached routes served straight from the ASGI scope, ahead of Starlette's router and middleware.

An L1 hit is one Redis GET and a write; Starlette's layers around it (the error and exception middleware, route
matching, the send wrappers each adds) cost about a seventh of its CPU (py-spy under wrk). The cached endpoints
answer every error of theirs in their protocol's shape already, so on these routes those layers add nothing.
Anything else (another method or path, the lifespan) goes to the app unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    """An ASGI app: POSTs to the given paths answered by their endpoints, everything else by `app`."""

    def __init__(self, app: ASGIApp, endpoints: Mapping[str, Endpoint]) -> None:
        self.app = app
        self._endpoints = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._endpoints.get(scope["path"])
            if endpoint is not None:
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
