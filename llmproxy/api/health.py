"""Probes for orchestrators: /healthz (the process is up) and /readyz (ready, or degraded but serving)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.context import app_state
from llmproxy.breaker import BreakerState
from llmproxy.redis_client import is_reachable


async def healthz(request: Request) -> Response:
    """Liveness: answers as long as the event loop runs."""
    return Response(orjson.dumps({"status": "ok"}), media_type="application/json")


async def readyz(request: Request) -> Response:
    """Readiness: always 200 while serving; "degraded" when Redis is down (requests then bypass the cache).

    Taking the proxy out of service because its cache is down would turn a slower service into an outage:
    without Redis every request still reaches the upstream.
    """
    state = app_state(request)
    breaker = state.redis_health.state
    checks = {
        "redis": "ok" if await is_reachable(state.redis) else "unreachable",
        "redis_breaker": breaker.name.lower(),
    }
    degraded = checks["redis"] != "ok" or breaker is not BreakerState.CLOSED
    body = {"status": "degraded" if degraded else "ready", "checks": checks}
    return Response(orjson.dumps(body), media_type="application/json")
