"""Server-sent events: an incremental decoder that keeps each event's exact bytes, and the encoder.

Decoding follows the WHATWG event-stream rules as far as OpenAI-style APIs use them. Every byte fed
ends up in exactly one event's `raw`, so forwarding the raws reproduces the upstream stream verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from llmproxy.wire import JsonObject

_LINE_END = re.compile(rb"\r\n|\r|\n")
_TEXT_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"
_DONE = "[DONE]"


class EventTooLargeError(Exception):
    """An event grew past the decoder's limit; the stream cannot be decoded further."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"an SSE event is larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event: its bytes as received (with the terminating blank line) and its parsed fields."""

    raw: bytes
    data: str | None
    event: str | None = None

    @property
    def is_done(self) -> bool:
        """Whether this is OpenAI's end-of-stream sentinel."""
        return self.data == _DONE


@dataclass(slots=True)
class _EventFields:
    """The fields of the event being parsed."""

    data: list[str] | None = None
    event: str | None = None

    def add_line(self, line: str) -> None:
        if line.startswith(":"):
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            if self.data is None:
                self.data = []
            self.data.append(value)
        elif name == "event":
            self.event = value
        # id: and retry: only matter to the final client; they stay in the raw bytes.

    def build(self, raw: bytes) -> SseEvent:
        data = None if self.data is None else "\n".join(self.data)
        return SseEvent(raw=raw, data=data, event=self.event)


class SseDecoder:
    """Incremental decoder: feed arbitrary byte slices, get complete events."""

    __slots__ = ("_raw", "_start", "_scan", "_searched", "_fields", "_at_stream_start", "_scanned", "_max_event")

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._max_event = max_event_bytes  # None: no limit
        self._raw = bytearray()  # bytes not yet handed out in an event
        self._start = 0  # offset in _raw where the event in progress begins
        self._scan = 0  # offset in _raw of the first byte not yet split into a line
        # Offset in _raw up to which the line in progress is known to hold no line end. Resuming the search
        # there, not at the line's start, is what keeps a huge line arriving in many slices linear.
        self._searched = 0
        self._fields = _EventFields()
        self._at_stream_start = True
        self._scanned = 0

    @property
    def bytes_scanned(self) -> int:
        """Bytes examined so far in search of line ends: the decoder's work, which must grow with the input only."""
        return self._scanned

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Add bytes; return the events they complete.

        Raises:
            EventTooLargeError: an event, complete or still arriving, is longer than max_event_bytes.
        """
        self._raw += chunk
        events = self._drain(at_eof=False)
        self._check_size(len(self._raw) - self._start)  # the event still arriving
        return events

    def flush(self) -> SseEvent | None:
        """End the stream; return the unterminated trailing event, if any, and reset the decoder."""
        events = self._drain(at_eof=True)
        if self._raw:
            if self._scan < len(self._raw):
                self._parse_line(bytes(self._raw[self._scan :]))
            events.append(self._dispatch(len(self._raw)))
        self._raw.clear()
        self._start = self._scan = self._searched = 0
        self._at_stream_start = True
        # Only the stream's last byte can have been held back, so at most one event remains.
        return events[-1] if events else None

    def _drain(self, *, at_eof: bool) -> list[SseEvent]:
        events: list[SseEvent] = []
        while (line_end := self._find_line_end(at_eof=at_eof)) is not None:
            start, end = line_end
            line = bytes(self._raw[self._scan : start])
            self._scan = end
            if line:
                self._parse_line(line)
            else:
                events.append(self._dispatch(end))
            self._at_stream_start = False
        self._compact()
        return events

    def _find_line_end(self, *, at_eof: bool) -> tuple[int, int] | None:
        start = max(self._scan, self._searched)
        match = _LINE_END.search(self._raw, start)
        self._scanned += (len(self._raw) if match is None else match.end()) - start
        if match is None:
            self._searched = len(self._raw)
            return None
        # A CR at the very end may be the first half of a CRLF split across slices: wait for the next byte.
        if not at_eof and match.group() == b"\r" and match.end() == len(self._raw):
            self._searched = match.start()
            return None
        return match.start(), match.end()

    def _parse_line(self, line: bytes) -> None:
        # Splitting on CR/LF bytes before decoding is safe: UTF-8 never uses them inside a character.
        text = line.decode("utf-8", errors="replace")
        if self._at_stream_start:
            text = text.removeprefix(_BOM)
        self._fields.add_line(text)

    def _check_size(self, size: int) -> None:
        if self._max_event is not None and size > self._max_event:
            raise EventTooLargeError(self._max_event)

    def _dispatch(self, end: int) -> SseEvent:
        self._check_size(end - self._start)
        event = self._fields.build(bytes(self._raw[self._start : end]))
        self._start = end
        self._fields = _EventFields()
        return event

    def _compact(self) -> None:
        # Dropping dispatched bytes once per feed, not once per event, keeps a large feed linear.
        del self._raw[: self._start]
        self._scan -= self._start
        self._searched = max(0, self._searched - self._start)
        self._start = 0


def encode_event(data: JsonObject | str) -> bytes:
    """Encode one `data:` event; a dict becomes compact JSON, a str (e.g. "[DONE]") is sent as-is."""
    if not isinstance(data, str):
        # orjson escapes control characters, so the JSON always fits on one data line.
        return b"data: " + orjson.dumps(data) + b"\n\n"
    # A line break inside a data line would end it early: each line gets its own data field.
    lines = _TEXT_LINE_END.split(data)
    return "".join(f"data: {line}\n" for line in lines).encode() + b"\n"


def done_event() -> bytes:
    """The `data: [DONE]` event that ends an OpenAI stream."""
    return encode_event(_DONE)
