"""The cached endpoints (/v1/chat/completions, /v1/completions, /v1/embeddings): parse → pipeline → render."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.body import read_body
from llmproxy.api.context import app_state
from llmproxy.api.render import render
from llmproxy.api.traced import finish_after
from llmproxy.errors import ProxyError
from llmproxy.protocols.wire import ENDPOINT_PATHS, EndpointKind, parse_request
from llmproxy.proxy.controls import read_controls, without_cache
from llmproxy.proxy.exchange import CacheRequest
from llmproxy.proxy.scope import ANONYMOUS_TENANT, caller_credentials, scope_id, tenant_id
from llmproxy.settings import CacheSettings
from llmproxy.trace import RequestTrace

NO_CREDENTIAL = "no-credential"  # the bypass reason of a request without credentials (cache.anonymous_scope off)


def cached_endpoint(kind: EndpointKind) -> Callable[[Request], Awaitable[Response]]:
    """The handler of one cacheable endpoint kind."""

    async def endpoint(request: Request) -> Response:
        state = app_state(request)
        settings = state.settings
        trace = RequestTrace(ENDPOINT_PATHS[kind])
        try:
            raw = await read_body(request, settings.server.max_body_bytes, settings.server.body_read_timeout_s)
            parsed = parse_request(kind, raw)
            trace.model, trace.stream = parsed.model, parsed.stream
            controls = read_controls(request.headers, settings.cache, settings.semantic)
            tenant = tenant_of(request, settings.cache)
            if tenant is None:
                controls = without_cache(controls, NO_CREDENTIAL)
            # Without a tenant nothing is looked up or stored: the scope only names the request's key.
            scope = scope_id(tenant or ANONYMOUS_TENANT, controls.namespace)
            cache_request = CacheRequest(parsed, raw, list(request.headers.items()), controls, scope, trace)
            reply = await state.pipeline.handle(cache_request)
        except Exception as exc:
            trace.status = exc.status_code if isinstance(exc, ProxyError) else 500
            state.telemetry.finish(trace)
            raise
        return render(finish_after(reply, trace, state.telemetry))

    return endpoint


def tenant_of(request: Request, cache: CacheSettings) -> str | None:
    """The caller's tenant, from the credentials it sent (not the key the proxy may send upstream instead)."""
    credentials = caller_credentials(request.headers.items())
    return tenant_id(credentials, shared=cache.shared_scope, anonymous=cache.anonymous_scope)
