"""The cached endpoints, one per protocol in the registry: parse → pipeline → render.

Every error of these routes, the proxy's own included, is answered in the protocol's shape, not by the app's
global handlers (which speak OpenAI's).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.body import read_body
from llmproxy.api.context import app_state
from llmproxy.api.render import render
from llmproxy.api.traced import finish_after
from llmproxy.errors import ProxyError
from llmproxy.protocols.base import WireProtocol
from llmproxy.proxy.controls import read_controls, without_cache
from llmproxy.proxy.exchange import JSON_TYPE, CacheRequest, Reply
from llmproxy.proxy.scope import ANONYMOUS_TENANT, caller_credentials, scope_id, tenant_id
from llmproxy.settings import CacheSettings
from llmproxy.state import AppState
from llmproxy.trace import RequestTrace

logger = logging.getLogger(__name__)

NO_CREDENTIAL = "no-credential"  # the bypass reason of a request without credentials (cache.anonymous_scope off)


def cached_endpoint(protocol: WireProtocol) -> Callable[[Request], Awaitable[Response]]:
    """The handler of one cached protocol's route."""

    async def endpoint(request: Request) -> Response:
        state = app_state(request)
        trace = RequestTrace(protocol.path)
        try:
            cache_request = await _cache_request(request, protocol, state, trace)
            reply = await state.pipeline.handle(cache_request)
        except Exception as exc:
            error = exc if isinstance(exc, ProxyError) else _internal_error(request, exc)
            reply = error_reply(protocol, error)
            trace.status = reply.status
            state.telemetry.finish(trace)
            return render(reply)
        return render(finish_after(reply, trace, state.telemetry, streamed=cache_request.parsed.stream))

    return endpoint


async def _cache_request(
    request: Request, protocol: WireProtocol, state: AppState, trace: RequestTrace
) -> CacheRequest:
    """The validated request with its cache controls and scope.

    Raises:
        ProxyError: the body or a control header is invalid, too large, or too slow to arrive.
    """
    settings = state.settings
    raw = await read_body(request, settings.server.max_body_bytes, settings.server.body_read_timeout_s)
    headers = list(request.headers.items())
    parsed = protocol.parse(raw, headers)
    trace.model, trace.stream = parsed.model, parsed.stream
    controls = read_controls(request.headers, settings.cache, settings.semantic)
    tenant = tenant_of(request, settings.cache)
    reason = NO_CREDENTIAL if tenant is None else protocol.bypass_reason(parsed)
    if reason is not None:
        controls = without_cache(controls, reason)
    # Without a tenant nothing is looked up or stored: the scope only names the request's key.
    scope = scope_id(tenant or ANONYMOUS_TENANT, controls.namespace)
    return CacheRequest(protocol, parsed, raw, headers, controls, scope, trace)


def error_reply(protocol: WireProtocol, error: ProxyError) -> Reply:
    """The error as this protocol answers it."""
    headers = [("content-type", JSON_TYPE), *error.headers().items()]
    return Reply(protocol.error_status(error), headers, orjson.dumps(protocol.error_body(error)))


def _internal_error(request: Request, exc: Exception) -> ProxyError:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return ProxyError("The proxy hit an internal error.", code="internal_error")


def tenant_of(request: Request, cache: CacheSettings) -> str | None:
    """The caller's tenant, from the credentials it sent (not the key the proxy may send upstream instead)."""
    credentials = caller_credentials(request.headers.items())
    return tenant_id(credentials, shared=cache.shared_scope, anonymous=cache.anonymous_scope)
