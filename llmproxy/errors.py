"""Errors the proxy itself produces; OpenAI's error JSON shape is their default rendering (each cached protocol
renders them in its own shape: protocols/base.py).

Hierarchy:

    ProxyError
    ├── InvalidRequestError        400
    ├── AuthenticationError        401
    ├── PermissionDeniedError      403
    ├── NotFoundError              404
    ├── MethodNotAllowedError      405
    ├── RequestTimeoutError        408 (with Connection: close)
    ├── RequestTooLargeError       413
    ├── RateLimitError             429
    ├── UpstreamError              502
    │   ├── UpstreamTimeoutError   504
    │   ├── InvalidUpstreamAnswerError   502 (a 200 that is not an answer: HTML, cut short, an error object)
    │   ├── MalformedStreamError         502 (a stream event that is not JSON)
    │   └── EventTooLargeStreamError     502 (a stream event past upstream.max_event_bytes)
    └── ServiceUnavailableError    503
        └── UpstreamUnavailableError   503 (circuit breaker open; with Retry-After)
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

logger = logging.getLogger(__name__)


class ProxyError(Exception):
    """An error answered to the client as `{"error": {"message", "type", "param", "code"}}`."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.instance_code = code if code is not None else self.code

    def body(self) -> dict[str, Any]:
        """The OpenAI-shaped error object."""
        return error_body(self.message, self.error_type, self.param, self.instance_code)

    def headers(self) -> dict[str, str]:
        """Response headers that go with the error."""
        return {}


class InvalidRequestError(ProxyError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(ProxyError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(ProxyError):
    status_code = 403
    error_type = "permission_denied_error"


class NotFoundError(ProxyError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowedError(ProxyError):
    status_code = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeoutError(ProxyError):
    """The client did not send its request (headers or body) in time; the connection is closed after the answer."""

    status_code = 408
    error_type = "invalid_request_error"
    code = "request_timeout"

    def headers(self) -> dict[str, str]:
        # The rest of the request may still arrive: the connection cannot carry another one.
        return {"connection": "close"}


class RequestTooLargeError(ProxyError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class RateLimitError(ProxyError):
    status_code = 429
    error_type = "rate_limit_error"


class UpstreamError(ProxyError):
    status_code = 502
    error_type = "upstream_error"
    code = "upstream_unreachable"


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    code = "upstream_timeout"


class InvalidUpstreamAnswerError(UpstreamError):
    code = "upstream_invalid_response"


class MalformedStreamError(UpstreamError):
    code = "upstream_malformed_stream"


class EventTooLargeStreamError(UpstreamError):
    code = "upstream_event_too_large"


class ServiceUnavailableError(ProxyError):
    status_code = 503
    error_type = "service_unavailable"


class UpstreamUnavailableError(ServiceUnavailableError):
    """The upstream's circuit breaker is open: answered at once, without calling it."""

    error_type = "server_error"  # what OpenAI's own 5xx carry, so SDKs and callers treat it alike
    code = "upstream_unavailable"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(max(1, math.ceil(self.retry_after_s)))}


def error_body(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON: the SDKs read `error.message`, `type`, `param` and `code`."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_response(error: ProxyError) -> Response:
    """Render a ProxyError as a JSON response with its status."""
    body = orjson.dumps(error.body())
    return Response(body, status_code=error.status_code, headers=error.headers(), media_type="application/json")


async def handle_proxy_error(request: Request, exc: Exception) -> Response:
    """Starlette handler for the whole ProxyError family."""
    assert isinstance(exc, ProxyError)
    return error_response(exc)


async def handle_unexpected_error(request: Request, exc: Exception) -> Response:
    """Last resort: log the traceback, answer a 500 in OpenAI shape without leaking internals."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(ProxyError("The proxy hit an internal error.", code="internal_error"))
