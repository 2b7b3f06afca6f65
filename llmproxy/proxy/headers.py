"""Every header the proxy reads or adds of its own (X-Cache, X-LLMProxy-*), the cache status, and their values.

| header                            | direction | meaning                                                       |
|-----------------------------------|-----------|---------------------------------------------------------------|
| `Cache-Control`                   | request   | `no-cache`: do not look up; `no-store`: do not store            |
| `X-LLMProxy-TTL`                  | request   | lifetime of the stored answer, in seconds                       |
| `X-LLMProxy-Namespace`            | request   | a separate partition of the caller's cache                      |
| `X-LLMProxy-Threshold`            | request   | the L2 distance threshold                                       |
| `X-LLMProxy-Actor`                | request   | who makes an admin change (the audit log)                       |
| `X-Cache`                         | reply     | HIT-L1, HIT-L2, MISS or BYPASS                                  |
| `X-Cache-Bypass-Reason`           | reply     | why a BYPASS did not use the cache                              |
| `X-Cache-Similarity`              | reply     | the similarity of an L2 hit                                     |
| `X-LLMProxy-Route`                | reply     | the route the request took                                      |
| `X-LLMProxy-Coalesced`            | reply     | a HIT-L1 that waited for an identical request's answer          |
| `X-LLMProxy-Upstream-Attempts`    | reply     | the upstream attempts, when more than one                       |
"""

from __future__ import annotations

from enum import StrEnum

from llmproxy.trace import Result

CACHE_CONTROL_HEADER = "cache-control"
TTL_HEADER = "x-llmproxy-ttl"
NAMESPACE_HEADER = "x-llmproxy-namespace"
THRESHOLD_HEADER = "x-llmproxy-threshold"
ACTOR_HEADER = "x-llmproxy-actor"
CACHE_HEADER = "x-cache"
BYPASS_REASON_HEADER = "x-cache-bypass-reason"
SIMILARITY_HEADER = "x-cache-similarity"
ROUTE_HEADER = "x-llmproxy-route"
COALESCED_HEADER = "x-llmproxy-coalesced"
ATTEMPTS_HEADER = "x-llmproxy-upstream-attempts"

# Headers the proxy consumes itself on cached routes; the upstream never sees them.
CONTROL_HEADERS = frozenset({CACHE_CONTROL_HEADER, TTL_HEADER, NAMESPACE_HEADER, THRESHOLD_HEADER})

Header = tuple[str, str]


class CacheStatus(StrEnum):
    """The X-Cache value of a reply."""

    HIT_L1 = "HIT-L1"
    HIT_L2 = "HIT-L2"
    MISS = "MISS"
    BYPASS = "BYPASS"

    @property
    def result(self) -> Result:
        """The cache result telemetry counts."""
        return _RESULTS[self]


_RESULTS: dict[CacheStatus, Result] = {
    CacheStatus.HIT_L1: "hit_l1",
    CacheStatus.HIT_L2: "hit_l2",
    CacheStatus.MISS: "miss",
    CacheStatus.BYPASS: "bypass",
}


def status_header(status: CacheStatus) -> Header:
    """X-Cache."""
    return (CACHE_HEADER, status.value)


def route_header(route: str) -> Header:
    """X-LLMProxy-Route."""
    return (ROUTE_HEADER, route)


def bypass_headers(reason: str | None) -> list[Header]:
    """X-Cache-Bypass-Reason, when there is a reason."""
    return [(BYPASS_REASON_HEADER, reason)] if reason else []


def attempts_headers(attempts: int) -> list[Header]:
    """X-LLMProxy-Upstream-Attempts, when the reply took more than one attempt (for debugging; the retries are
    also counted in the metrics)."""
    return [(ATTEMPTS_HEADER, str(attempts))] if attempts > 1 else []
