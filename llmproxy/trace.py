"""RequestTrace: what happened to one request, filled in along the pipeline and reported once at its end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

Stage = Literal["l1", "embed", "router", "l2", "verify", "upstream", "write"]  # verify: within l2
Result = Literal["hit_l1", "hit_l2", "miss", "bypass", "error"]
WriteOutcome = Literal["stored", "incomplete", "too_large", "rejected_oom", "failed"]
WriteTiming = Literal["after_response", "before_response"]
Component = Literal["redis", "embedder"]
FlightRole = Literal["leader", "follower_local", "follower_remote"]
# leader: stored | not_stored; followers: served | leader_gone | timeout; any role: redis_error (went upstream).
FlightOutcome = Literal["stored", "not_stored", "served", "leader_gone", "timeout", "redis_error"]


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts of one answer, as its `usage` object reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class FlightRecord:
    """The part one request played in single-flight, and how it ended."""

    role: FlightRole
    outcome: FlightOutcome
    wait_s: float = 0.0  # followers: seconds spent waiting for the leader


@dataclass(slots=True)
class RequestTrace:
    """Mutable on purpose: each pipeline step adds what it learnt; nothing reads it before the request ends."""

    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    model: str = ""
    stream: bool = False
    result: Result = "bypass"
    route: str = ""
    status: int = 200
    stages: dict[Stage, float] = field(default_factory=dict)
    first_byte_s: float | None = None  # streams: seconds from arrival to the first body bytes sent
    upstream: str | None = None  # name of the upstream that answered ("default" or a named one)
    upstream_status: int | None = None
    cached_usage: TokenUsage | None = None  # on a hit: the tokens the cached answer would have cost
    write: WriteOutcome | None = None
    write_timing: WriteTiming | None = None  # JSON answers: whether the write-back ran after the response was sent
    ended_s: float | None = None  # seconds from arrival to the response, when work goes on after it (a write-back)
    bypass_reason: str | None = None  # why a BYPASS did not use the cache (X-Cache-Bypass-Reason)
    route_undecided: str | None = None  # why routes in force could not decide (timeout, embedder-error, too-long)
    errors: list[tuple[Component, str]] = field(default_factory=list)  # (component, operation), failed open
    flight: FlightRecord | None = None  # set when the miss took part in single-flight

    def failed(self, component: Component, operation: str) -> None:
        """Note an error the request survived by skipping (part of) the cache."""
        self.errors.append((component, operation))

    @contextmanager
    def timing(self, stage: Stage) -> Iterator[None]:
        """Add the time spent in the block to `stage` (a stage may run more than once, e.g. two Redis reads)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[stage] = self.stages.get(stage, 0.0) + time.perf_counter() - start

    def elapsed(self) -> float:
        """Seconds since the request arrived."""
        return time.perf_counter() - self.started

    def duration(self) -> float:
        """Seconds from arrival to the end of the response (work after it, such as a write-back, not counted)."""
        return self.ended_s if self.ended_s is not None else self.elapsed()
