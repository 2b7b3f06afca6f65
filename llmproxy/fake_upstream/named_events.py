"""Typed server-sent events (`event: <type>` then `data: <json>`), as the Responses and Messages streams send them.

The stream faults apply as for chat: `X-Fake-Drop-After: N` cuts the connection after N events,
`X-Fake-Stream-Error-After: N` sends the protocol's error event after N events and ends the stream,
`X-Fake-Malformed-Sse` sends one event, then one whose data is not JSON. These streams end with their last
event (`response.completed`, `message_stop`), not with `data: [DONE]`.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import orjson

from llmproxy.fake_upstream.faults import Faults
from llmproxy.fake_upstream.replies import Json
from llmproxy.fake_upstream.sse import StreamDropped

NamedEvent = tuple[str, Json]


@dataclass(frozen=True, slots=True)
class StreamProtocol:
    """What a protocol sends when a fault breaks its stream."""

    error_event: Callable[[int], NamedEvent]  # the error event sent after this many events
    malformed_type: str  # the event name on the undecodable event (Anthropic's SDK skips unnamed ones)


def encode_named(event: NamedEvent) -> bytes:
    """One `event:`/`data:` pair."""
    kind, data = event
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def plan_named_events(events: Iterable[NamedEvent], faults: Faults, protocol: StreamProtocol) -> Iterator[bytes]:
    """The encoded events, with the requested stream fault applied."""
    encoded = (encode_named(event) for event in events)
    if faults.drop_after is not None:
        return _then_drop(islice(encoded, faults.drop_after))
    if faults.stream_error_after is not None:
        error = encode_named(protocol.error_event(faults.stream_error_after))
        return _then(islice(encoded, faults.stream_error_after), error)
    if faults.malformed_sse:
        return _then(islice(encoded, 1), b"event: " + protocol.malformed_type.encode() + b"\ndata: {not json\n\n")
    return encoded


def _then(events: Iterable[bytes], tail: bytes) -> Iterator[bytes]:
    yield from events
    yield tail


def _then_drop(events: Iterable[bytes]) -> Iterator[bytes]:
    yield from events
    raise StreamDropped
