"""create_app(settings) -> the ASGI app: routes and exception handlers. No network I/O here (the console's few
static files are read from the package once)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from llmproxy.api.admin.audit import audit_log
from llmproxy.api.admin.config import show_config
from llmproxy.api.admin.console import console_routes, load_assets
from llmproxy.api.admin.entries import delete_entry, list_entries, show_entry
from llmproxy.api.admin.invalidation import flush, invalidate
from llmproxy.api.admin.overview import overview
from llmproxy.api.admin.routes import list_routes, reload_routes
from llmproxy.api.admin.stats import traffic_stats
from llmproxy.api.cacheable import cached_endpoint
from llmproxy.api.direct import DirectRoutes
from llmproxy.api.health import healthz, readyz
from llmproxy.api.metrics import metrics
from llmproxy.api.passthrough import passthrough
from llmproxy.embeddings.embedder import ModelLoader, load_model
from llmproxy.errors import (
    MethodNotAllowedError,
    NotFoundError,
    ProxyError,
    error_response,
    handle_proxy_error,
    handle_unexpected_error,
)
from llmproxy.lifespan import lifespan_for
from llmproxy.protocols.registry import PROTOCOLS
from llmproxy.settings import Settings

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(settings: Settings, *, model_loader: ModelLoader = load_model) -> DirectRoutes:
    """The proxy as an ASGI app; its lifespan opens Redis, the upstream pool and the embedding model.

    The cached routes (one per protocol) are answered ahead of Starlette (`DirectRoutes`); they stay in its routing
    table too, so the Starlette app alone still answers them the same way.
    """
    cached = {protocol.path: cached_endpoint(protocol) for protocol in PROTOCOLS}
    # Every other /v1 path (other methods on the cached ones included) is passed through.
    routes: list[BaseRoute] = [Route(path, endpoint, methods=["POST"]) for path, endpoint in cached.items()]
    routes += [
        Route("/v1/{path:path}", passthrough, methods=ALL_METHODS),
        Route("/admin/routes", list_routes, methods=["GET"]),
        Route("/admin/routes/reload", reload_routes, methods=["POST"]),
        Route("/admin/overview", overview, methods=["GET"]),
        Route("/admin/stats", traffic_stats, methods=["GET"]),
        Route("/admin/entries", list_entries, methods=["GET"]),
        Route("/admin/entries/{id}", show_entry, methods=["GET"]),
        Route("/admin/entries/{id}", delete_entry, methods=["DELETE"]),
        Route("/admin/invalidate", invalidate, methods=["POST"]),
        Route("/admin/flush", flush, methods=["POST"]),
        Route("/admin/audit", audit_log, methods=["GET"]),
        Route("/admin/config", show_config, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *console_routes(load_assets()),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan_for(settings, model_loader),
        exception_handlers={
            ProxyError: handle_proxy_error,
            HTTPException: _handle_http_exception,
            Exception: handle_unexpected_error,
        },
    )
    return DirectRoutes(app, cached)


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    # Starlette's own routing answers (404, 405), in OpenAI's error shape like everything else.
    assert isinstance(exc, HTTPException)
    error_class = MethodNotAllowedError if exc.status_code == 405 else NotFoundError
    return error_response(error_class(f"{request.method} {request.url.path}: {exc.detail}"))
