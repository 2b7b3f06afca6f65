"""The request path of cacheable endpoints as named steps: key → L1 → embed → route → L2 → upstream → write-back.

The router runs before the L2 lookup (on the same vector), so a route that forbids caching or blocks a
topic is never bypassed by a cached paraphrase. The pipeline knows nothing of Starlette: it takes a
`CacheRequest` and returns a `Reply` that the API layer renders.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import orjson

from llmproxy.breaker import BreakerState, CircuitOpenError
from llmproxy.cache.catalog.index import catalog_record
from llmproxy.cache.entry import CacheEntry
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.keys import request_key
from llmproxy.cache.paraphrase import ParaphraseFinder, ParaphraseHit, Prepared, Unembedded
from llmproxy.cache.single_flight import Lead, SingleFlight
from llmproxy.cache.writeback import StorePlan, WriteBack
from llmproxy.errors import error_body
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.wire import EndpointKind, fixed_answer
from llmproxy.proxy.exchange import JSON_TYPE, SSE_TYPE, CacheRequest, Forward, Reply
from llmproxy.proxy.forwarder import Forwarder
from llmproxy.routing import (
    DEFAULT_ROUTE,
    BlockAction,
    ForwardAction,
    RespondAction,
    RouteDecision,
    Router,
    UndecidedReason,
    undecided_route,
)
from llmproxy.store.errors import CacheUnavailableError
from llmproxy.store.health import Fault, RedisHealth
from llmproxy.streaming import replay_sse
from llmproxy.trace import RequestTrace, Result, usage_of
from llmproxy.upstream.client import Headers, UpstreamClient

logger = logging.getLogger(__name__)

CACHE_HEADER = "x-cache"
BYPASS_REASON_HEADER = "x-cache-bypass-reason"
SIMILARITY_HEADER = "x-cache-similarity"
ROUTE_HEADER = "x-llmproxy-route"
COALESCED_HEADER = "x-llmproxy-coalesced"  # on a HIT-L1 that waited for an identical request's answer


class CacheStatus(StrEnum):
    HIT_L1 = "HIT-L1"
    HIT_L2 = "HIT-L2"
    MISS = "MISS"
    BYPASS = "BYPASS"


class Pipeline:
    """Answers cacheable requests from cache, a route's fixed answer, or the upstream the route names."""

    def __init__(
        self,
        exact: ExactCache,
        write_back: WriteBack,
        upstreams: Mapping[str | None, UpstreamClient],
        finder: ParaphraseFinder | None,
        router: Router | None,
        clock: Callable[[], float],
        request_stream_usage: bool,
        redis_health: RedisHealth,
        flight: SingleFlight | None = None,
        refuse_undecided: bool = False,
    ) -> None:
        self._redis_health = redis_health  # open: Redis is known to be down, every cache step is skipped
        self._exact = exact
        self._write_back = write_back
        self._upstreams = upstreams  # None is the default upstream
        self._finder = finder
        self._router = router
        self._clock = clock
        self._request_stream_usage = request_stream_usage
        self._flight = flight
        self._refuse_undecided = refuse_undecided  # router.on_undecided: block
        self._forwarder = Forwarder(write_back, request_stream_usage)

    async def handle(self, request: CacheRequest) -> Reply:
        """Serve from cache when possible, otherwise act on the route and store the answer.

        Raises:
            UpstreamError: the upstream could not be reached (502) or timed out (504).
            UpstreamUnavailableError: the upstream's circuit breaker is open (503).
        """
        parsed, controls, trace = request.parsed, request.controls, request.trace
        key = self._exact.key(request.scope, request_key(parsed.kind, request.scope, parsed.body))
        # Fail open: with Redis known to be down, skip every cache step (and the embedding that only feeds them).
        unavailable = _UNAVAILABLE if self._redis_health.state is BreakerState.OPEN else None
        if controls.lookup:
            entry = await self._lookup(key, trace)
            if isinstance(entry, CacheEntry):
                trace.cached_usage = usage_of(entry.response)
                return self._serve(entry.kind, entry.response, entry.created_at, request, CacheStatus.HIT_L1, [])
            unavailable = entry  # None: Redis answered (a miss)
        cache_up = unavailable is None
        embedded = await self._prepare(request, key, cache_up)
        prepared = embedded if isinstance(embedded, Prepared) else None
        route = await self._route(embedded, trace)
        logger.debug("route %s (distance %s) for a %s request", route.name, route.distance, parsed.kind)
        if isinstance(route.action, RespondAction):
            return self._respond(request, route.action, route)
        if isinstance(route.action, BlockAction):
            return _block(route.action, route, trace)
        # After a failed L1 lookup the L2 step and a write would most likely fail too, after more timeouts.
        # An undecided route is no_cache: nothing is looked up, stored, promoted or coalesced for it.
        lookup = controls.lookup and not route.cache.no_cache and cache_up
        store = controls.store and not route.cache.no_cache and cache_up
        if lookup and prepared is not None and self._finder is not None:
            hit = await self._paraphrase(prepared, request)
            if hit is not None:
                return await self._serve_paraphrase(hit, key, request, store, route)
        status = CacheStatus.MISS if lookup else CacheStatus.BYPASS
        trace.result = _RESULTS[status]
        if status is CacheStatus.BYPASS:
            trace.bypass_reason = controls.bypass_reason or _bypass_reason(controls.lookup, route, unavailable)
        listing = catalog_record(parsed.kind, parsed.body, request.scope, parsed.model, key)
        forward = self._plan(
            request, route, route.action, StorePlan(key, prepared.record if prepared else None, listing), store, status
        )
        if self._flight is not None and lookup and forward.store is not None:
            return await self._coalesce(self._flight, key, request, forward, route)
        return await self._send(request, forward)

    async def _lookup(self, key: str, trace: RequestTrace) -> CacheEntry | None | _Unavailable:
        """The L1 entry, None on a miss, or why Redis could not be asked (it failed, its breaker is open, no
        connection came free in time)."""
        try:
            ticket = self._redis_health.admit()
        except CircuitOpenError:
            return _UNAVAILABLE
        try:
            with trace.timing("l1"):
                entry = await self._exact.get(key)
        except CacheUnavailableError as exc:
            trace.failed("redis", "read")
            self._redis_health.settle(ticket, exc.fault)
            return _POOL_EXHAUSTED if exc.fault is Fault.POOL else _UNAVAILABLE
        except BaseException:  # cancelled: no outcome, the trial (if it was one) passes to the next request
            self._redis_health.release(ticket)
            raise
        self._redis_health.settle(ticket, None)
        return entry

    async def _paraphrase(self, prepared: Prepared, request: CacheRequest) -> ParaphraseHit | None:
        """The L2 hit, or None (a miss, or Redis failed: that is reported to the breaker)."""
        assert self._finder is not None
        try:
            with request.trace.timing("l2"):
                return await self._finder.find(prepared, request.controls.threshold)
        except CacheUnavailableError as exc:
            request.trace.failed("redis", "search")
            self._redis_health.observe(exc.fault)
            return None

    async def _prepare(self, request: CacheRequest, key: str, cache_up: bool) -> Prepared | Unembedded | None:
        """The prompt's vector, for the cache (while Redis is up) and for the router (whatever Redis does)."""
        controls = request.controls
        caching = cache_up and (controls.lookup or controls.store)
        routing = self._router is not None and self._router.active
        if self._finder is None or not (caching or routing):
            return None
        with request.trace.timing("embed"):
            return await self._finder.prepare(request.parsed, request.scope, key, request.trace)

    async def _route(self, embedded: Prepared | Unembedded | None, trace: RequestTrace) -> RouteDecision:
        if self._router is None or not self._router.active:
            return DEFAULT_ROUTE
        with trace.timing("router"):
            decided = await _decide(self._router, embedded)
        if isinstance(decided, str):  # could not decide: never taken for the default route (which caches)
            trace.route_undecided = decided
            decided = undecided_route(decided, refuse=self._refuse_undecided)
        trace.route = decided.name
        return decided

    def _plan(
        self,
        request: CacheRequest,
        route: RouteDecision,
        action: ForwardAction,
        store_plan: StorePlan,
        store: bool,
        status: CacheStatus,
    ) -> Forward:
        parsed = request.parsed
        body = request.raw_body
        hide_usage = parsed.stream and self._request_stream_usage and not parsed.include_usage
        if action.model is not None or hide_usage:
            body = orjson.dumps(_rewritten(parsed.body, action.model, hide_usage))
        ttl = request.controls.ttl_s
        if route.cache.ttl_s is not None and not request.controls.ttl_explicit:
            ttl = route.cache.ttl_s
        headers = [_status(status), *_bypass_header(request.trace), *_route_header(route)]
        client = self._upstreams[action.upstream]
        return Forward(client, body, store_plan if store else None, ttl, headers, action.upstream or "default")

    async def _serve_paraphrase(
        self, hit: ParaphraseHit, key: str, request: CacheRequest, store: bool, route: RouteDecision
    ) -> Reply:
        if hit.is_exact(key):  # stored under this very key after our L1 lookup: an L1 hit, nothing to promote
            request.trace.cached_usage = usage_of(hit.entry.response)
            entry = hit.entry
            headers = _route_header(route)
            return self._serve(entry.kind, entry.response, entry.created_at, request, CacheStatus.HIT_L1, headers)
        if store:
            # Promote: the next identical request is an L1 hit. Same expiry as the original answer.
            parsed = request.parsed
            listing = catalog_record(parsed.kind, parsed.body, request.scope, parsed.model, key, hit.entry_key)
            if await self._write_back.promote(key, hit.entry, hit.ttl_ms, listing) == "failed":
                request.trace.failed("redis", "write")
        request.trace.cached_usage = usage_of(hit.entry.response)
        headers = [(SIMILARITY_HEADER, f"{hit.similarity:.4f}"), *_route_header(route)]
        entry = hit.entry
        return self._serve(entry.kind, entry.response, entry.created_at, request, CacheStatus.HIT_L2, headers)

    def _respond(self, request: CacheRequest, action: RespondAction, route: RouteDecision) -> Reply:
        parsed = request.parsed
        kind: EndpointKind = "completion" if parsed.kind == "completion" else "chat"
        created = int(self._clock())
        answer = fixed_answer(kind, parsed.model, action.content, f"llmproxy-{uuid.uuid4().hex}", created)
        return self._serve(kind, answer, created, request, CacheStatus.BYPASS, _route_header(route))

    def _serve(
        self,
        kind: EndpointKind,
        response: JsonObject,
        created_at: float,
        request: CacheRequest,
        status: CacheStatus,
        extra_headers: Headers,
    ) -> Reply:
        parsed = request.parsed
        request.trace.result = _RESULTS[status]
        age = max(0, int(self._clock() - created_at))
        headers = [_status(status), *extra_headers, ("age", str(age))]
        if parsed.stream and kind != "embedding":
            body = replay_sse(kind, response, parsed.include_usage)
            return Reply(200, [("content-type", SSE_TYPE), ("cache-control", "no-cache"), *headers], body)
        return Reply(200, [("content-type", JSON_TYPE), *headers], orjson.dumps(response))

    async def _coalesce(
        self, flight: SingleFlight, key: str, request: CacheRequest, forward: Forward, route: RouteDecision
    ) -> Reply:
        """Identical misses in flight share one upstream call: lead this one, or serve the leader's answer."""
        turn = await flight.join(key, request.trace)
        if turn.entry is not None:
            entry = turn.entry
            request.trace.cached_usage = usage_of(entry.response)
            headers = [(COALESCED_HEADER, "1"), *_route_header(route)]
            return self._serve(entry.kind, entry.response, entry.created_at, request, CacheStatus.HIT_L1, headers)
        if turn.lead is None:  # the leader failed or timed out, or Redis did: an ordinary miss
            return await self._send(request, forward)
        return await self._lead(turn.lead, request, forward)

    async def _lead(self, lead: Lead, request: CacheRequest, forward: Forward) -> Reply:
        trace = request.trace
        try:
            reply = await self._send(request, forward)
        except BaseException:
            await lead.release(stored=False)
            raise
        if reply.close is None:  # a whole body: its write-back already ran
            await lead.release(stored=trace.write == "stored")
            return reply
        close = reply.close

        async def close_then_release() -> None:
            # A stream is written back at its end, before `close`: followers are released after it.
            try:
                await close()
            finally:
                await lead.release(stored=trace.write == "stored")

        return Reply(reply.status, reply.headers, reply.body, close_then_release)

    async def _send(self, request: CacheRequest, forward: Forward) -> Reply:
        return await self._forwarder.send(request, forward)


@dataclass(frozen=True, slots=True)
class _Unavailable:
    """The L1 lookup could not ask Redis (distinct from None, a miss): the bypass reason says why."""

    reason: str


_UNAVAILABLE = _Unavailable("redis-unavailable")
_POOL_EXHAUSTED = _Unavailable("redis-pool-exhausted")  # back-pressure in this process: Redis itself is fine


async def _decide(router: Router, embedded: Prepared | Unembedded | None) -> RouteDecision | UndecidedReason:
    """The route of a request, or why it cannot be decided (the embedding failed, or the prompt is too long)."""
    if isinstance(embedded, Prepared):
        return router.decide(embedded.record.vector)
    if embedded is None or embedded.prompt is None:
        return DEFAULT_ROUTE  # no plain-text prompt (a tool result, an image): nothing to route on
    if embedded.reason == "too-long":
        return await router.decide_long(embedded.prompt)
    return "timeout" if embedded.reason == "timeout" else "embedder-error"


def _bypass_reason(client_lookup: bool, route: RouteDecision, unavailable: _Unavailable | None) -> str:
    if route.undecided is not None:
        return "route-undecided"
    if unavailable is not None:
        return unavailable.reason
    if not client_lookup:
        return "cache-control"
    return "route" if route.cache.no_cache else "no-lookup"


def _bypass_header(trace: RequestTrace) -> Headers:
    return [(BYPASS_REASON_HEADER, trace.bypass_reason)] if trace.bypass_reason else []


_RESULTS: dict[CacheStatus, Result] = {
    CacheStatus.HIT_L1: "hit_l1",
    CacheStatus.HIT_L2: "hit_l2",
    CacheStatus.MISS: "miss",
    CacheStatus.BYPASS: "bypass",
}


def _status(status: CacheStatus) -> tuple[str, str]:
    return (CACHE_HEADER, status.value)


def _route_header(route: RouteDecision) -> Headers:
    return [(ROUTE_HEADER, route.name)]


def _block(action: BlockAction, route: RouteDecision, trace: RequestTrace) -> Reply:
    if route.undecided is not None:
        trace.bypass_reason = "route-undecided"
    body = error_body(action.message, "invalid_request_error", code=action.code)
    headers = [("content-type", JSON_TYPE), _status(CacheStatus.BYPASS), *_bypass_header(trace), *_route_header(route)]
    return Reply(action.status, headers, orjson.dumps(body))


def _rewritten(body: JsonObject, model: str | None, ask_usage: bool) -> JsonObject:
    changed = dict(body)
    if model is not None:
        changed["model"] = model
    if ask_usage:
        options = body.get("stream_options") or {}
        changed["stream_options"] = {**options, "include_usage": True}
    return changed
