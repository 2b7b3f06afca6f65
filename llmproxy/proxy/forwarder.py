"""Forwarding a miss upstream: the request as planned, the answer relayed (JSON or SSE) and written back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace

import orjson

from llmproxy.cache.writeback import WriteBack
from llmproxy.protocols.base import UpstreamFamily
from llmproxy.proxy.exchange import SSE_TYPE, CacheRequest, Forward, Reply
from llmproxy.proxy.headers import CONTROL_HEADERS, attempts_headers
from llmproxy.proxy.storing import AnswerStore, PendingWrites
from llmproxy.proxy.stream_relay import RelayPlan, relay_stream
from llmproxy.settings import ANTHROPIC_UPSTREAM, DEFAULT_UPSTREAM
from llmproxy.upstream.answers import checked_answer
from llmproxy.upstream.client import Headers, UpstreamClient, UpstreamReply, relayable_headers


@dataclass(frozen=True, slots=True)
class Upstreams:
    """The upstream clients of each family (a protocol's `upstream_family`), by name; None names the default."""

    families: Mapping[UpstreamFamily, Mapping[str | None, UpstreamClient]]

    def client(self, family: UpstreamFamily, name: str | None) -> UpstreamClient:
        """The client of a named upstream (None: the family's default one).

        Raises:
            KeyError: no such upstream (routes are checked against the configured names when they load).
        """
        return self.families[family][name]

    def serves(self, family: UpstreamFamily, name: str | None) -> bool:
        """Whether the family has an upstream of this name (the named upstreams are all OpenAI-compatible)."""
        return name in self.families[family]

    @staticmethod
    def label(family: UpstreamFamily, name: str | None) -> str:
        """The upstream's name in metrics and traces."""
        if name is not None:
            return name
        return DEFAULT_UPSTREAM if family == "openai" else ANTHROPIC_UPSTREAM


class Forwarder:
    """Sends planned misses upstream and stores complete answers; errors are relayed, never stored."""

    def __init__(
        self, *, upstreams: Upstreams, write_back: WriteBack, want_usage: bool, max_pending_writes: int
    ) -> None:
        self._upstreams = upstreams
        self._write_back = write_back
        self._want_usage = want_usage  # upstream.request_stream_usage: ask streams for their usage, for metrics
        self._pending = PendingWrites(max_pending_writes)

    async def send(self, request: CacheRequest, forward: Forward) -> Reply:
        """The upstream's answer as a Reply: a whole body, or a relayed stream whose `close` frees the connection.

        Raises:
            UpstreamError: the upstream could not be reached (502) or timed out (504).
            InvalidUpstreamAnswerError: it answered 200 with something other than an answer (502).
        """
        family = request.protocol.upstream_family
        if not self._upstreams.serves(family, forward.upstream):
            # A route's named upstream (and its model) is OpenAI-compatible: a request of another family keeps
            # its own upstream and model rather than failing.
            forward = replace(forward, upstream=None, model=None)
        client = self._upstreams.client(family, forward.upstream)
        request.trace.upstream = self._upstreams.label(family, forward.upstream)
        plan = forward.store
        store = None if plan is None else AnswerStore(self._write_back, plan, request.trace, forward.on_stored)
        if request.parsed.stream:
            return await self._stream(request, forward, client, store)
        return await self._json(request, forward, client, store)

    async def _json(
        self, request: CacheRequest, forward: Forward, client: UpstreamClient, store: AnswerStore | None
    ) -> Reply:
        trace = request.trace
        with trace.timing("upstream"):
            outgoing = _outgoing(request, client)
            reply = await client.send("POST", request.protocol.path, outgoing, self._body(request, forward))
        trace.upstream_status = reply.status
        write = None
        if reply.status == 200:
            write = await self._store_answer(request, reply.body, reply.headers, store)
        headers = [*relayable_headers(reply.headers, decoded=True), *forward.headers, *attempts_headers(reply.attempts)]
        # The write-back, when it waits, is the reply's `close`: it runs once the body was sent.
        return Reply(reply.status, headers, reply.body, write)

    async def _store_answer(
        self, request: CacheRequest, body: bytes, headers: Headers, store: AnswerStore | None
    ) -> Callable[[], Awaitable[None]] | None:
        """Check a 200 is an answer, and store it when planned: now, or by the returned write after the response.

        Raises:
            InvalidUpstreamAnswerError: the body is not a JSON answer (truncated, HTML, an error object).
        """
        limit = self._write_back.max_entry_bytes
        answer = checked_answer(body, _content_type(headers), limit, request.protocol)
        if store is None:
            return None
        if answer is None:  # over the entry limit: not even parsed
            await store.settle("too_large")
            return None
        write = self._pending.after_response(store, answer)
        if write is None:
            await store.store(answer)
        return write

    async def _stream(
        self, request: CacheRequest, forward: Forward, client: UpstreamClient, store: AnswerStore | None
    ) -> Reply:
        resources = AsyncExitStack()
        trace, protocol = request.trace, request.protocol
        try:
            with trace.timing("upstream"):  # until the response headers: the body is timed by the client's TTFB
                stream = await resources.enter_async_context(
                    client.open("POST", protocol.path, "", _outgoing(request, client), self._body(request, forward))
                )
            trace.upstream_status = stream.status
            reply_headers = [
                *relayable_headers(stream.headers, decoded=True),
                *forward.headers,
                *attempts_headers(stream.attempts),
            ]
            if stream.status != 200 or SSE_TYPE not in stream.content_type:
                # An error (or a non-stream answer) is relayed as it came and never cached; a 200 must be an answer.
                content = await stream.read()
                if stream.status == 200:
                    checked_answer(content, stream.content_type, self._write_back.max_entry_bytes, protocol)
                await resources.aclose()
                return Reply(stream.status, reply_headers, content)
        except BaseException:
            await resources.aclose()
            raise
        assembler = protocol.assembler(request.parsed, want_usage=self._want_usage)
        plan = RelayPlan(protocol, assembler, store, trace, client.stream_limits)
        # The upstream response now belongs to the Reply: its `close` releases the connection.
        return Reply(200, reply_headers, relay_stream(stream, plan), resources.aclose)

    async def ask_again(self, request: CacheRequest, upstream: str | None, model: str | None) -> UpstreamReply:
        """The upstream's answer to a request already answered from cache, as one JSON call (never streamed, never
        stored here), with the caller's headers as a miss would send them: shadow verification.

        Raises:
            UpstreamError: the upstream could not be reached (502) or timed out (504).
            UpstreamUnavailableError: the upstream's circuit breaker is open (503).
        """
        family = request.protocol.upstream_family
        if not self._upstreams.serves(family, upstream):
            upstream, model = None, None
        client = self._upstreams.client(family, upstream)
        body = {name: value for name, value in request.parsed.body.items() if name != "stream_options"}
        if "stream" in body:
            body["stream"] = False
        if model is not None:
            body["model"] = model
        return await client.send("POST", request.protocol.path, _outgoing(request, client), orjson.dumps(body))

    def _body(self, request: CacheRequest, forward: Forward) -> bytes:
        changed = request.protocol.upstream_body(request.parsed, model=forward.model, want_usage=self._want_usage)
        return request.raw_body if changed is None else changed


# The proxy reads the (decoded) body itself, so it lets the HTTP client negotiate the encoding.
_NOT_FORWARDED = CONTROL_HEADERS | {"accept-encoding"}


def _outgoing(request: CacheRequest, client: UpstreamClient) -> Headers:
    return client.outgoing_headers(request.headers, drop=_NOT_FORWARDED)


def _content_type(headers: Headers) -> str:
    return next((value for name, value in headers if name.lower() == "content-type"), "")
