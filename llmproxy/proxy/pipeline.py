"""The request path of cacheable endpoints as named steps: key → L1 → embed → route → L2 → upstream → write-back.

The router runs before the L2 lookup (on the same vector), so a route that forbids caching or blocks a
topic is never bypassed by a cached paraphrase. The pipeline knows nothing of Starlette nor of any wire protocol:
it takes a `CacheRequest` (whose protocol says what its bodies mean) and returns a `Reply` that the API renders.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import anyio

from llmproxy.cache.catalog.index import catalog_record
from llmproxy.cache.entry import CacheEntry
from llmproxy.cache.paraphrase import ParaphraseHit, Prepared, Unembedded
from llmproxy.cache.single_flight import Lead, Turn
from llmproxy.cache.writeback import StorePlan
from llmproxy.proxy.cache_steps import UNAVAILABLE, CacheSteps, Unavailable
from llmproxy.proxy.coalescing import Coalescer
from llmproxy.proxy.exchange import CacheRequest, Forward, Reply
from llmproxy.proxy.forwarder import Forwarder
from llmproxy.proxy.headers import (
    SIMILARITY_HEADER,
    CacheStatus,
    Header,
    bypass_headers,
    route_header,
    status_header,
)
from llmproxy.proxy.replies import UNDECIDED_REASON, Replies
from llmproxy.proxy.shadow_audit import AuditJob, ShadowAuditor
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
from llmproxy.trace import RequestTrace

logger = logging.getLogger(__name__)


class Pipeline:
    """Answers cacheable requests from cache, a route's fixed answer, or the upstream the route names."""

    def __init__(
        self,
        *,
        cache: CacheSteps,
        router: Router | None,
        forwarder: Forwarder,
        replies: Replies,
        coalescer: Coalescer | None = None,  # None: single-flight is off
        refuse_undecided: bool = False,  # router.on_undecided: block
        auditor: ShadowAuditor | None = None,  # None: shadow verification is off
    ) -> None:
        self._auditor = auditor
        self._cache = cache
        self._router = router
        self._forwarder = forwarder
        self._replies = replies
        self._coalescer = coalescer
        self._refuse_undecided = refuse_undecided

    async def handle(self, request: CacheRequest) -> Reply:
        """Serve from cache when possible, otherwise act on the route and store the answer.

        Raises:
            UpstreamError: the upstream could not be reached (502) or timed out (504).
            UpstreamUnavailableError: the upstream's circuit breaker is open (503).
        """
        controls, trace = request.controls, request.trace
        key = self._cache.key(request)
        # Fail open: with Redis known to be down, skip every cache step (and the embedding that only feeds them).
        unavailable = UNAVAILABLE if self._cache.down else None
        if controls.lookup:
            found = await self._cache.lookup(key, trace)
            if isinstance(found, CacheEntry):
                return self._replies.entry(found, request, CacheStatus.HIT_L1, [])
            unavailable = found  # None: Redis answered (a miss)
        cache_up = unavailable is None
        routing = self._router is not None and self._router.active
        caching = cache_up and (controls.lookup or controls.store)
        embedded = await self._cache.embed(request, key, needed=routing or caching)
        prepared = embedded if isinstance(embedded, Prepared) else None
        route = await self._route(embedded, trace)
        logger.debug("route %s (distance %s) for a %s request", route.name, route.distance, request.protocol.name)
        if isinstance(route.action, RespondAction):
            return self._replies.fixed(request, route.action, route)
        if isinstance(route.action, BlockAction):
            return self._replies.refusal(request, route.action, route)
        # After a failed L1 lookup the L2 step and a write would most likely fail too, after more timeouts.
        # An undecided route is no_cache: nothing is looked up, stored, promoted or coalesced for it.
        lookup = controls.lookup and not route.cache.no_cache and cache_up
        store = controls.store and not route.cache.no_cache and cache_up
        coalescer = self._coalescer if lookup and store else None
        turn: Turn | None = None
        if lookup and prepared is not None:
            hit, turn = await self._paraphrase(prepared, key, request, coalescer)
            if hit is not None:
                return await self._serve_paraphrase(hit, key, request, store, route, prepared, turn)
        status = CacheStatus.MISS if lookup else CacheStatus.BYPASS
        trace.result = status.result
        reason = None
        if status is CacheStatus.BYPASS:
            reason = trace.bypass_reason = controls.bypass_reason or _bypass_reason(controls.lookup, route, unavailable)
        headers = [status_header(status), *bypass_headers(reason), route_header(route.name)]
        forward = self._plan(request, route.action, route, key, prepared, store, headers)
        if coalescer is not None:
            return await coalescer.send(key, request, forward, route.name, turn)
        return await self._forwarder.send(request, forward)

    async def _paraphrase(
        self, prepared: Prepared, key: str, request: CacheRequest, coalescer: Coalescer | None
    ) -> tuple[ParaphraseHit | None, Turn | None]:
        """The L2 hit or None, and, for a miss that will coalesce, its single-flight turn: the lease is taken
        while the search runs (one round trip fewer on a miss)."""
        if coalescer is None:
            return await self._cache.paraphrase(prepared, request), None
        joining = asyncio.ensure_future(coalescer.lease_ahead(key, request))
        try:
            hit = await self._cache.paraphrase(prepared, request)
        except BaseException:
            with anyio.CancelScope(shield=True):  # the request is over (e.g. the client left): free the lease
                turn = await joining
                _leave(turn, answered=False)
                if turn.lead is not None:
                    await turn.lead.release(False, led=False)
            raise
        return hit, await joining

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
        action: ForwardAction,
        route: RouteDecision,
        key: str,
        prepared: Prepared | None,
        store: bool,
        headers: list[Header],
    ) -> Forward:
        """Where the miss goes, and where its answer is stored (unless it is not to be)."""
        if not store:
            return Forward(action.upstream, action.model, None, headers)
        parsed, controls = request.parsed, request.controls
        ttl = controls.ttl_s
        if route.cache.ttl_s is not None and not controls.ttl_explicit:
            ttl = route.cache.ttl_s
        record = prepared.record if prepared is not None else None
        listing = catalog_record(request.protocol, parsed.body, request.scope, parsed.model, key)
        return Forward(
            action.upstream, action.model, StorePlan(key, request.protocol, parsed.model, ttl, record, listing), headers
        )

    async def _serve_paraphrase(
        self,
        hit: ParaphraseHit,
        key: str,
        request: CacheRequest,
        store: bool,
        route: RouteDecision,
        prepared: Prepared,
        turn: Turn | None,
    ) -> Reply:
        lead = turn.lead if turn is not None else None
        if turn is not None and lead is None:
            request.trace.flight = None  # answered by L2: its lease attempt took no part in single-flight
        if hit.is_exact(key):  # stored under this very key after our L1 lookup: an L1 hit, nothing to promote
            reply = self._replies.entry(hit.entry, request, CacheStatus.HIT_L1, [route_header(route.name)])
            _leave(turn, answered=True)
            return _releasing(reply, lead, stored=True)
        promoted = await self._cache.promote(hit, key, request) if store else False
        _leave(turn, answered=promoted)
        headers = [(SIMILARITY_HEADER, f"{hit.similarity:.4f}"), route_header(route.name)]
        reply = self._replies.entry(hit.entry, request, CacheStatus.HIT_L2, headers)
        action = route.action
        if self._auditor is not None and isinstance(action, ForwardAction) and self._auditor.picks():
            plan = self._plan(request, action, route, key, prepared, store, []).store
            job = AuditJob(request, hit.entry, hit.entry_key, key, action.upstream, action.model, plan)
            # Verified once the caller has the answer: the reply's close only queues the job.
            reply = replace(reply, close=self._auditor.after_serving(job))
        # A twin that waited on the lease taken ahead finds the promoted copy in L1.
        return _releasing(reply, lead, promoted)


def _leave(turn: Turn | None, answered: bool) -> None:
    if turn is not None and turn.wait is not None:
        turn.wait.leave(answered)


def _releasing(reply: Reply, lead: Lead | None, stored: bool) -> Reply:
    """The reply, releasing a lease taken ahead once it is sent (or abandoned)."""
    if lead is None:
        return reply
    inner_close = reply.close

    async def close() -> None:
        try:
            if inner_close is not None:
                await inner_close()
        finally:
            await lead.release(stored, led=False)

    return Reply(reply.status, reply.headers, reply.body, close)


async def _decide(router: Router, embedded: Prepared | Unembedded | None) -> RouteDecision | UndecidedReason:
    """The route of a request, or why it cannot be decided (the embedding failed, or the prompt is too long)."""
    if isinstance(embedded, Prepared):
        return router.decide(embedded.record.vector)
    if embedded is None or embedded.prompt is None:
        return DEFAULT_ROUTE  # no plain-text prompt (a tool result, an image): nothing to route on
    if embedded.reason == "too-long":
        return await router.decide_long(embedded.prompt)
    return "timeout" if embedded.reason == "timeout" else "embedder-error"


def _bypass_reason(client_lookup: bool, route: RouteDecision, unavailable: Unavailable | None) -> str:
    if route.undecided is not None:
        return UNDECIDED_REASON
    if unavailable is not None:
        return unavailable.reason
    if not client_lookup:
        return "cache-control"
    return "route" if route.cache.no_cache else "no-lookup"
