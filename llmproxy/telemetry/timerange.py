"""The time window of a stats query, from `from`, `to` and `bucket` as an operator types them (pure).

Instants: epoch seconds (`1718000000`), ISO-8601 (`2024-06-10T06:00:00Z`; no zone means UTC), `now`, or
relative to now (`-1h`, `now-30m`). Durations: the one grammar of telemetry/duration.py, in whole numbers
(`60`, `90s`, `5m`, `1h`, `2d`, `1w`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from llmproxy.telemetry.duration import parse_whole_duration_ms

DEFAULT_SPAN_MS = 3_600_000
TARGET_BUCKETS = 120  # a default bucket makes at most this many points: enough for a chart
MAX_BUCKETS = 10_000
# Buckets a default is chosen from, in seconds: round numbers a chart axis can show.
NICE_BUCKETS_S = (1, 5, 10, 30, 60, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400, 604_800)
_RELATIVE = re.compile(r"(?:now)?-(\S.*)")
_EPOCH = re.compile(r"\d{1,12}(?:\.\d{1,6})?")
_LATEST_MS = int(datetime(9999, 1, 1, tzinfo=UTC).timestamp() * 1_000)  # ISO dates have 4-digit years


class TimeRangeError(ValueError):
    """A query parameter that is not a valid instant, duration or window; `param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True, slots=True)
class StatsWindow:
    """The half-open window [from_ms, to_ms) cut into buckets of bucket_ms."""

    from_ms: int
    to_ms: int
    bucket_ms: int


def parse_window(from_text: str | None, to_text: str | None, bucket_text: str | None, now_ms: int) -> StatsWindow:
    """The window the parameters ask for; unset ones default to the last hour in at most ~120 buckets.

    Raises:
        TimeRangeError: a value does not parse, from is not before to, or the window has too many buckets.
    """
    to_ms = now_ms if to_text is None else parse_instant("to", to_text, now_ms)
    from_ms = to_ms - DEFAULT_SPAN_MS if from_text is None else parse_instant("from", from_text, now_ms)
    if from_ms >= to_ms:
        raise TimeRangeError("from", f"'from' must be before 'to' ({from_text or 'default'} >= {to_text or 'now'}).")
    if bucket_text is None:
        return StatsWindow(from_ms, to_ms, default_bucket_ms(to_ms - from_ms))
    bucket_ms = parse_duration("bucket", bucket_text)
    buckets = math.ceil((to_ms - from_ms) / bucket_ms)
    if buckets > MAX_BUCKETS:
        raise TimeRangeError("bucket", f"'bucket' {bucket_text} makes {buckets} buckets; at most {MAX_BUCKETS}.")
    return StatsWindow(from_ms, to_ms, bucket_ms)


def parse_instant(param: str, text: str, now_ms: int) -> int:
    """An instant in epoch milliseconds.

    Raises:
        TimeRangeError: text is none of the accepted forms, or lies outside years 1970-9999.
    """
    value = text.strip()
    if value == "now":
        instant = now_ms
    elif relative := _RELATIVE.fullmatch(value):
        instant = now_ms - parse_duration(param, relative.group(1))
    elif _EPOCH.fullmatch(value):
        instant = round(float(value) * 1_000)
    else:
        instant = _parse_iso(param, value)
    if not 0 <= instant < _LATEST_MS:
        raise TimeRangeError(param, f"'{param}' {text!r} is outside the years 1970-9999.")
    return instant


def parse_duration(param: str, text: str) -> int:
    """A positive duration in milliseconds.

    Raises:
        TimeRangeError: text is not a whole number with an optional unit s, m, h, d or w, is zero, or is longer
            than the years 1970-9999.
    """
    try:
        duration_ms = parse_whole_duration_ms(text)
    except ValueError:
        raise TimeRangeError(param, f"'{param}' {text!r} is not a duration such as 60, 90s, 5m, 1h or 1d.") from None
    if duration_ms <= 0:
        raise TimeRangeError(param, f"'{param}' must be longer than zero.")
    if duration_ms > _LATEST_MS:  # longer than any window, and past what RedisTimeSeries reads as a number
        raise TimeRangeError(param, f"'{param}' {text!r} is longer than the years 1970-9999.")
    return duration_ms


def default_bucket_ms(span_ms: int) -> int:
    """The smallest round bucket that cuts span_ms into at most TARGET_BUCKETS buckets."""
    for bucket_s in NICE_BUCKETS_S:
        if span_ms <= bucket_s * 1_000 * TARGET_BUCKETS:
            return bucket_s * 1_000
    days = math.ceil(span_ms / (TARGET_BUCKETS * 86_400_000))
    return days * 86_400_000


def _parse_iso(param: str, text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TimeRangeError(
            param, f"'{param}' {text!r} is not epoch seconds, ISO-8601, 'now' or relative like -1h."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1_000)
