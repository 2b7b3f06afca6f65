"""The request path of cacheable endpoints as named steps: key → L1 → L2 → upstream → write-back.

The pipeline knows nothing of Starlette: it takes a `CacheRequest` and returns a `Reply` that the
API layer renders.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from enum import StrEnum

import orjson

from llmproxy.cache.entry import CacheEntry
from llmproxy.cache.errors import CacheUnavailableError
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.writeback import StorePlan, WriteBack
from llmproxy.canonical import request_key
from llmproxy.controls import RequestControls
from llmproxy.paraphrase import NO_PROBE, ParaphraseFinder, ParaphraseHit, Probe
from llmproxy.stream_relay import RelayPlan, relay_stream
from llmproxy.streaming import replay_sse
from llmproxy.upstream.client import Headers, UpstreamClient, relayable_headers
from llmproxy.wire import ENDPOINT_PATHS, JsonObject, ParsedRequest

logger = logging.getLogger(__name__)

CACHE_HEADER = "x-cache"
SIMILARITY_HEADER = "x-cache-similarity"
JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"
# Headers the proxy consumes itself; the upstream never sees them.
CONTROL_HEADERS = frozenset({"cache-control", "x-llmproxy-ttl", "x-llmproxy-namespace", "x-llmproxy-threshold"})


class CacheStatus(StrEnum):
    HIT_L1 = "HIT-L1"
    HIT_L2 = "HIT-L2"
    MISS = "MISS"
    BYPASS = "BYPASS"


@dataclass(frozen=True, slots=True)
class CacheRequest:
    """A validated request with everything the pipeline needs to decide and forward."""

    parsed: ParsedRequest
    raw_body: bytes
    headers: Headers
    controls: RequestControls
    scope: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send back; `close` (when set) must run once the body was sent or abandoned."""

    status: int
    headers: Headers
    body: bytes | AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]] | None = None


class Pipeline:
    """Answers cacheable requests from L1 or the upstream, storing complete answers on the way back."""

    def __init__(
        self,
        exact: ExactCache,
        write_back: WriteBack,
        upstream: UpstreamClient,
        finder: ParaphraseFinder | None,
        clock: Callable[[], float],
        request_stream_usage: bool,
    ) -> None:
        self._exact = exact
        self._finder = finder
        self._write_back = write_back
        self._upstream = upstream
        self._clock = clock
        self._request_stream_usage = request_stream_usage

    async def handle(self, request: CacheRequest) -> Reply:
        """Serve from cache when possible, otherwise forward and store the answer.

        Raises:
            UpstreamError: the upstream could not be reached (502) or timed out (504).
        """
        parsed, controls = request.parsed, request.controls
        key = self._exact.key(request.scope, request_key(parsed.kind, request.scope, parsed.body))
        lookup_failed = False
        if controls.lookup:
            try:
                entry = await self._exact.get(key)
            except CacheUnavailableError:
                entry, lookup_failed = None, True
            if entry is not None:
                return self._serve(entry, parsed, [(CACHE_HEADER, CacheStatus.HIT_L1.value)])
        # After a failed lookup the L2 step and a write would most likely fail too, after more timeouts.
        probe = await self._probe(request, key) if not lookup_failed else NO_PROBE
        if probe.hit is not None:
            return await self._serve_paraphrase(probe.hit, key, request)
        status = CacheStatus.MISS if controls.lookup and not lookup_failed else CacheStatus.BYPASS
        store = StorePlan(key, probe.record) if controls.store and not lookup_failed else None
        if parsed.stream and parsed.kind != "embedding":
            return await self._forward_stream(request, store, status)
        return await self._forward(request, store, status)

    async def _probe(self, request: CacheRequest, key: str) -> Probe:
        controls = request.controls
        if self._finder is None or not (controls.lookup or controls.store):
            return NO_PROBE
        return await self._finder.probe(request.parsed, request.scope, key, controls)

    async def _serve_paraphrase(self, hit: ParaphraseHit, key: str, request: CacheRequest) -> Reply:
        if request.controls.store:
            # Promote: the next identical request is an L1 hit. Same expiry as the original answer.
            try:
                await self._exact.put(key, hit.entry, hit.ttl_ms)
            except CacheUnavailableError:
                pass
        headers = [(CACHE_HEADER, CacheStatus.HIT_L2.value), (SIMILARITY_HEADER, f"{hit.similarity:.4f}")]
        return self._serve(hit.entry, request.parsed, headers)

    def _serve(self, entry: CacheEntry, parsed: ParsedRequest, cache_headers: Headers) -> Reply:
        age = max(0, int(self._clock() - entry.created_at))
        headers = [*cache_headers, ("age", str(age))]
        if parsed.stream and entry.kind != "embedding":
            body = replay_sse(entry.kind, entry.response, parsed.include_usage)
            return Reply(200, [("content-type", SSE_TYPE), ("cache-control", "no-cache"), *headers], body)
        return Reply(200, [("content-type", JSON_TYPE), *headers], orjson.dumps(entry.response))

    async def _forward(self, request: CacheRequest, store: StorePlan | None, status: CacheStatus) -> Reply:
        parsed = request.parsed
        path = ENDPOINT_PATHS[parsed.kind]
        reply = await self._upstream.send("POST", path, self._outgoing_headers(request), request.raw_body)
        response = _json_object(reply.body) if reply.status == 200 else None
        if response is not None and store is not None:
            await self._write_back.store(
                store.key, parsed.kind, parsed.model, response, request.controls.ttl_s, store.record
            )
        headers = relayable_headers(reply.headers, decoded=True)
        return Reply(reply.status, [*headers, (CACHE_HEADER, status.value)], reply.body)

    async def _forward_stream(self, request: CacheRequest, store: StorePlan | None, status: CacheStatus) -> Reply:
        parsed = request.parsed
        hide_usage = self._request_stream_usage and not parsed.include_usage
        body = orjson.dumps(_with_usage(parsed.body)) if hide_usage else request.raw_body
        resources = AsyncExitStack()
        try:
            stream = await resources.enter_async_context(
                self._upstream.open("POST", ENDPOINT_PATHS[parsed.kind], "", self._outgoing_headers(request), body)
            )
            if stream.status != 200 or SSE_TYPE not in stream.content_type:
                # An error (or a non-stream answer) is relayed as it came and never cached.
                content = await stream.read()
                await resources.aclose()
                headers = relayable_headers(stream.headers, decoded=True)
                return Reply(stream.status, [*headers, (CACHE_HEADER, status.value)], content)
        except BaseException:
            await resources.aclose()
            raise
        plan = RelayPlan(parsed.kind, parsed.model, store, request.controls.ttl_s, hide_usage)
        headers = [*relayable_headers(stream.headers, decoded=True), (CACHE_HEADER, status.value)]
        # The upstream response now belongs to the Reply: its `close` releases the connection.
        return Reply(200, headers, relay_stream(stream, plan, self._write_back), resources.aclose)

    def _outgoing_headers(self, request: CacheRequest) -> Headers:
        # The proxy reads the (decoded) body itself, so it lets httpx negotiate the encoding.
        return self._upstream.outgoing_headers(request.headers, drop=CONTROL_HEADERS | {"accept-encoding"})


def _with_usage(body: JsonObject) -> JsonObject:
    options = body.get("stream_options") or {}
    return {**body, "stream_options": {**options, "include_usage": True}}


def _json_object(raw: bytes) -> JsonObject | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
