"""uvicorn's httptools protocol with the read deadlines uvicorn lacks, and its own errors in OpenAI's shape.

uvicorn bounds only idle keep-alive connections (`timeout_keep_alive`, armed after a response and disarmed by
the first byte that follows). A connection that opens and sends nothing, or half a header line, or headers one
byte at a time, is held until the client leaves; so is one that owes a body the app never read. This protocol:

- gives every request `header_timeout_s` for its headers, from the connection's opening (first request) or the
  request's first byte (later ones); late: a 408, then the connection is closed;
- closes a connection whose request body is still arriving `body_timeout_s` after its response was sent (the
  app answered without reading it: /healthz with a Content-Length); bodies the app reads have their own
  deadline in the app (408, see api/body.py);
- answers requests its parser refuses with a 400 in OpenAI's error shape instead of uvicorn's plain text;
- sends what one turn of the event loop writes to a connection in one send(): uvicorn writes a response's head
  and its body apart, two system calls where one does (about a tenth of an L1 hit's CPU, py-spy under wrk).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from typing import Any, cast

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from llmproxy.errors import InvalidRequestError, ProxyError, RequestTimeoutError
from llmproxy.settings import ServerSettings


def server_options(server: ServerSettings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments that install this protocol with the configured deadlines."""
    protocol = functools.partial(
        DeadlineHttpProtocol, header_timeout_s=server.header_timeout_s, body_timeout_s=server.body_read_timeout_s
    )
    # A partial of a module-level class pickles by reference, as uvicorn's worker processes need.
    return {"http": cast(type[asyncio.Protocol], protocol)}


class DeadlineHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a header deadline, a bound on unread bodies, and OpenAI-shaped 400/408 answers."""

    def __init__(self, *args: Any, header_timeout_s: float, body_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._body_timeout_s = body_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_headers = False  # bytes of a request arrived, its headers are not complete
        self._message_done = True  # the last request's body arrived in full (or it had none)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, CoalescedWrites(transport, self.loop)))
        self._header_timer = self.loop.call_later(self._header_timeout_s, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers, self._message_done = True, False
        if self._header_timer is None:  # the first request's clock started with the connection
            self._header_timer = self.loop.call_later(self._header_timeout_s, self._headers_late)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._message_done = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._message_done and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self._body_timeout_s, self._close)

    def send_400_response(self, msg: str) -> None:
        self.logger.warning(msg)
        self._reject(
            InvalidRequestError(f"The proxy could not parse this HTTP/1.1 request ({msg})", code="invalid_http")
        )

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request stalls behind one in flight: finish that one, then close.
            self.cycle.keep_alive = False
        elif self._in_headers:
            self._reject(
                RequestTimeoutError(f"The request headers did not arrive within {self._header_timeout_s:g} s.")
            )
        else:
            self._close()  # opened and never used: nothing to answer

    def _reject(self, error: ProxyError) -> None:
        """Answer with `error` in OpenAI's JSON shape and close: no request of this connection is in flight."""
        body = orjson.dumps(error.body())
        head = [STATUS_LINE[error.status_code]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body), b"connection: close\r\n"]
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self._close()

    def _close(self) -> None:
        self._cancel_timers()
        if not self.transport.is_closing():
            self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None


class CoalescedWrites:
    """A transport whose writes within one turn of the event loop go out as one write at the end of it.

    Everything but write, writelines and close is the wrapped transport's; close first sends what is pending.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in chunks:
            self.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
