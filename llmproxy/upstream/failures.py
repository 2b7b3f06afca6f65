"""httpx failures mapped to ProxyErrors at this edge, and which of them a retry may cure."""

from __future__ import annotations

import httpx

from llmproxy.errors import UpstreamError, UpstreamTimeoutError

# Failures before any response: the connection never opened, or broke before the status line. A read
# timeout is not among them: the upstream may be generating a long answer, and would start over.
RETRYABLE_TRANSPORT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


def upstream_error(exc: httpx.HTTPError, origin: str) -> UpstreamError:
    """The ProxyError for an httpx failure: 504 for timeouts, 502 for everything else."""
    if isinstance(exc, httpx.TimeoutException):
        return timeout_error(origin)
    return UpstreamError(f"The upstream API at {origin} could not be reached: {exc.__class__.__name__}.")


def timeout_error(origin: str) -> UpstreamTimeoutError:
    """The 504 for an upstream that did not answer in time (a timeout of httpx, or the total deadline)."""
    return UpstreamTimeoutError(f"The upstream API at {origin} did not respond in time.")


def is_retryable(exc: httpx.HTTPError) -> bool:
    """Whether it is a connection failure before any response, which a retry may cure."""
    return isinstance(exc, RETRYABLE_TRANSPORT_ERRORS)
