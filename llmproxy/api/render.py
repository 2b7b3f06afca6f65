"""Turning pipeline Replies into Starlette responses, releasing upstream resources afterwards."""

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


def render(reply: Reply) -> Response:
    """The Starlette response for a Reply."""
    if isinstance(reply.body, bytes):
        response = Response(reply.body, status_code=reply.status)
        response.raw_headers = [*encode_headers(reply.headers), (b"content-length", str(len(reply.body)).encode())]
        return response
    return ClosingStreamingResponse(reply.body, reply.status, reply.headers, reply.close)


def encode_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    """ASGI raw headers: lower-case names, latin-1 bytes."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
