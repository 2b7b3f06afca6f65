"""Forwarding a miss upstream: the request as planned, the answer relayed (JSON or SSE) and written back."""

from __future__ import annotations

from contextlib import AsyncExitStack

from llmproxy.cache.writeback import WriteBack
from llmproxy.protocols.wire import ENDPOINT_PATHS
from llmproxy.proxy.exchange import CONTROL_HEADERS, SSE_TYPE, CacheRequest, Forward, Reply
from llmproxy.proxy.stream_relay import RelayPlan, relay_stream
from llmproxy.upstream.answers import checked_answer
from llmproxy.upstream.client import Headers, UpstreamClient, UpstreamReply, attempts_header, relayable_headers


class Forwarder:
    """Sends planned misses upstream and stores complete answers; errors are relayed, never stored."""

    def __init__(self, write_back: WriteBack, request_stream_usage: bool) -> None:
        self._write_back = write_back
        self._request_stream_usage = request_stream_usage

    async def send(self, request: CacheRequest, forward: Forward) -> Reply:
        """The upstream's answer as a Reply: a whole body, or a relayed stream whose `close` frees the connection.

        Raises:
            UpstreamError: the upstream could not be reached (502) or timed out (504).
            InvalidUpstreamAnswerError: it answered 200 with something other than an answer (502).
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
        if reply.status == 200:
            await self._store_answer(request, forward, reply)
        headers = [*relayable_headers(reply.headers, decoded=True), *forward.headers, *attempts_header(reply.attempts)]
        return Reply(reply.status, headers, reply.body)

    async def _store_answer(self, request: CacheRequest, forward: Forward, reply: UpstreamReply) -> None:
        """Check a 200 is an answer and store it when planned.

        Raises:
            InvalidUpstreamAnswerError: the body is not a JSON answer (truncated, HTML, an error object).
        """
        limit = self._write_back.max_entry_bytes
        response = checked_answer(reply.body, _content_type(reply.headers), limit)
        store, trace, parsed = forward.store, request.trace, request.parsed
        if store is None:
            return
        if response is None:  # over the entry limit: not even parsed
            trace.write = "too_large"
            return
        with trace.timing("write"):
            trace.write = await self._write_back.store(
                store.key, parsed.kind, parsed.model, response, forward.ttl_s, store.record, store.listing
            )
        if trace.write == "failed":
            trace.failed("redis", "write")

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
                # An error (or a non-stream answer) is relayed as it came and never cached; a 200 must be an answer.
                content = await stream.read()
                if stream.status == 200:
                    checked_answer(content, stream.content_type, self._write_back.max_entry_bytes)
                await resources.aclose()
                return Reply(stream.status, reply_headers, content)
        except BaseException:
            await resources.aclose()
            raise
        hide_usage = self._request_stream_usage and not parsed.include_usage
        limits = forward.client.stream_limits
        plan = RelayPlan(parsed.kind, parsed.model, forward.store, forward.ttl_s, hide_usage, trace, limits)
        # The upstream response now belongs to the Reply: its `close` releases the connection.
        return Reply(200, reply_headers, relay_stream(stream, plan, self._write_back), resources.aclose)

    def _outgoing_headers(self, request: CacheRequest, client: UpstreamClient) -> Headers:
        # The proxy reads the (decoded) body itself, so it lets httpx negotiate the encoding.
        return client.outgoing_headers(request.headers, drop=CONTROL_HEADERS | {"accept-encoding"})


def _content_type(headers: Headers) -> str:
    return next((value for name, value in headers if name.lower() == "content-type"), "")
