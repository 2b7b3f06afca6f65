"""httpx's API over aiohttp's connection pool, with aiohttp's failures mapped precisely.

httpx's own pool forwarded ~500 req/s on this 2-core machine against ~2k through aiohttp
(load_tests/compare.py, forwarder row). httpx-aiohttp maps every aiohttp connection error to
httpx.ConnectTimeout, so a refused connection would read as a timeout (504, not 502) and a reset mid-body
as a connect failure; the retry and error rules (failures.py) need the real kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


class PreciseAiohttpTransport(AiohttpTransport):
    """AiohttpTransport whose errors say what happened: connect failure, reset, or timeout."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as exc:
            raise precise_error(exc) from exc.__cause__
        response.stream = _PreciseStream(response.stream)
        return response


class _PreciseStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream | httpx.AsyncByteStream) -> None:
        assert isinstance(inner, httpx.AsyncByteStream)
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TransportError as exc:
            raise precise_error(exc) from exc.__cause__

    async def aclose(self) -> None:
        await self._inner.aclose()


def precise_error(exc: httpx.TransportError) -> httpx.TransportError:
    """The httpx error for the aiohttp failure behind exc."""
    cause = exc.__cause__
    message = str(cause or exc)
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(cause, aiohttp.ClientConnectorError):  # the connection never opened (refused, DNS, ...)
        return httpx.ConnectError(message)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(message)
    if isinstance(cause, aiohttp.ClientOSError | aiohttp.ClientPayloadError):
        return httpx.ReadError(message)
    return exc
