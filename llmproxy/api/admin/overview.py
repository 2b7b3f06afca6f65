"""GET /admin/overview: the proxy's health beside its traffic history, for the console and for scripts.

Redis (reachable, its breaker, eviction policy, memory, entry count, evictions), each upstream's breaker, and what
was served without (part of) the cache. Redis figures are sampled afresh on each call when Redis answers (the
background sampler refreshes them every 15 s for /metrics); counters count since the proxy started, over all workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.admin.auth import admin_endpoint, json_response
from llmproxy.breaker import BreakerState
from llmproxy.state import AppState
from llmproxy.store.eviction import UNKNOWN, eviction_policy, policy_warning
from llmproxy.store.redis_client import is_reachable
from llmproxy.telemetry.prometheus import MetricSample, ProxyMetrics
from llmproxy.telemetry.redis_sampler import refresh

DEFAULT_UPSTREAM = "default"


@admin_endpoint
async def overview(request: Request, state: AppState) -> Response:
    """Health and counters of this proxy; a Redis outage shows in the answer rather than failing it."""
    metrics = state.telemetry.metrics
    return json_response(
        {
            "redis": await _redis(state),
            "upstreams": _upstreams(metrics),
            "fail_open": label_totals(metrics.samples("llmproxy_fail_open_total"), "component"),
            "bypasses": label_totals(metrics.samples("llmproxy_cache_bypass_total"), "reason"),
            "semantic": {"enabled": state.settings.semantic.enabled, "threshold": state.settings.semantic.threshold},
            "history": state.history is not None,
            "router": state.router is not None,
        }
    )


async def _redis(state: AppState) -> dict[str, Any]:
    """Reachability, breaker and the latest sample (taken now when Redis answers)."""
    snapshot = state.telemetry.metrics.snapshot
    reachable = await is_reachable(state.redis)
    policy = UNKNOWN
    if reachable:
        await refresh(state.redis, snapshot, state.admin.catalog.size)
        policy = await eviction_policy(state.redis)
    warning = policy_warning(policy)
    return {
        "status": "ok" if reachable else "unreachable",
        "breaker": state.redis_health.state.name.lower(),
        "eviction_policy": policy,
        "used_memory_bytes": snapshot.used_memory_bytes,
        "entries": snapshot.entries,
        "evicted_keys": snapshot.evicted_keys,
        "expired_keys": snapshot.expired_keys,
        "warnings": [] if warning is None else [warning],
    }


def _upstreams(metrics: ProxyMetrics) -> list[dict[str, Any]]:
    """Each upstream's breaker (the worst over the workers) and how often it opened; the default one first."""
    opened = label_totals(metrics.samples("llmproxy_upstream_breaker_opened_total"), "upstream")
    states = {sample.labels["upstream"]: sample.value for sample in metrics.samples("llmproxy_upstream_breaker_state")}
    names = sorted(states, key=lambda name: (name != DEFAULT_UPSTREAM, name))
    return [
        {"name": name, "breaker": BreakerState(int(states[name])).name.lower(), "opened": opened.get(name, 0)}
        for name in names
    ]


def label_totals(samples: Iterable[MetricSample], label: str) -> dict[str, int]:
    """Counter values summed per value of one label, sorted by that value."""
    totals: dict[str, int] = {}
    for sample in samples:
        name = sample.labels.get(label, "")
        totals[name] = totals.get(name, 0) + int(sample.value)
    return dict(sorted(totals.items()))
