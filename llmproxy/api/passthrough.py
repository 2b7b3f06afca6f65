"""Every other /v1/* route: forwarded untouched, bodies streamed both ways, to the upstream of the request's family
(Anthropic's for requests with an `anthropic-version` header), whose error shape the proxy's own errors take."""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.body import StreamedBody
from llmproxy.api.cacheable import error_reply
from llmproxy.api.context import app_state
from llmproxy.api.render import ClosingStreamingResponse, render
from llmproxy.errors import InvalidRequestError, ProxyError
from llmproxy.protocols.registry import passthrough_protocol
from llmproxy.proxy.forwarder import Upstreams
from llmproxy.proxy.headers import attempts_headers
from llmproxy.trace import RequestTrace
from llmproxy.upstream.client import Headers, UpstreamClient, UpstreamStream, relayable_headers

PASSTHROUGH_ENDPOINT = "passthrough"


async def passthrough(request: Request) -> Response:
    """Relay the request to the upstream and its response back, byte for byte."""
    state = app_state(request)
    family = passthrough_protocol(request.headers.items())
    upstream = state.upstreams.client(family.upstream_family, None)
    # One endpoint label: paths carry ids (files, batches).
    trace = RequestTrace(PASSTHROUGH_ENDPOINT, upstream=Upstreams.label(family.upstream_family, None))
    resources = AsyncExitStack()
    resources.callback(state.telemetry.finish, trace)  # runs last, once the body was sent or abandoned
    try:
        stream = await _open_upstream(request, upstream, trace, resources)
    except ProxyError as error:
        trace.status = family.error_status(error)
        await resources.aclose()
        return render(error_reply(family, error))
    except BaseException:
        trace.status = 500
        await resources.aclose()
        raise
    trace.status = trace.upstream_status = stream.status
    headers = [*relayable_headers(stream.headers, decoded=False), *attempts_headers(stream.attempts)]
    return ClosingStreamingResponse(stream.chunks(decoded=False), stream.status, headers, resources.aclose)


async def _open_upstream(
    request: Request, upstream: UpstreamClient, trace: RequestTrace, resources: AsyncExitStack
) -> UpstreamStream:
    """The upstream's response to the relayed request, its body owned by `resources`.

    Raises:
        InvalidRequestError: the path has dot segments.
        RequestTimeoutError: the client's body stalled; the upstream call was abandoned, no fault of the upstream's.
        InvalidRequestError: the client left before the end of its body (likewise abandoned).
        UpstreamError: the upstream could not be reached (see UpstreamClient.open).
    """
    state = app_state(request)
    path = _upstream_path(request)
    body = _streamed_body(request, state.settings.server.body_read_timeout_s)
    with anyio.CancelScope() as waiting:
        # A stalled or abandoned body cancels the wait: the upstream's breaker counts no failure (cancelled).
        if body is not None:
            body.on_abort = waiting.cancel
        with trace.timing("upstream"):
            return await resources.enter_async_context(
                upstream.open(
                    request.method, path, request.url.query, _headers(request, upstream), body.chunks() if body else b""
                )
            )
    assert body is not None and body.failure is not None  # only an aborted body cancels the scope
    raise body.failure


def _upstream_path(request: Request) -> str:
    """The path as the client wrote it: percent-escapes (%2F, %00) are the upstream's to interpret.

    Raises:
        InvalidRequestError: a "." or ".." segment (written or escaped), which would lead outside the upstream's /v1.
    """
    decoded: str = request.scope["path"]
    if any(segment in (".", "..") for segment in decoded.split("/")):
        raise InvalidRequestError(
            f"The path {decoded!r} has '.' or '..' segments; API paths never do.", code="invalid_path"
        )
    raw_path: bytes | None = request.scope.get("raw_path")
    return raw_path.decode("latin-1") if raw_path else request.url.path


def _headers(request: Request, upstream: UpstreamClient) -> Headers:
    headers = upstream.outgoing_headers(request.headers.items(), drop=frozenset())
    if "accept-encoding" not in request.headers:
        # Bytes are relayed raw, so the upstream may only use an encoding the client asked for.
        headers.append(("accept-encoding", "identity"))
    return headers


def _streamed_body(request: Request, timeout_s: float) -> StreamedBody | None:
    # A streamed body cannot be sent twice, so only requests without one are retried (429/502/503/529, connection).
    has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
    return StreamedBody(request, timeout_s) if has_body else None
