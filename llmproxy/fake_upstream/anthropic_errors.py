"""Anthropic-shaped errors of the fake's Messages routes, and the header checks the real API makes first.

Every rejection on those routes renders as `{"type": "error", "error": {"type", "message"}}` with the status's
Anthropic error type: 400 `invalid_request_error`, 401 `authentication_error`, 402 `billing_error`,
403 `permission_error`, 404 `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`,
500 `api_error`, 504 `timeout_error`, 529 `overloaded_error` (other 5xx `api_error`, other 4xx
`invalid_request_error`). A request needs a key (`x-api-key`, or `Authorization: Bearer` as the SDK's
`auth_token` sends it) and an `anthropic-version` header.
"""

from collections.abc import Mapping

from starlette.responses import Response

from llmproxy.fake_upstream.errors import JsonResponse, RequestRejected
from llmproxy.protocols.anthropic import anthropic_error_body, anthropic_error_type


def render_anthropic(exc: RequestRejected) -> Response:
    """A rejection as Anthropic answers it."""
    body = anthropic_error_body(exc.message, anthropic_error_type(exc.status_code))
    return JsonResponse(body, status_code=exc.status_code, headers=exc.headers)


def check_anthropic_headers(headers: Mapping[str, str]) -> None:
    """The key and version checks, in the real API's order.

    Raises:
        RequestRejected: 401 without a key, 400 without an `anthropic-version` header.
    """
    scheme, _, token = headers.get("authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer" and token.strip()
    if not headers.get("x-api-key", "").strip() and not bearer:
        raise RequestRejected(401, "x-api-key header is required")
    if not headers.get("anthropic-version", "").strip():
        raise RequestRejected(400, "anthropic-version: header is required")
