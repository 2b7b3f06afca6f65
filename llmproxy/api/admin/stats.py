"""GET /admin/stats?from=&to=&bucket=: hit rate, requests, latency, tokens and cost saved over time, as JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmproxy.api.admin.auth import require_admin
from llmproxy.api.context import app_state
from llmproxy.cache.shadow.estimate import Tally
from llmproxy.cache.shadow.ledger import AuditLedger
from llmproxy.errors import InvalidRequestError, ServiceUnavailableError
from llmproxy.settings import SemanticSettings
from llmproxy.store.errors import CacheUnavailableError
from llmproxy.telemetry.stats import Figures, Stats, plan_query, summarize
from llmproxy.telemetry.timerange import TimeRangeError, parse_window
from llmproxy.telemetry.timeseries import HistoryError

UNAVAILABLE = "history_unavailable"


async def traffic_stats(request: Request) -> Response:
    """The traffic history over a window, read from RedisTimeSeries.

    Raises:
        PermissionDeniedError: no admin token is configured.
        AuthenticationError: the bearer token is missing or wrong.
        InvalidRequestError: from, to or bucket is invalid (`param` names it).
        ServiceUnavailableError: the history is disabled, or Redis could not be read.
    """
    state = app_state(request)
    require_admin(request, state.settings.admin)
    if state.history is None:
        raise ServiceUnavailableError(
            "Traffic history is off: timeseries.enabled is false or the Redis has no TimeSeries.", code=UNAVAILABLE
        )
    now_ms = int(state.clock() * 1_000)
    params = request.query_params
    try:
        window = parse_window(params.get("from"), params.get("to"), params.get("bucket"), now_ms)
    except TimeRangeError as exc:
        raise InvalidRequestError(exc.message, param=exc.param, code="invalid_time_range") from exc
    plan = plan_query(window, state.history.store.levels, now_ms)
    try:
        rows = await state.history.store.query(plan)
    except HistoryError as exc:
        raise ServiceUnavailableError(f"Traffic history could not be read: {exc}", code=UNAVAILABLE) from exc
    body = _render(summarize(plan, rows))
    if state.admin.ledger is not None:
        body["l2_precision"] = await _precision(state.admin.ledger, state.settings.semantic)
    return Response(orjson.dumps(body), media_type="application/json")


async def _precision(ledger: AuditLedger, settings: SemanticSettings) -> dict[str, Any]:
    """Shadow verification's estimate per model, over every audit so far (not the window): precision with its
    Wilson 95% bounds, the counts it comes from, and the effective threshold.

    Raises:
        ServiceUnavailableError: Redis could not be read.
    """
    try:
        tallies = await ledger.tallies()
    except CacheUnavailableError as exc:
        raise ServiceUnavailableError(f"The L2 audit ledger could not be read: {exc}", code=UNAVAILABLE) from exc
    budgeted = settings.max_error_rate is not None
    return {model: _model_precision(tally, settings.model_thresholds.get(model, settings.threshold), budgeted)
            for model, tally in tallies.items()}  # fmt: skip


def _model_precision(tally: Tally, configured: float, budgeted: bool) -> dict[str, Any]:
    precision = tally.precision()
    effective = tally.threshold if budgeted and tally.threshold is not None else configured
    return {
        "audited": tally.agree + tally.disagree,
        "agree": tally.agree,
        "disagree": tally.disagree,
        "errors": tally.errors,
        "precision": None if precision is None else round(precision.value, 4),
        "precision_low": None if precision is None else round(precision.low, 4),
        "precision_high": None if precision is None else round(precision.high, 4),
        "threshold": configured,
        "effective_threshold": effective,
    }


def _render(stats: Stats) -> dict[str, Any]:
    """The JSON body of a stats answer."""
    plan = stats.plan
    return {
        "from": _iso(plan.from_ms),
        "to": _iso(plan.to_ms),
        "bucket_s": plan.bucket_ms // 1_000,
        "resolution": plan.resolution.name,
        "totals": _figures(stats.totals),
        "buckets": [{"start": _iso(start), "start_ms": start, **_figures(bucket)} for start, bucket in stats.buckets],
        "by_model": {
            model: {
                "requests": model_figures.requests,
                "hits": model_figures.hits,
                "tokens_saved": model_figures.tokens_saved,
                "cost_saved_usd": model_figures.cost_saved_usd,
            }
            for model, model_figures in stats.by_model.items()
        },
    }


def _figures(values: Figures) -> dict[str, Any]:
    """One bucket's (or the window's) figures as JSON fields."""
    return {
        "requests": values.requests,
        "hits_l1": values.hits_l1,
        "hits_l2": values.hits_l2,
        "misses": values.misses,
        "bypasses": values.bypasses,
        "errors": values.errors,
        "hit_rate": values.hit_rate,
        "avg_latency_ms": values.avg_latency_ms,
        "tokens_saved": values.tokens_saved,
        "cost_saved_usd": values.cost_saved_usd,
    }


def _iso(timestamp_ms: int) -> str:
    """An epoch-ms instant as ISO-8601 UTC with a Z, to the millisecond."""
    moment = datetime.fromtimestamp(timestamp_ms / 1_000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
