"""OpenAI-shaped error responses of the fake model server."""

from collections.abc import Mapping

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response


class JsonResponse(Response):
    """A JSON response serialised with orjson."""

    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


class RequestRejected(Exception):
    """An error the fake answers with an OpenAI error body."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})


def error_type(status_code: int) -> str:
    """The OpenAI error `type` for an HTTP status."""
    if status_code >= 500:
        return "server_error"
    if status_code == 429:
        return "rate_limit_error"
    return "invalid_request_error"


def error_body(message: str, error_kind: str, param: str | None = None, code: str | None = None) -> dict[str, object]:
    """The OpenAI error envelope."""
    return {"error": {"message": message, "type": error_kind, "param": param, "code": code}}


def render_rejection(request: Request, exc: Exception) -> Response:
    """Exception handler for `RequestRejected`."""
    assert isinstance(exc, RequestRejected)
    body = error_body(exc.message, error_type(exc.status_code), exc.param, exc.code)
    return JsonResponse(body, status_code=exc.status_code, headers=exc.headers)


def render_http_exception(request: Request, exc: Exception) -> Response:
    """Exception handler for Starlette's own errors (such as 405), in the OpenAI shape."""
    assert isinstance(exc, HTTPException)
    body = error_body(exc.detail, error_type(exc.status_code))
    return JsonResponse(body, status_code=exc.status_code, headers=exc.headers)
