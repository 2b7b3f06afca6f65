"""The fake upstream as a test sees it: one recorder's counts and call log, fault headers, one metric of a proxy.

A test owns a recorder of the shared fake (the `upstream` fixture): requests carrying its `headers` (X-Fake-Recorder)
count there and nowhere else, through a proxy too (the proxy forwards X-Fake-* headers to the fake).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llmproxy.fake_upstream.recorder import RECORDER_HEADER


class FakeUpstream:
    """The fake model server's control endpoints for one recorder: request counts and the call log.

    Requests count here when they carry `headers` (the test's clients send them; None: the fake's default recorder).
    """

    def __init__(self, base_url: str, recorder: str | None = None) -> None:
        self.base_url = base_url
        self.api_url = base_url + "/v1"
        self.headers: dict[str, str] = {} if recorder is None else {RECORDER_HEADER: recorder}

    def reset(self) -> None:
        httpx.post(self.base_url + "/_reset", headers=self.headers).raise_for_status()

    def calls(self, path: str = "/v1/chat/completions") -> int:
        counts: dict[str, int] = httpx.get(self.base_url + "/_stats", headers=self.headers).json()["requests"]
        return counts.get(path, 0)

    def requests(self) -> list[dict[str, Any]]:
        recorded: list[dict[str, Any]] = httpx.get(self.base_url + "/_requests", headers=self.headers).json()[
            "requests"
        ]
        return recorded


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
