"""Server-sent events of the fake: encoding, paced sending, and the stream faults."""

from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import islice

import anyio
import orjson
from starlette.responses import StreamingResponse
from starlette.types import Send

from llmproxy.fake_upstream.errors import error_body
from llmproxy.fake_upstream.faults import ErrorEvent, Faults
from llmproxy.fake_upstream.replies import Json

DONE = b"data: [DONE]\n\n"
MALFORMED = b"data: {not json\n\n"
PING = b": ping\n\n"
PING_INTERVAL_S = 0.1
# A larger event goes out in pieces (each after the chunk delay): a slow upstream sending one huge event.
SLICE_BYTES = 64 * 1024


class StreamDropped(Exception):
    """Raised inside an event stream to cut the connection mid-body."""


def encode_event(data: Json) -> bytes:
    """One `data:` event."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


def plan_events(chunks: Iterable[Json], faults: Faults) -> Iterator[bytes]:
    """The events to send for these chunks, with the requested stream fault applied."""
    events = (encode_event(chunk) for chunk in chunks)
    if faults.drop_after is not None:
        return _then_drop(islice(events, faults.drop_after))
    if faults.stream_error_after is not None:
        error = error_body("fake stream error", "server_error")
        return _then(islice(events, faults.stream_error_after), encode_event(error))
    if faults.malformed_sse:
        return _then(islice(events, 1), MALFORMED, DONE)
    if faults.error_event is not None:
        return _then(events, error_event(faults.error_event), DONE)
    return _then(events, DONE)


def error_event(kind: ErrorEvent) -> bytes:
    """An error event after the answer: typed with an error object, typed with a bare message, or untyped."""
    error = error_body("fake stream error", "server_error")
    if kind == "typed":
        return b"event: error\n" + encode_event(error)
    if kind == "bare":
        return b"event: error\n" + encode_event({"message": "fake stream error", "type": "server_error"})
    return encode_event(error)


async def pace(events: Iterator[bytes], delay_ms: float, keepalive_ms: float = 0.0) -> AsyncIterator[bytes]:
    """Yield keep-alive comments for `keepalive_ms`, then the events (in slices), sleeping `delay_ms` between."""
    async for ping in _pings(keepalive_ms):
        yield ping
    pieces = (event[start : start + SLICE_BYTES] for event in events for start in range(0, len(event), SLICE_BYTES))
    for position, piece in enumerate(pieces):
        if position and delay_ms > 0:
            await anyio.sleep(delay_ms / 1000)
        yield piece


async def _pings(duration_ms: float) -> AsyncIterator[bytes]:
    deadline = anyio.current_time() + duration_ms / 1000
    while anyio.current_time() < deadline:
        yield PING
        await anyio.sleep(min(PING_INTERVAL_S, max(0.0, deadline - anyio.current_time())))


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response that leaves the chunked body unterminated on `StreamDropped`."""

    media_type = "text/event-stream"

    def __init__(self, events: Iterator[bytes], delay_ms: float, keepalive_ms: float = 0.0) -> None:
        super().__init__(pace(events, delay_ms, keepalive_ms), headers={"cache-control": "no-cache"})

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                body = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode(self.charset)
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except StreamDropped:
            # Returning without the final body message makes uvicorn close the socket mid-body.
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _then(events: Iterable[bytes], *tail: bytes) -> Iterator[bytes]:
    yield from events
    yield from tail


def _then_drop(events: Iterable[bytes]) -> Iterator[bytes]:
    yield from events
    raise StreamDropped
