"""What every stream assembler does with an SSE event before its protocol reads it (pure): an `event: error` fails
the stream, comments pass, `data: [DONE]` ends it, data that is not JSON is a stream error, and a JSON object goes
to the protocol's `fold`."""

from __future__ import annotations

from abc import abstractmethod

import orjson

from llmproxy.errors import MalformedStreamError
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import StreamAssembler
from llmproxy.streaming.sse import SseEvent


class JsonEventStream(StreamAssembler):
    """An assembler of JSON events; subclasses fold each object and set `_ended` at a protocol's own final event."""

    __slots__ = ("_ended", "_failed")

    def __init__(self) -> None:
        self._ended = False
        self._failed = False

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def failed(self) -> bool:
        return self._failed

    def add(self, event: SseEvent) -> bool:
        if event.event == "error":
            # Relayed as it came (the SDKs raise it when it holds an error object), and the stream is not cached.
            self._failed = True
            return True
        if event.data is None:
            return True
        if event.is_done:  # OpenAI's end; typed streams end with a final event, though some servers add it
            self._ended = True
            return True
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError as exc:
            self._failed = True
            raise MalformedStreamError("The upstream sent a malformed stream event.") from exc
        if not isinstance(data, dict):
            self._failed = True
            return True
        return self.fold(data, event)

    @abstractmethod
    def fold(self, data: JsonObject, event: SseEvent) -> bool:
        """Account for one event's JSON object; True when the event is to be forwarded to the client."""
