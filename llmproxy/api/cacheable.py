"""The cached endpoints (/v1/chat/completions, /v1/completions, /v1/embeddings): parse → pipeline → render."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.body import read_body
from llmproxy.api.context import app_state
from llmproxy.api.render import render
from llmproxy.controls import read_controls
from llmproxy.pipeline import CacheRequest
from llmproxy.scope import bearer_token, scope_id
from llmproxy.wire import EndpointKind, parse_request


def cached_endpoint(kind: EndpointKind) -> Callable[[Request], Awaitable[Response]]:
    """The handler of one cacheable endpoint kind."""

    async def endpoint(request: Request) -> Response:
        state = app_state(request)
        settings = state.settings
        raw = await read_body(request, settings.server.max_body_bytes)
        parsed = parse_request(kind, raw)
        controls = read_controls(request.headers, settings.cache, settings.semantic)
        scope = scope_id(
            bearer_token(request.headers.get("authorization")), controls.namespace, settings.cache.shared_scope
        )
        cache_request = CacheRequest(parsed, raw, list(request.headers.items()), controls, scope)
        return render(await state.pipeline.handle(cache_request))

    return endpoint
