"""Server-sent events: an incremental decoder that keeps each event's exact bytes, and the encoder.

Decoding follows the WHATWG event-stream rules as far as OpenAI-style APIs use them. Every byte fed
ends up in exactly one event's `raw`, so forwarding the raws reproduces the upstream stream verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from llmproxy.jsontypes import JsonObject

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
        # One slice for the value, not partition's and then another: a data line can be megabytes.
        colon = line.find(":")
        if colon < 0:
            name, value = line, ""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
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


class _ByteFinder:
    """Finds the next occurrence of one byte in a growing buffer, examining each byte at most once.

    `bytes.find` (memchr) is two orders of magnitude faster than a regex search here; remembering how far the
    last search got keeps a huge line that arrives in many slices from being searched again from its start.
    """

    __slots__ = ("_byte", "_found", "_clear", "examined")

    def __init__(self, byte: bytes) -> None:
        self._byte = byte
        self._found = -1  # position of the occurrence found last, -1 for none
        self._clear = 0  # bytes before this offset (from the last search on) hold no occurrence
        self.examined = 0

    def next(self, buffer: bytearray, start: int, stop: int) -> int:
        """The first position of the byte in buffer[start:stop], or -1."""
        if self._found >= start:
            return self._found if self._found < stop else -1
        begin = max(start, self._clear)
        if begin >= stop:
            return -1
        found = buffer.find(self._byte, begin, stop)
        self.examined += (stop if found < 0 else found + 1) - begin
        self._found, self._clear = found, stop if found < 0 else found
        return found

    def reset(self) -> None:
        """Forget every position (the buffer was emptied)."""
        self._found, self._clear = -1, 0

    def shift(self, offset: int) -> None:
        """The buffer lost its first `offset` bytes."""
        self._found = self._found - offset if self._found >= offset else -1
        self._clear = max(0, self._clear - offset)


class SseDecoder:
    """Incremental decoder: feed arbitrary byte slices, get complete events."""

    __slots__ = ("_raw", "_start", "_scan", "_lf", "_cr", "_fields", "_at_stream_start", "_max_event")

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._max_event = max_event_bytes  # None: no limit
        self._raw = bytearray()  # bytes not yet handed out in an event
        self._start = 0  # offset in _raw where the event in progress begins
        self._scan = 0  # offset in _raw of the first byte not yet split into a line
        self._lf = _ByteFinder(b"\n")
        self._cr = _ByteFinder(b"\r")
        self._fields = _EventFields()
        self._at_stream_start = True

    @property
    def bytes_scanned(self) -> int:
        """Bytes examined so far in search of line ends (LF and CR): the decoder's work, linear in the input."""
        return self._lf.examined + self._cr.examined

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
                self._parse_line(self._copy(self._scan, len(self._raw)))
            events.append(self._dispatch(len(self._raw)))
        self._raw.clear()
        self._start = self._scan = 0
        self._lf.reset()
        self._cr.reset()
        self._at_stream_start = True
        # Only the stream's last byte can have been held back, so at most one event remains.
        return events[-1] if events else None

    def _drain(self, *, at_eof: bool) -> list[SseEvent]:
        events: list[SseEvent] = []
        while (line_end := self._find_line_end(at_eof=at_eof)) is not None:
            start, end = line_end
            line = self._copy(self._scan, start)
            self._scan = end
            if line:
                self._parse_line(line)
            else:
                events.append(self._dispatch(end))
            self._at_stream_start = False
        self._compact()
        return events

    def _find_line_end(self, *, at_eof: bool) -> tuple[int, int] | None:
        size = len(self._raw)
        lf = self._lf.next(self._raw, self._scan, size)
        cr = self._cr.next(self._raw, self._scan, size if lf < 0 else lf)  # a CR counts only before the LF
        if cr < 0:
            return None if lf < 0 else (lf, lf + 1)
        if cr + 1 < size:
            return cr, cr + 2 if lf == cr + 1 else cr + 1
        # A CR at the very end may be the first half of a CRLF split across slices: wait for the next byte.
        return (cr, cr + 1) if at_eof else None

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
        event = self._fields.build(self._copy(self._start, end))
        self._start = end
        self._fields = _EventFields()
        return event

    def _copy(self, start: int, end: int) -> bytes:
        # Through a view: slicing the bytearray itself would copy the bytes twice.
        with memoryview(self._raw) as view:
            return bytes(view[start:end])

    def _compact(self) -> None:
        # Dropping dispatched bytes once per feed, not once per event, keeps a large feed linear.
        del self._raw[: self._start]
        self._scan -= self._start
        self._lf.shift(self._start)
        self._cr.shift(self._start)
        self._start = 0


def encode_event(data: JsonObject | str, event: str | None = None) -> bytes:
    """Encode one event: a dict becomes compact JSON, a str (e.g. "[DONE]") is sent as-is; `event` names its type
    (typed streams send `event: <type>` before the data)."""
    head = b"" if event is None else f"event: {_one_line(event)}\n".encode()
    if not isinstance(data, str):
        # orjson escapes control characters, so the JSON always fits on one data line.
        return head + b"data: " + orjson.dumps(data) + b"\n\n"
    # A line break inside a data line would end it early: each line gets its own data field.
    lines = _TEXT_LINE_END.split(data)
    return head + "".join(f"data: {line}\n" for line in lines).encode() + b"\n"


def _one_line(text: str) -> str:
    return _TEXT_LINE_END.sub(" ", text)


def done_event() -> bytes:
    """The `data: [DONE]` event that ends an OpenAI stream."""
    return encode_event(_DONE)
