"""Durations as operators write them: `3600`, `90s`, `15m`, `2h`, `7d`, `1w` (pure)."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(value: str | int | float) -> float:
    """Seconds in a duration: a number of seconds, or a number followed by one unit (s, m, h, d, w).

    Raises:
        ValueError: negative, not finite, or not in one of those forms.
    """
    if isinstance(value, bool):  # bool is an int to Python, never a duration to an operator
        raise ValueError("must be a number of seconds or a duration such as 90s, 15m, 2h, 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value.lower())
        if match is None:
            raise ValueError("must be a number of seconds or a duration such as 90s, 15m, 2h, 7d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("must be a finite, non-negative duration")
    return seconds
