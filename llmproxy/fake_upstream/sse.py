"""Server-sent events of the fake: encoding, paced sending, and the stream faults."""

from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import islice

import anyio
import orjson
from starlette.responses import StreamingResponse
from starlette.types import Send

from llmproxy.fake_upstream.errors import error_body
from llmproxy.fake_upstream.faults import Faults
from llmproxy.fake_upstream.replies import Json

DONE = b"data: [DONE]\n\n"
MALFORMED = b"data: {not json\n\n"


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
    return _then(events, DONE)


async def pace(events: Iterator[bytes], delay_ms: float) -> AsyncIterator[bytes]:
    """Yield the events one by one, sleeping `delay_ms` between them."""
    for position, event in enumerate(events):
        if position and delay_ms > 0:
            await anyio.sleep(delay_ms / 1000)
        yield event


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response that leaves the chunked body unterminated on `StreamDropped`."""

    media_type = "text/event-stream"

    def __init__(self, events: Iterator[bytes], delay_ms: float) -> None:
        super().__init__(pace(events, delay_ms), headers={"cache-control": "no-cache"})

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
