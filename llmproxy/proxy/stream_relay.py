"""Relay an upstream SSE stream to the client event by event, assembling the copy to cache.

Each event is forwarded the moment its terminating blank line arrives; nothing waits for the end of the stream.
What each event means is the protocol's assembler's to say (protocols/base.py). The assembled answer is stored
only when the stream completed: its own end arrived (`[DONE]`, or a final event), no error event came, the answer
is complete, and the client was still reading (a client that leaves cancels this generator at its next `yield`,
so the write-back after the loop never runs). The stream ends with the protocol's error event when one event grows
past `max_event_bytes`, or no data event arrives for the idle timeout: keep-alive comments are bytes, so they reset
the HTTP read timeout, but they are not an answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import anyio

from llmproxy.errors import EventTooLargeStreamError, ProxyError, UpstreamTimeoutError
from llmproxy.protocols.base import StreamAssembler, WireProtocol
from llmproxy.proxy.storing import AnswerStore
from llmproxy.streaming import EventTooLargeError, SseDecoder, SseEvent
from llmproxy.trace import RequestTrace
from llmproxy.upstream.client import StreamLimits, UpstreamStream

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """What to do with one stream besides forwarding it."""

    protocol: WireProtocol
    assembler: StreamAssembler
    store: AnswerStore | None  # None: do not store
    trace: RequestTrace
    limits: StreamLimits


async def relay_stream(stream: UpstreamStream, plan: RelayPlan) -> AsyncIterator[bytes]:
    """Yield the upstream's SSE bytes event by event; store the assembled answer if the stream completed."""
    assembler = plan.assembler
    try:
        async with aclosing(_events(stream, plan.limits)) as events:
            async for event in events:
                if assembler.add(event):
                    yield event.raw
    except ProxyError as exc:
        # Headers are long gone: the error travels as a last SSE event, which the SDKs raise.
        logger.warning("upstream stream failed: %s", exc.message)
        plan.trace.status = plan.protocol.error_status(exc)
        yield plan.protocol.stream_error(exc)
        return
    if assembler.failed:
        plan.trace.status = 502  # the upstream sent an error event mid-stream
    if assembler.ended and not assembler.failed and plan.store is not None:
        # Clients hang up as soon as they read the end; the write (bounded by the Redis timeout) must not be
        # cancelled with the response, or a complete answer would go uncached.
        with anyio.CancelScope(shield=True):
            await _store(assembler, plan.store)


async def _events(stream: UpstreamStream, limits: StreamLimits) -> AsyncGenerator[SseEvent, None]:
    """The upstream's events, the unterminated last one included.

    Raises:
        UpstreamTimeoutError: no data event for limits.idle_timeout_s (or no byte for the read timeout).
        EventTooLargeStreamError: an event grew past limits.max_event_bytes.
        UpstreamError: the connection broke.
    """
    decoder = SseDecoder(limits.max_event_bytes)
    deadline = asyncio.get_running_loop().time() + limits.idle_timeout_s
    async with aclosing(stream.chunks(decoded=True)) as chunks:
        while (data := await _next_chunk(chunks, deadline, limits.idle_timeout_s)) is not None:
            for event in _feed(decoder, data, limits.max_event_bytes):
                if event.data is not None:
                    deadline = asyncio.get_running_loop().time() + limits.idle_timeout_s
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
        async with asyncio.timeout_at(deadline):  # per event: the cheap timer
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


async def _store(assembler: StreamAssembler, store: AnswerStore) -> None:
    answer = assembler.result()
    if answer is None:
        logger.info("stream ended without a complete answer; not cached")
        await store.settle("incomplete")
        return
    await store.store(answer)
