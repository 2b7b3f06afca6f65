"""One upstream's aiohttp session: the keep-alive pool and per-phase timeouts, responses handed back unread.

httpx's request/response models on top of aiohttp's pool (httpx-aiohttp) cost about a third of the forward
path's CPU (BENCHMARKS.md, issue 6 and 14): the client talks to aiohttp directly. Bodies are never
decompressed here (`auto_decompress=False`): a raw relay sends them on untouched, and the proxy decodes only
what it reads (decoding.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from llmproxy.settings import UpstreamSettings
from llmproxy.upstream.decoding import ACCEPT_ENCODING

Body = bytes | AsyncIterator[bytes]

# How long an idle pooled connection is kept (httpx's default keep-alive expiry, which the pool had before).
KEEPALIVE_S = 5.0


class UpstreamSession:
    """A pooled aiohttp session, opened on first use (it must be made inside the running event loop)."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self._max_connections = settings.max_connections
        # `connect` bounds the wait for a pooled connection and `sock_connect` opening a new one; `sock_read`
        # is the longest silence between bytes of a response. The total deadline is the caller's (anyio).
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.pool_timeout_s + settings.connect_timeout_s,
            sock_connect=settings.connect_timeout_s,
            sock_read=settings.read_timeout_s,
        )
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=KEEPALIVE_S)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers={"accept-encoding": ACCEPT_ENCODING},  # the caller's own Accept-Encoding wins
                auto_decompress=False,
                trust_env=False,
            )
        return self._session

    async def request(
        self, method: str, url: str, headers: list[tuple[str, str]], body: Body
    ) -> aiohttp.ClientResponse:
        """The response once its headers have arrived; its body is unread and the caller releases it (`close`).

        Raises:
            aiohttp.ClientError, HttpProcessingError: see failures.py for how each is answered.
        """
        return await self._opened().request(
            method, url, headers=headers, data=None if body == b"" else body, allow_redirects=False
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def close(response: aiohttp.ClientResponse) -> None:
    """Give the connection back to the pool (or close it when the body was not read to its end)."""
    response.release()
    await response.wait_for_close()  # a request body still being sent is cancelled: wait for its task to end
