"""Bounded label values: callers choose model names, so metric label sets must not grow without limit (pure)."""

from __future__ import annotations

import threading

OTHER = "other"
UNKNOWN = "unknown"


class BoundedLabels:
    """Keeps the first `limit` distinct values; any later new value is reported as "other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        """The label to use for value."""
        if not value:
            return UNKNOWN
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return OTHER
