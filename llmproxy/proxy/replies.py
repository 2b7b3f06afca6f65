"""The replies the pipeline makes itself: a stored answer served (as JSON or a replayed stream), a route's fixed
answer, a route's refusal. Each is rendered by the request's protocol."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import orjson

from llmproxy.cache.entry import CacheEntry
from llmproxy.jsontypes import JsonObject
from llmproxy.proxy.exchange import JSON_TYPE, SSE_TYPE, CacheRequest, Reply
from llmproxy.proxy.headers import CacheStatus, Header, bypass_headers, route_header, status_header
from llmproxy.routing import BlockAction, RespondAction, RouteDecision

UNDECIDED_REASON = "route-undecided"  # the bypass reason of a request the router could not decide


class Replies:
    """Builds the replies that need no upstream; `clock` gives answers their age and fixed answers their time."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def entry(self, entry: CacheEntry, request: CacheRequest, status: CacheStatus, headers: list[Header]) -> Reply:
        """Serve a stored answer (a hit, or a leader's answer to its followers): its tokens count as saved."""
        request.trace.cached_usage = request.protocol.usage(entry.response)
        return self._answer(entry.response, entry.created_at, request, status, headers, entry.encoded_response)

    def fixed(self, request: CacheRequest, action: RespondAction, route: RouteDecision) -> Reply:
        """A route's `respond` action: its text as a complete answer of the request's protocol."""
        parsed, created = request.parsed, int(self._clock())
        answer = request.protocol.fixed_answer(parsed.model, action.content, f"llmproxy-{uuid.uuid4().hex}", created)
        return self._answer(answer, created, request, CacheStatus.BYPASS, [route_header(route.name)])

    def refusal(self, request: CacheRequest, action: BlockAction, route: RouteDecision) -> Reply:
        """A route's `block` action (or an undecided route under on_undecided: block), in the protocol's shape."""
        reason = UNDECIDED_REASON if route.undecided is not None else None
        if reason is not None:
            request.trace.bypass_reason = reason
        body = request.protocol.refusal(action.status, action.message, action.code)
        headers = [("content-type", JSON_TYPE), status_header(CacheStatus.BYPASS), *bypass_headers(reason)]
        return Reply(action.status, [*headers, route_header(route.name)], orjson.dumps(body))

    def _answer(
        self,
        answer: JsonObject,
        created_at: float,
        request: CacheRequest,
        status: CacheStatus,
        extra: list[Header],
        encoded: bytes | None = None,
    ) -> Reply:
        protocol, parsed = request.protocol, request.parsed
        request.trace.result = status.result
        age = max(0, int(self._clock() - created_at))
        headers = [status_header(status), *extra, ("age", str(age))]
        if parsed.stream:
            body = protocol.replay(answer, parsed)
            return Reply(200, [("content-type", SSE_TYPE), ("cache-control", "no-cache"), *headers], body)
        return Reply(200, [("content-type", JSON_TYPE), *headers], protocol.answer_body(answer, encoded))
