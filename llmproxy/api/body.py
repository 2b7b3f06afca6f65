"""Reading request bodies within the configured size limit."""

from __future__ import annotations

from starlette.requests import Request

from llmproxy.errors import InvalidRequestError, RequestTooLargeError


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes without reading them all.

    Raises:
        RequestTooLargeError: the body (declared or actual) exceeds the limit.
        InvalidRequestError: a Content-Length that is not a number.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequestError("Content-Length must be a number.", code="invalid_content_length")
        if int(declared) > limit:
            raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        parts.append(part)
    return b"".join(parts)


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"The request body is larger than this proxy accepts ({limit} bytes).")
