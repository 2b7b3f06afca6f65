"""Helpers for upstream fault tests: fake-upstream fault headers, and reading one metric of a proxy."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families


def failing(times: int, status: int = 503, retry_after: str | None = None) -> dict[str, str]:
    """Headers that make the fake fail this request's first `times` attempts, then answer normally."""
    headers = {"X-Fake-Request-Id": uuid.uuid4().hex, "X-Fake-Fail-Times": str(times), "X-Fake-Status": str(status)}
    return headers | ({"X-Fake-Retry-After": retry_after} if retry_after is not None else {})


def metric(proxy_url: str, name: str, **labels: str) -> float:
    """A sample from the proxy's /metrics; 0 when the series does not exist yet."""
    text = httpx.get(proxy_url + "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
