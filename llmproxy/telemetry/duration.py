"""Durations as operators write them, one grammar for admin bodies and stats queries alike (pure).

A number of seconds (`3600`), or a number and one unit: `90s`, `15m`, `2h`, `7d`, `1w` (case and blanks around
the unit do not matter). Some places take whole numbers only (a stats bucket, `-1h` in a stats window).
"""

from __future__ import annotations

import math
import re

UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
FORMS = "a number of seconds or a duration such as 90s, 15m, 2h, 7d"
_DURATION = re.compile(r"(\d+)(\.\d+)?\s*([smhdw]?)")


def parse_duration(value: str | int | float) -> float:
    """Seconds in a duration: a number of seconds, or text in the grammar above (fractions allowed).

    Raises:
        ValueError: negative, not finite, or not in one of those forms.
    """
    if isinstance(value, bool):  # bool is an int to Python, never a duration to an operator
        raise ValueError(f"must be {FORMS}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        whole, fraction, unit = _parts(value)
        seconds = float(whole + (fraction or "")) * UNIT_SECONDS[unit]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("must be a finite, non-negative duration")
    return seconds


def parse_whole_duration_ms(text: str) -> int:
    """Milliseconds in a duration written with a whole number (`60`, `90s`, `5m`), which may be zero.

    Raises:
        ValueError: not in the grammar, or with a fraction.
    """
    whole, fraction, unit = _parts(text)
    if fraction is not None:
        raise ValueError("must be a whole number with an optional unit")
    return int(whole) * UNIT_SECONDS[unit] * 1_000


def _parts(text: str) -> tuple[str, str | None, str]:
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"must be {FORMS}")
    return match.group(1), match.group(2), match.group(3)
