"""Parsing the stats window: instants, durations, defaults and the errors naming the bad parameter."""

from __future__ import annotations

import pytest

from llmproxy.telemetry.duration import parse_duration as admin_duration
from llmproxy.telemetry.timerange import (
    MAX_BUCKETS,
    TARGET_BUCKETS,
    StatsWindow,
    TimeRangeError,
    default_bucket_ms,
    parse_duration,
    parse_instant,
    parse_window,
)

NOW_MS = 1_718_000_000_000  # 2024-06-10T06:13:20Z


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("now", NOW_MS),
        ("-1h", NOW_MS - 3_600_000),
        ("now-30m", NOW_MS - 1_800_000),
        ("-90", NOW_MS - 90_000),
        ("1717990000", 1_717_990_000_000),
        ("1717990000.25", 1_717_990_000_250),
        ("2024-06-10T06:00:00Z", 1_717_999_200_000),
        ("2024-06-10T08:00:00+02:00", 1_717_999_200_000),
        ("2024-06-10T06:00:00", 1_717_999_200_000),  # no zone: UTC
        ("2024-06-10", 1_717_977_600_000),
    ],
)
def test_instants_in_every_accepted_form(text: str, expected_ms: int) -> None:
    assert parse_instant("from", text, NOW_MS) == expected_ms


@pytest.mark.parametrize("text", ["yesterday", "1h", "--1h", "-1y", "2024-13-01", "", "-1.5h", "99999999999999"])
def test_bad_instants_name_their_parameter(text: str) -> None:
    with pytest.raises(TimeRangeError) as raised:
        parse_instant("to", text, NOW_MS)
    assert raised.value.param == "to"


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [("60", 60_000), ("90s", 90_000), ("5m", 300_000), ("1h", 3_600_000), ("2d", 172_800_000), ("1w", 604_800_000)],
)
def test_durations_default_to_seconds(text: str, expected_ms: int) -> None:
    assert parse_duration("bucket", text) == expected_ms


@pytest.mark.parametrize("text", ["0", "0s", "-5m", "1.5m", "5 minutes", "m", "", "999999999999w", "9999999999d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(TimeRangeError) as raised:
        parse_duration("bucket", text)
    assert raised.value.param == "bucket"


def test_defaults_are_the_last_hour_in_thirty_second_buckets() -> None:
    assert parse_window(None, None, None, NOW_MS) == StatsWindow(NOW_MS - 3_600_000, NOW_MS, 30_000)


def test_explicit_window_and_bucket() -> None:
    window = parse_window("-1d", "now", "15m", NOW_MS)
    assert window == StatsWindow(NOW_MS - 86_400_000, NOW_MS, 900_000)


def test_from_defaults_to_an_hour_before_to() -> None:
    assert parse_window(None, "-1d", None, NOW_MS).from_ms == NOW_MS - 86_400_000 - 3_600_000


@pytest.mark.parametrize(("start", "end"), [("now", "-1h"), ("-1h", "-1h")])
def test_from_must_be_before_to(start: str, end: str) -> None:
    with pytest.raises(TimeRangeError) as raised:
        parse_window(start, end, None, NOW_MS)
    assert raised.value.param == "from"


def test_too_many_buckets_is_refused() -> None:
    with pytest.raises(TimeRangeError) as raised:
        parse_window("-30d", None, "1s", NOW_MS)
    assert raised.value.param == "bucket" and str(MAX_BUCKETS) in raised.value.message


@pytest.mark.parametrize("span_ms", [1_000, 60_000, 3_600_000, 86_400_000, 30 * 86_400_000, 3_000 * 86_400_000])
def test_default_bucket_makes_at_most_the_target_number_of_buckets(span_ms: int) -> None:
    bucket_ms = default_bucket_ms(span_ms)
    assert bucket_ms % 1_000 == 0
    assert -(-span_ms // bucket_ms) <= TARGET_BUCKETS


@pytest.mark.parametrize(("text", "expected_ms"), [("2H", 7_200_000), (" 2 h ", 7_200_000), ("90S", 90_000)])
def test_durations_follow_the_one_grammar_of_the_admin_api(text: str, expected_ms: int) -> None:
    # The same grammar as older_than (telemetry/duration.py), in whole numbers.
    assert parse_duration("bucket", text) == expected_ms
    assert admin_duration(text) * 1_000 == expected_ms
