"""When to retry an upstream request, and after how long: full-jitter backoff and Retry-After (pure).

Only answers that prove the request did not run are retried: 429, 502, 503 and Anthropic's 529
(`overloaded_error`), and connection failures before any response. A 500 or 504 may have run (and been
billed), and other 4xx fail again the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from llmproxy.settings import UpstreamSettings

RETRYABLE_STATUSES = frozenset({429, 502, 503, 529})
CONNECTION = "connection"  # the retry reason of a failure before any response

Uniform = Callable[[float, float], float]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many retries, and how long to wait before each."""

    max_retries: int
    backoff_base_s: float
    backoff_max_s: float
    retry_after_max_s: float

    @classmethod
    def from_settings(cls, settings: UpstreamSettings) -> RetryPolicy:
        """The policy of one upstream."""
        return cls(
            max_retries=settings.max_retries,
            backoff_base_s=settings.retry_backoff_base_s,
            backoff_max_s=settings.retry_backoff_max_s,
            retry_after_max_s=settings.retry_after_max_s,
        )


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong with one attempt: a status (None: no response at all) and its Retry-After headers."""

    status: int | None
    retry_after: str | None = None
    retry_after_ms: str | None = None  # OpenAI's millisecond variant, which its SDKs read first

    @property
    def reason(self) -> str:
        """The metric label of a retry caused by this failure."""
        return CONNECTION if self.status is None else str(self.status)


def retry_delay(
    policy: RetryPolicy, retries_done: int, failure: Failure, now: float, uniform: Uniform = random.uniform
) -> float | None:
    """Seconds to wait before retrying, or None when this failure is not to be retried.

    `now` is the wall clock (Unix seconds), for a Retry-After given as an HTTP date.
    """
    if retries_done >= policy.max_retries:
        return None
    if failure.status is not None and failure.status not in RETRYABLE_STATUSES:
        return None
    asked = retry_after_s(failure, now)
    if asked is None:
        return backoff_s(policy, retries_done, uniform)
    # Beyond the cap the caller is better served by the 429 itself (and its Retry-After) than by waiting.
    return asked if asked <= policy.retry_after_max_s else None


def backoff_s(policy: RetryPolicy, retries_done: int, uniform: Uniform = random.uniform) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**n)], so that many clients do not retry in step."""
    ceiling = min(policy.backoff_max_s, policy.backoff_base_s * 2.0 ** min(retries_done, 32))
    return uniform(0.0, ceiling)


def retry_after_s(failure: Failure, now: float) -> float | None:
    """The wait the upstream asked for, from `retry-after-ms` or `Retry-After`; None when absent or unreadable."""
    if failure.retry_after_ms is not None:
        milliseconds = _seconds(failure.retry_after_ms)
        if milliseconds is not None:
            return milliseconds / 1000
    if failure.retry_after is None:
        return None
    return parse_retry_after(failure.retry_after, now)


def parse_retry_after(value: str, now: float) -> float | None:
    """A Retry-After value (delay in seconds, or an HTTP date) as seconds from `now`; None when unreadable."""
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses as zone-less
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    # nan and inf parse as floats too.
    return seconds if 0 <= seconds < float("inf") else None
