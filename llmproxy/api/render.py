"""Turning pipeline Replies into Starlette responses, and running their `close` afterwards (releasing a stream's
upstream connection, writing a JSON answer back)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from llmproxy.proxy.exchange import Reply
from llmproxy.upstream.client import Headers


class ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that always runs `on_close`: finished, abandoned by the client, or never started."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        status_code: int,
        headers: Headers,
        on_close: Callable[[], Awaitable[None]] | None,
    ) -> None:
        super().__init__(content, status_code=status_code)
        self.raw_headers = encode_headers(headers)
        self._content = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Closing the generator first runs its own cleanup; then the upstream response is released.
            aclose = getattr(self._content, "aclose", None)
            if aclose is not None:
                await aclose()
            if self._on_close is not None:
                await self._on_close()


class ClosingResponse(Response):
    """A whole body, then `on_close` (when set: a write-back) once it was sent, or when sending it failed."""

    def __init__(
        self, body: bytes, status_code: int, headers: Headers, on_close: Callable[[], Awaitable[None]] | None
    ) -> None:
        super().__init__(body, status_code=status_code)
        self.raw_headers = [*encode_headers(headers), (b"content-length", str(len(body)).encode())]
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._on_close is not None:
                await self._on_close()


def render(reply: Reply) -> Response:
    """The Starlette response for a Reply."""
    if isinstance(reply.body, bytes):
        return ClosingResponse(reply.body, reply.status, reply.headers, reply.close)
    return ClosingStreamingResponse(reply.body, reply.status, reply.headers, reply.close)


def encode_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    """ASGI raw headers: lower-case names, latin-1 bytes."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
