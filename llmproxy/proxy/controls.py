"""Per-request cache controls read from headers, clamped to the operator's bounds (pure).

| header                           | effect                                                    |
|----------------------------------|-----------------------------------------------------------|
| `Cache-Control: no-cache`        | do not look up; forward, then store the fresh answer      |
| `Cache-Control: no-store`        | may be served from cache, but a miss is not stored         |
| `X-LLMProxy-TTL: <seconds>`      | lifetime of the stored answer (clamped to min/max TTL)     |
| `X-LLMProxy-Namespace: <name>`   | a separate partition of the caller's cache                 |
| `X-LLMProxy-Threshold: <dist>`   | L2 distance threshold (clamped to the operator's bounds)   |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from llmproxy.errors import InvalidRequestError
from llmproxy.proxy.headers import CACHE_CONTROL_HEADER, NAMESPACE_HEADER, THRESHOLD_HEADER, TTL_HEADER
from llmproxy.proxy.scope import validate_namespace
from llmproxy.settings import CacheSettings, SemanticSettings

_DIGITS = re.compile(r"[0-9]+")
_MAX_TTL_DIGITS = 18  # any longer TTL is beyond every max_ttl_s


@dataclass(frozen=True, slots=True)
class RequestControls:
    lookup: bool
    store: bool
    ttl_s: int
    ttl_explicit: bool  # the caller set X-LLMProxy-TTL (it wins over a route's TTL)
    namespace: str | None
    threshold: float | None  # None: the operator's threshold for the model
    bypass_reason: str | None = None  # set when the cache is off for this request whatever its headers say


def read_controls(headers: Mapping[str, str], cache: CacheSettings, semantic: SemanticSettings) -> RequestControls:
    """Cache controls for one request.

    Raises:
        InvalidRequestError: a malformed TTL, namespace or threshold.
    """
    directives = cache_control_directives(headers.get(CACHE_CONTROL_HEADER, ""))
    return RequestControls(
        lookup=cache.enabled and "no-cache" not in directives,
        store=cache.enabled and "no-store" not in directives,
        ttl_s=requested_ttl(headers.get(TTL_HEADER), cache),
        ttl_explicit=TTL_HEADER in headers,
        namespace=validate_namespace(headers.get(NAMESPACE_HEADER)),
        threshold=requested_threshold(headers.get(THRESHOLD_HEADER), semantic),
    )


def without_cache(controls: RequestControls, reason: str) -> RequestControls:
    """The same controls with lookup and store off, for a reason of the proxy's (X-Cache-Bypass-Reason)."""
    return replace(controls, lookup=False, store=False, bypass_reason=reason)


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
    digits = value.strip()
    significant = digits.lstrip("0")
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if _DIGITS.fullmatch(digits) is None or not significant:
        raise InvalidRequestError(
            "X-LLMProxy-TTL must be a positive whole number of seconds.", param="X-LLMProxy-TTL", code="invalid_value"
        )
    # Thousands of digits are still a number (clamped below), but int() refuses more than 4,300 of them.
    seconds = int(significant) if len(significant) <= _MAX_TTL_DIGITS else cache.max_ttl_s
    return max(cache.min_ttl_s, min(seconds, cache.max_ttl_s))


def requested_threshold(value: str | None, semantic: SemanticSettings) -> float | None:
    """The L2 distance threshold asked for, clamped to [min_threshold, max_threshold].

    Raises:
        InvalidRequestError: not a number between 0 and 1.
    """
    if value is None:
        return None
    try:
        threshold = float(value)
    except ValueError:
        threshold = -1.0
    if not 0 <= threshold <= 1:
        raise InvalidRequestError(
            "X-LLMProxy-Threshold must be a cosine distance between 0 and 1.",
            param="X-LLMProxy-Threshold",
            code="invalid_value",
        )
    return max(semantic.min_threshold, min(threshold, semantic.max_threshold))
