"""Waiting for what the proxy finishes after its response (a JSON answer's write-back, the request's metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable

WRITE_BACK_WAIT_S = 15.0  # generous: a write-back is one Redis transaction, but CI machines stall


def eventually(condition: Callable[[], bool], within_s: float = WRITE_BACK_WAIT_S) -> bool:
    """Whether `condition` became true within `within_s` (polled; it returns as soon as it is)."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
