"""Retry decisions: which failures are retried, full-jitter backoff, and Retry-After (seconds or HTTP date)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from llmproxy.settings import UpstreamSettings
from llmproxy.upstream.retry import Failure, RetryPolicy, backoff_s, parse_retry_after, retry_delay

POLICY = RetryPolicy(max_retries=2, backoff_base_s=0.2, backoff_max_s=5.0, retry_after_max_s=10.0)
NOW = 1_700_000_000.0


def highest(low: float, high: float) -> float:
    """`uniform` stand-in that always draws the top of the range."""
    return high


def test_policy_comes_from_the_upstream_settings() -> None:
    settings = UpstreamSettings(max_retries=4, retry_backoff_base_s=0.5, retry_backoff_max_s=2, retry_after_max_s=3)
    assert RetryPolicy.from_settings(settings) == RetryPolicy(4, 0.5, 2.0, 3.0)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_s(POLICY, n, highest) for n in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert backoff_s(POLICY, 10_000, highest) == 5.0


def test_backoff_is_full_jitter_from_zero() -> None:
    ranges: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        ranges.append((low, high))
        return low

    assert backoff_s(POLICY, 1, record) == 0.0
    assert ranges == [(0.0, 0.4)]


@pytest.mark.parametrize("status", [None, 429, 502, 503, 529])
def test_connection_failures_and_429_502_503_529_are_retried_with_backoff(status: int | None) -> None:
    assert retry_delay(POLICY, 0, Failure(status), NOW, highest) == 0.2
    assert retry_delay(POLICY, 1, Failure(status), NOW, highest) == 0.4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 422, 500, 501, 504])
def test_other_statuses_are_not_retried(status: int) -> None:
    assert retry_delay(POLICY, 0, Failure(status, retry_after="1"), NOW, highest) is None


def test_no_retry_once_max_retries_were_made() -> None:
    assert retry_delay(POLICY, 2, Failure(503), NOW, highest) is None
    assert retry_delay(RetryPolicy(0, 0.2, 5, 10), 0, Failure(None), NOW, highest) is None


def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    assert retry_delay(POLICY, 0, Failure(429, retry_after="3"), NOW, highest) == 3.0
    assert retry_delay(POLICY, 0, Failure(503, retry_after="0"), NOW, highest) == 0.0


def test_retry_after_above_the_cap_is_not_waited_out() -> None:
    assert retry_delay(POLICY, 0, Failure(429, retry_after="11"), NOW, highest) is None
    assert retry_delay(POLICY, 0, Failure(429, retry_after="10"), NOW, highest) == 10.0


def test_retry_after_ms_is_read_first() -> None:
    failure = Failure(429, retry_after="7", retry_after_ms="250")
    assert retry_delay(POLICY, 0, failure, NOW, highest) == 0.25
    unreadable_ms = Failure(429, retry_after="7", retry_after_ms="soon")
    assert retry_delay(POLICY, 0, unreadable_ms, NOW, highest) == 7.0


def test_unreadable_retry_after_falls_back_to_the_backoff() -> None:
    assert retry_delay(POLICY, 0, Failure(429, retry_after="in a while"), NOW, highest) == 0.2


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("2", 2.0), (" 1.5 ", 1.5), ("-1", None), ("nan", None), ("inf", None), ("", None), ("x", None)],
)
def test_retry_after_in_seconds(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(datetime.fromtimestamp(NOW + 4, UTC), usegmt=True)
    assert later.endswith("GMT")
    assert parse_retry_after(later, NOW) == pytest.approx(4.0)
    earlier = format_datetime(datetime.fromtimestamp(NOW - 60, UTC), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000", NOW) == 0.0


def test_failure_names_its_retry_reason() -> None:
    assert [Failure(None).reason, Failure(429).reason, Failure(503).reason] == ["connection", "429", "503"]
