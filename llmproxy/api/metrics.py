"""GET /metrics: the Prometheus scrape endpoint (text format, or OpenMetrics when the scraper asks)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.context import app_state


async def metrics(request: Request) -> Response:
    """Every metric of the proxy (all workers' when several run)."""
    body, content_type = app_state(request).telemetry.metrics.exposition(request.headers.get("accept"))
    return Response(body, headers={"content-type": content_type})
