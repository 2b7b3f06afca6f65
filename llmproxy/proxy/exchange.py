"""The values passed between the API layer, the pipeline and the forwarder: a request, a reply, a forwarding plan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from llmproxy.cache.writeback import StorePlan
from llmproxy.protocols.wire import ParsedRequest
from llmproxy.proxy.controls import RequestControls
from llmproxy.trace import RequestTrace
from llmproxy.upstream.client import Headers, UpstreamClient

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"
# Headers the proxy consumes itself; the upstream never sees them.
CONTROL_HEADERS = frozenset({"cache-control", "x-llmproxy-ttl", "x-llmproxy-namespace", "x-llmproxy-threshold"})


@dataclass(frozen=True, slots=True)
class CacheRequest:
    """A validated request with everything the pipeline needs to decide and forward."""

    parsed: ParsedRequest
    raw_body: bytes
    headers: Headers
    controls: RequestControls
    scope: str
    trace: RequestTrace


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send back; `close` (when set) must run once the body was sent or abandoned."""

    status: int
    headers: Headers
    body: bytes | AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class Forward:
    """How one miss goes upstream: where, with which body, stored where and for how long."""

    client: UpstreamClient
    body: bytes
    store: StorePlan | None
    ttl_s: int
    headers: Headers  # X-Cache and X-LLMProxy-Route for the reply
    upstream_name: str
