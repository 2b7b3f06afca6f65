"""A small synchronous client of a running proxy's admin API, for the `llmproxy cache` commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

DEFAULT_TIMEOUT_S = 60.0  # an invalidation over many entries takes a while


class AdminApiError(Exception):
    """The proxy could not be reached, or answered with an error; the message says which and why."""


class AdminClient:
    """GET/POST/DELETE against /admin/* with the bearer token; answers are JSON objects."""

    def __init__(self, base_url: str, token: str | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET path with the query parameters that are set.

        Raises:
            AdminApiError: connection failure or an error status.
        """
        return self._call("GET", path, params=_set_only(params or {}))

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON body (unset fields left out).

        Raises:
            AdminApiError: connection failure or an error status.
        """
        return self._call("POST", path, json=_set_only(body))

    def delete(self, path: str) -> dict[str, Any]:
        """DELETE path.

        Raises:
            AdminApiError: connection failure or an error status.
        """
        return self._call("DELETE", path)

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise AdminApiError(f"cannot reach the proxy at {self._http.base_url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise AdminApiError(f"HTTP {response.status_code}: {_error_message(body, response.text)}")
        if not isinstance(body, dict):
            raise AdminApiError(f"unexpected answer from {path}: {response.text[:200]}")
        return body


def _set_only(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _error_message(body: object, text: str) -> str:
    # The proxy answers errors in OpenAI's shape: {"error": {"message": ...}}.
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", text))
    return text[:200]
