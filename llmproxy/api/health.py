"""Probes for orchestrators: /healthz (the process is up) and /readyz (ready, or degraded but serving)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.context import app_state
from llmproxy.breaker import BreakerState
from llmproxy.store.eviction import UNKNOWN, eviction_policy, policy_warning
from llmproxy.store.redis_client import is_reachable


async def healthz(request: Request) -> Response:
    """Liveness: answers as long as the event loop runs."""
    return Response(orjson.dumps({"status": "ok"}), media_type="application/json")


async def readyz(request: Request) -> Response:
    """Readiness: always 200 while serving; "degraded" when Redis is down (requests then bypass the cache).

    Taking the proxy out of service because its cache is down would turn a slower service into an outage:
    without Redis every request still reaches the upstream. Risks that are not outages, such as an eviction
    policy that can evict the audit log, are listed under "warnings" and leave the status alone.
    """
    state = app_state(request)
    breaker = state.redis_health.state
    reachable = await is_reachable(state.redis)
    checks = {
        "redis": "ok" if reachable else "unreachable",
        "redis_breaker": breaker.name.lower(),
        "redis_eviction_policy": await eviction_policy(state.redis) if reachable else UNKNOWN,
    }
    degraded = checks["redis"] != "ok" or breaker is not BreakerState.CLOSED
    body: dict[str, object] = {"status": "degraded" if degraded else "ready", "checks": checks}
    warning = policy_warning(checks["redis_eviction_policy"])
    if warning is not None:
        body["warnings"] = [warning]
    return Response(orjson.dumps(body), media_type="application/json")
