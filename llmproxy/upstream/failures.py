"""aiohttp failures mapped to ProxyErrors at this edge, and which of them a retry may cure.

Each failure is named by what happened (the names httpx gave them before, which the 502 message quotes), so a
refused connection reads as a connect failure (502) and not as a timeout, and a reset mid-body as a read error.
"""

from __future__ import annotations

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from llmproxy.errors import UpstreamError, UpstreamTimeoutError
from llmproxy.upstream.decoding import DecodingError

# What the session and a body read raise: aiohttp's errors, its parser's, and a body not in its encoding.
TRANSPORT_ERRORS = (aiohttp.ClientError, HttpProcessingError, DecodingError)
TransportError = aiohttp.ClientError | HttpProcessingError | DecodingError

# Most specific first. Retryable ones are failures before any response: the connection never opened, or broke
# before the status line. A read timeout is not among them: the upstream may be generating a long answer, and
# would start over; nor is a malformed answer, which the upstream did send.
_KINDS: tuple[tuple[type[Exception], str, bool], ...] = (
    (aiohttp.ConnectionTimeoutError, "ConnectTimeout", True),
    (aiohttp.ServerTimeoutError, "ReadTimeout", False),
    (aiohttp.ClientConnectorError, "ConnectError", True),  # refused, DNS, TLS: the connection never opened
    (aiohttp.ServerDisconnectedError, "RemoteProtocolError", True),
    (aiohttp.ClientPayloadError, "ReadError", True),
    (aiohttp.ClientConnectionError, "ReadError", True),  # reset, or any other broken connection
    (aiohttp.ClientResponseError, "RemoteProtocolError", False),  # a status line or headers that do not parse
    (HttpProcessingError, "RemoteProtocolError", False),
    (DecodingError, "DecodingError", False),
)
_TIMEOUTS = (aiohttp.ServerTimeoutError,)


def _kind(exc: TransportError) -> tuple[str, bool]:
    for kind, name, retryable in _KINDS:
        if isinstance(exc, kind):
            return name, retryable
    return exc.__class__.__name__, False


def upstream_error(exc: TransportError, origin: str) -> UpstreamError:
    """The ProxyError for a transport failure: 504 for timeouts, 502 for everything else."""
    if isinstance(exc, _TIMEOUTS):
        return timeout_error(origin)
    return UpstreamError(f"The upstream API at {origin} could not be reached: {_kind(exc)[0]}.")


def timeout_error(origin: str) -> UpstreamTimeoutError:
    """The 504 for an upstream that did not answer in time (a socket timeout, or the total deadline)."""
    return UpstreamTimeoutError(f"The upstream API at {origin} did not respond in time.")


def is_retryable(exc: TransportError) -> bool:
    """Whether it is a connection failure before any response, which a retry may cure."""
    return _kind(exc)[1]
