"""The values passed between the API layer, the pipeline and the forwarder: a request, a reply, a forwarding plan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from llmproxy.cache.writeback import StorePlan
from llmproxy.protocols.base import ParsedRequest, WireProtocol
from llmproxy.proxy.controls import RequestControls
from llmproxy.trace import RequestTrace
from llmproxy.upstream.client import Headers

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"

StoredListener = Callable[[bool], Awaitable[None]]  # told once whether the answer was stored


@dataclass(frozen=True, slots=True)
class CacheRequest:
    """A validated request with everything the pipeline needs to decide and forward."""

    protocol: WireProtocol
    parsed: ParsedRequest
    raw_body: bytes
    headers: Headers
    controls: RequestControls
    scope: str
    trace: RequestTrace


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send back; `close` (when set) must run once the body was sent or abandoned: it releases a stream's
    upstream connection, or writes a JSON answer back after the caller has it."""

    status: int
    headers: Headers
    body: bytes | AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class Forward:
    """How one miss goes upstream: to which upstream, as which model, stored where, with which reply headers."""

    upstream: str | None  # a route's named upstream; None: the default upstream of the protocol's family
    model: str | None  # a route's model in place of the caller's; None: the caller's
    store: StorePlan | None  # None: the answer is not stored
    headers: Headers  # X-Cache and X-LLMProxy-Route for the reply
    on_stored: StoredListener | None = None  # told once the write-back is over (a single-flight leader's release)
