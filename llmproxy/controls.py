"""Per-request cache controls read from headers, clamped to the operator's bounds (pure).

| header                           | effect                                                    |
|----------------------------------|-----------------------------------------------------------|
| `Cache-Control: no-cache`        | do not look up; forward, then store the fresh answer      |
| `Cache-Control: no-store`        | may be served from cache, but a miss is not stored         |
| `X-LLMProxy-TTL: <seconds>`      | lifetime of the stored answer (clamped to min/max TTL)     |
| `X-LLMProxy-Namespace: <name>`   | a separate partition of the caller's cache                 |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmproxy.errors import InvalidRequestError
from llmproxy.scope import validate_namespace
from llmproxy.settings import CacheSettings

TTL_HEADER = "x-llmproxy-ttl"
NAMESPACE_HEADER = "x-llmproxy-namespace"


@dataclass(frozen=True, slots=True)
class RequestControls:
    lookup: bool
    store: bool
    ttl_s: int
    namespace: str | None


def read_controls(headers: Mapping[str, str], cache: CacheSettings) -> RequestControls:
    """Cache controls for one request.

    Raises:
        InvalidRequestError: a TTL that is not a whole number of seconds, or a malformed namespace.
    """
    directives = cache_control_directives(headers.get("cache-control", ""))
    return RequestControls(
        lookup=cache.enabled and "no-cache" not in directives,
        store=cache.enabled and "no-store" not in directives,
        ttl_s=requested_ttl(headers.get(TTL_HEADER), cache),
        namespace=validate_namespace(headers.get(NAMESPACE_HEADER)),
    )


def cache_control_directives(value: str) -> frozenset[str]:
    """Directive names of a Cache-Control header, lower-cased (`max-age=0` → `max-age`)."""
    return frozenset(part.split("=", 1)[0].strip().lower() for part in value.split(",") if part.strip())


def requested_ttl(value: str | None, cache: CacheSettings) -> int:
    """The TTL asked for, clamped to [min_ttl_s, max_ttl_s]; the default when not asked.

    Raises:
        InvalidRequestError: not a positive whole number.
    """
    if value is None:
        return cache.default_ttl_s
    if not value.strip().isdigit() or int(value) < 1:
        raise InvalidRequestError(
            "X-LLMProxy-TTL must be a positive whole number of seconds.", param="X-LLMProxy-TTL", code="invalid_value"
        )
    return max(cache.min_ttl_s, min(int(value), cache.max_ttl_s))
