"""Forwarding a miss upstream: the request as planned, the answer relayed (JSON or SSE) and written back."""

from __future__ import annotations

from contextlib import AsyncExitStack

import orjson

from llmproxy.cache.writeback import WriteBack
from llmproxy.exchange import CONTROL_HEADERS, SSE_TYPE, CacheRequest, Forward, Reply
from llmproxy.stream_relay import RelayPlan, relay_stream
from llmproxy.upstream.client import Headers, UpstreamClient, attempts_header, relayable_headers
from llmproxy.wire import ENDPOINT_PATHS, JsonObject


class Forwarder:
    """Sends planned misses upstream and stores complete answers; errors are relayed, never stored."""

    def __init__(self, write_back: WriteBack, request_stream_usage: bool) -> None:
        self._write_back = write_back
        self._request_stream_usage = request_stream_usage

    async def send(self, request: CacheRequest, forward: Forward) -> Reply:
        """The upstream's answer as a Reply: a whole body, or a relayed stream whose `close` frees the connection.

        Raises:
            UpstreamError: the upstream could not be reached (502) or timed out (504).
        """
        if request.parsed.stream and request.parsed.kind != "embedding":
            return await self._stream(request, forward)
        return await self._json(request, forward)

    async def _json(self, request: CacheRequest, forward: Forward) -> Reply:
        parsed = request.parsed
        path = ENDPOINT_PATHS[parsed.kind]
        trace = request.trace
        trace.upstream = forward.upstream_name
        with trace.timing("upstream"):
            reply = await forward.client.send(
                "POST", path, self._outgoing_headers(request, forward.client), forward.body
            )
        trace.upstream_status = reply.status
        response = _json_object(reply.body) if reply.status == 200 else None
        if response is not None and forward.store is not None:
            store_plan = forward.store
            with trace.timing("write"):
                trace.write = await self._write_back.store(
                    store_plan.key,
                    parsed.kind,
                    parsed.model,
                    response,
                    forward.ttl_s,
                    store_plan.record,
                    store_plan.listing,
                )
            if trace.write == "failed":
                trace.failed("redis", "write")
        headers = [*relayable_headers(reply.headers, decoded=True), *forward.headers, *attempts_header(reply.attempts)]
        return Reply(reply.status, headers, reply.body)

    async def _stream(self, request: CacheRequest, forward: Forward) -> Reply:
        parsed = request.parsed
        resources = AsyncExitStack()
        headers = self._outgoing_headers(request, forward.client)
        trace = request.trace
        trace.upstream = forward.upstream_name
        try:
            with trace.timing("upstream"):  # until the response headers: the body is timed by the client's TTFB
                stream = await resources.enter_async_context(
                    forward.client.open("POST", ENDPOINT_PATHS[parsed.kind], "", headers, forward.body)
                )
            trace.upstream_status = stream.status
            reply_headers = [
                *relayable_headers(stream.headers, decoded=True),
                *forward.headers,
                *attempts_header(stream.attempts),
            ]
            if stream.status != 200 or SSE_TYPE not in stream.content_type:
                # An error (or a non-stream answer) is relayed as it came and never cached.
                content = await stream.read()
                await resources.aclose()
                return Reply(stream.status, reply_headers, content)
        except BaseException:
            await resources.aclose()
            raise
        hide_usage = self._request_stream_usage and not parsed.include_usage
        plan = RelayPlan(parsed.kind, parsed.model, forward.store, forward.ttl_s, hide_usage, trace)
        # The upstream response now belongs to the Reply: its `close` releases the connection.
        return Reply(200, reply_headers, relay_stream(stream, plan, self._write_back), resources.aclose)

    def _outgoing_headers(self, request: CacheRequest, client: UpstreamClient) -> Headers:
        # The proxy reads the (decoded) body itself, so it lets httpx negotiate the encoding.
        return client.outgoing_headers(request.headers, drop=CONTROL_HEADERS | {"accept-encoding"})


def _json_object(raw: bytes) -> JsonObject | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
