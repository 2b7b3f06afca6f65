"""Relay an upstream SSE stream to the client event by event, assembling the copy to cache.

Each event is forwarded the moment its terminating blank line arrives; nothing waits for the end of
the stream. The assembled answer is stored only when the stream completed: `[DONE]` was seen, no
error event came (a typed `event: error`, or data carrying an `error`), every choice finished, and the
client was still reading (a client that leaves cancels this generator at its next `yield`, so the
write-back after the loop never runs). The stream ends with an SSE error event when one event grows past
`max_event_bytes`, or no data event arrives for the idle timeout: keep-alive comments are bytes, so they
reset the HTTP read timeout, but they are not an answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import anyio
import orjson

from llmproxy.cache.writeback import StorePlan, WriteBack
from llmproxy.errors import ProxyError, UpstreamError, UpstreamTimeoutError
from llmproxy.protocols.wire import EndpointKind
from llmproxy.streaming import (
    EventTooLargeError,
    SseDecoder,
    SseEvent,
    StreamAssembler,
    encode_event,
    is_usage_only_chunk,
)
from llmproxy.trace import RequestTrace
from llmproxy.upstream.client import StreamLimits, UpstreamStream

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """What to do with one stream besides forwarding it."""

    kind: EndpointKind
    model: str
    store: StorePlan | None  # None: do not store
    ttl_s: int
    hide_usage_chunk: bool  # we asked the upstream for usage; the caller did not
    trace: RequestTrace
    limits: StreamLimits


class MalformedStreamError(UpstreamError):
    code = "upstream_malformed_stream"


class EventTooLargeStreamError(UpstreamError):
    code = "upstream_event_too_large"


async def relay_stream(stream: UpstreamStream, plan: RelayPlan, write_back: WriteBack) -> AsyncIterator[bytes]:
    """Yield the upstream's SSE bytes event by event; store the assembled answer if the stream completed."""
    assembler = StreamAssembler("chat" if plan.kind == "chat" else "completion")
    outcome = _Outcome()
    try:
        async with aclosing(_events(stream, plan.limits)) as events:
            async for event in events:
                if _take(event, plan, assembler, outcome):
                    yield event.raw
    except ProxyError as exc:
        # Headers are long gone: the error travels as a last SSE event, which the SDKs raise.
        logger.warning("upstream stream failed: %s", exc.message)
        plan.trace.status = exc.status_code
        yield encode_event(exc.body())
        return
    if outcome.failed:
        plan.trace.status = 502  # the upstream sent an error event mid-stream
    if outcome.completed and plan.store is not None:
        # Clients hang up as soon as they read [DONE]; the write (bounded by the Redis timeout) must not be
        # cancelled with the response, or a complete answer would go uncached.
        with anyio.CancelScope(shield=True):
            await _store(assembler, plan, write_back)


async def _events(stream: UpstreamStream, limits: StreamLimits) -> AsyncGenerator[SseEvent, None]:
    """The upstream's events, the unterminated last one included.

    Raises:
        UpstreamTimeoutError: no data event for limits.idle_timeout_s (or no byte for the read timeout).
        EventTooLargeStreamError: an event grew past limits.max_event_bytes.
        UpstreamError: the connection broke.
    """
    decoder = SseDecoder(limits.max_event_bytes)
    deadline = anyio.current_time() + limits.idle_timeout_s
    async with aclosing(stream.chunks(decoded=True)) as chunks:
        while (data := await _next_chunk(chunks, deadline, limits.idle_timeout_s)) is not None:
            for event in _feed(decoder, data, limits.max_event_bytes):
                if event.data is not None:
                    deadline = anyio.current_time() + limits.idle_timeout_s
                yield event
    # An upstream may end its last event without the blank line; it still counts.
    tail = decoder.flush()
    if tail is not None:
        yield tail


async def _next_chunk(chunks: AsyncIterator[bytes], deadline: float, idle_s: float) -> bytes | None:
    """The next body bytes, or None at the end of the body.

    Raises:
        UpstreamTimeoutError: the deadline for the next data event passed first.
    """
    try:
        with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
            return await anext(chunks)
    except StopAsyncIteration:
        return None
    except TimeoutError as exc:
        raise UpstreamTimeoutError(f"The upstream API sent no data for {idle_s:g} s (only keep-alives).") from exc


def _feed(decoder: SseDecoder, data: bytes, limit: int) -> list[SseEvent]:
    try:
        return decoder.feed(data)
    except EventTooLargeError as exc:
        message = f"The upstream sent an SSE event larger than {limit} bytes (upstream.max_event_bytes)."
        raise EventTooLargeStreamError(message) from exc


class _Outcome:
    __slots__ = ("done", "failed")

    def __init__(self) -> None:
        self.done = False
        self.failed = False

    @property
    def completed(self) -> bool:
        return self.done and not self.failed


def _take(event: SseEvent, plan: RelayPlan, assembler: StreamAssembler, outcome: _Outcome) -> bool:
    """Account for one event; True when it is to be forwarded.

    Raises:
        MalformedStreamError: a data line that is not JSON.
    """
    if event.event == "error":
        # Relayed as it came (the SDKs raise it when it holds an error object), and the stream is not cached.
        outcome.failed = True
        return True
    if event.data is None:
        return True
    if event.is_done:
        outcome.done = True
        return True
    try:
        chunk = orjson.loads(event.data)
    except orjson.JSONDecodeError as exc:
        outcome.failed = True
        raise MalformedStreamError("The upstream sent a malformed stream event.") from exc
    if not isinstance(chunk, dict) or "error" in chunk:
        outcome.failed = True
        return True
    assembler.add(chunk)
    return not (plan.hide_usage_chunk and is_usage_only_chunk(chunk))


async def _store(assembler: StreamAssembler, plan: RelayPlan, write_back: WriteBack) -> None:
    response = assembler.result()
    if response is None or plan.store is None:
        logger.info("stream ended without a complete answer; not cached")
        plan.trace.write = "incomplete"
        return
    store = plan.store
    with plan.trace.timing("write"):
        plan.trace.write = await write_back.store(
            store.key, plan.kind, plan.model, response, plan.ttl_s, store.record, store.listing
        )
    if plan.trace.write == "failed":
        plan.trace.failed("redis", "write")
