"""Probes for orchestrators: /healthz (the process is up) and /readyz (Redis answers, upstream set)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.context import app_state
from llmproxy.errors import error_body
from llmproxy.redis_client import is_reachable


async def healthz(request: Request) -> Response:
    """Liveness: answers as long as the event loop runs."""
    return Response(orjson.dumps({"status": "ok"}), media_type="application/json")


async def readyz(request: Request) -> Response:
    """Readiness: 200 when Redis answers PING and an upstream is configured, else 503 with the failing checks."""
    state = app_state(request)
    checks = {
        "redis": "ok" if await is_reachable(state.redis) else "unreachable",
        "upstream": "ok" if state.settings.upstream.base_url else "not configured",
    }
    if all(value == "ok" for value in checks.values()):
        return Response(orjson.dumps({"status": "ready", "checks": checks}), media_type="application/json")
    failing = ", ".join(f"{name} {value}" for name, value in checks.items() if value != "ok")
    body = {**error_body(f"Not ready: {failing}.", "service_unavailable", code="not_ready"), "checks": checks}
    return Response(orjson.dumps(body), status_code=503, media_type="application/json")
