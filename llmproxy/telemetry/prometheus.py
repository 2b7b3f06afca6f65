"""Prometheus metrics of the proxy, and their exposition (single process or uvicorn's several workers).

With several workers each process writes its samples to files in $PROMETHEUS_MULTIPROC_DIR (the client's
multiprocess mode, set by `llmproxy serve` before the workers start); a scrape, answered by any worker,
merges them. Metrics about Redis as a whole are read by whichever worker answers the scrape.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from llmproxy.settings import DEFAULT_UPSTREAM
from llmproxy.telemetry.audit_metrics import AuditMetrics
from llmproxy.telemetry.labels import BoundedLabels
from llmproxy.trace import RequestTrace

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
NO_ROUTE = "none"  # L1 hits and requests that failed before routing
# From a sub-millisecond L1 hit to a long generation.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One sample of a metric as a scrape would show it: its labels and value."""

    labels: Mapping[str, str]
    value: float


class RedisSnapshot:
    """The latest figures sampled from Redis (INFO, index sizes); read at scrape time, never fetched by it."""

    def __init__(self) -> None:
        self.evicted_keys: int | None = None
        self.expired_keys: int | None = None
        self.used_memory_bytes: int | None = None
        self.entries: int | None = None


class RedisSnapshotCollector(Collector):
    """Exposes a RedisSnapshot; a scrape never waits on Redis."""

    def __init__(self, snapshot: RedisSnapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot
        if snapshot.evicted_keys is not None:
            yield CounterMetricFamily(
                "llmproxy_redis_evicted_keys", "Keys Redis evicted under maxmemory (INFO stats).", snapshot.evicted_keys
            )
        if snapshot.expired_keys is not None:
            yield CounterMetricFamily(
                "llmproxy_redis_expired_keys", "Keys Redis expired by TTL (INFO stats).", snapshot.expired_keys
            )
        if snapshot.used_memory_bytes is not None:
            yield GaugeMetricFamily(
                "llmproxy_redis_used_memory_bytes", "Memory Redis uses (INFO memory).", snapshot.used_memory_bytes
            )
        if snapshot.entries is not None:
            yield GaugeMetricFamily("llmproxy_cache_entries", "Cached answers listed in the catalog.", snapshot.entries)


class ProxyMetrics:
    """Every metric the proxy exports, registered in a registry of its own (one per app)."""

    def __init__(self, snapshot: RedisSnapshot | None = None, max_model_labels: int = 100) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.snapshot = snapshot or RedisSnapshot()
        self._snapshot_collector = RedisSnapshotCollector(self.snapshot)
        self.registry.register(self._snapshot_collector)
        registry = self.registry
        self.requests = Counter(
            "llmproxy_requests",
            "Requests by endpoint, model, cache result (hit_l1, hit_l2, miss, bypass, error) and route.",
            ["endpoint", "model", "result", "route"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "llmproxy_request_duration_seconds",
            "Time from request arrival to the last response byte, by endpoint and cache result.",
            ["endpoint", "result"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.stage_duration = Histogram(
            "llmproxy_stage_duration_seconds",
            "Time spent per pipeline stage: l1, embed, router, l2, upstream, write, total.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.first_byte = Histogram(
            "llmproxy_stream_first_byte_seconds",
            "Streams: time from request arrival to the first body bytes sent, by cache result.",
            ["result"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_responses = Counter(
            "llmproxy_upstream_responses",
            "Responses from upstreams by upstream name and HTTP status.",
            ["upstream", "status"],
            registry=registry,
        )
        self.upstream_retries = Counter(
            "llmproxy_upstream_retries",
            "Upstream attempts retried, by upstream and reason (connection, 429, 502, 503, 529).",
            ["upstream", "reason"],
            registry=registry,
        )
        # Several workers each have a breaker; the states are ordered by severity, so the merged value is the worst.
        self.breaker_state = Gauge(
            "llmproxy_upstream_breaker_state",
            "Circuit breaker of each upstream: 0 closed, 1 half-open, 2 open (several workers: the worst).",
            ["upstream"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.breaker_opened = Counter(
            "llmproxy_upstream_breaker_opened",
            "Times the circuit breaker of an upstream opened (or re-opened after a failed trial).",
            ["upstream"],
            registry=registry,
        )
        self.cross_shard_search = Gauge(
            "llmproxy_redis_cross_shard_search",
            "Redis Cluster only: 1 when its query engine searches across shards (L2 and the catalog on the "
            "cluster), 0 when it does not (they live on redis.search_url, or are off: exact matches only).",
            multiprocess_mode="livemin",
            registry=registry,
        )
        self.redis_breaker_state = Gauge(
            "llmproxy_redis_breaker_state",
            "Circuit breaker of the request path's Redis: 0 closed, 1 half-open, 2 open (requests skip the cache).",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.cache_writes = Counter(
            "llmproxy_cache_writes",
            "Write-backs of upstream answers: stored, incomplete (not cacheable), too_large (over "
            "cache.max_entry_bytes), rejected_oom (Redis full: maxmemory under noeviction) or failed (Redis error).",
            ["outcome"],
            registry=registry,
        )
        self.write_timing = Counter(
            "llmproxy_cache_write_timing",
            "Write-backs of JSON answers, by when they ran: after_response (the answer was sent first) or "
            "before_response (cache.max_pending_writes were already waiting).",
            ["when"],
            registry=registry,
        )
        self.invalidated = Counter(
            "llmproxy_cache_invalidated_entries",
            "Entries deleted through the admin API, by invalidation mode.",
            ["mode"],
            registry=registry,
        )
        self.cached_tokens = Counter(
            "llmproxy_cached_tokens",
            "Tokens served from cache instead of the upstream, by model and kind (prompt or completion).",
            ["model", "kind"],
            registry=registry,
        )
        self.cost_saved = Counter(
            "llmproxy_cost_saved_usd",
            "Estimated upstream cost of the answers served from cache, in US dollars (metrics.prices).",
            ["model"],
            registry=registry,
        )
        self.errors = Counter(
            "llmproxy_errors",
            "Redis and embedder errors on the request path, by component and operation.",
            ["component", "operation"],
            registry=registry,
        )
        self.fail_open = Counter(
            "llmproxy_fail_open",
            "Requests answered without (part of) the cache because a component failed, by component.",
            ["component"],
            registry=registry,
        )
        self.bypasses = Counter(
            "llmproxy_cache_bypass",
            "Requests that did not use the cache, by reason (redis-unavailable, redis-pool-exhausted, cache-control, "
            "route).",
            ["reason"],
            registry=registry,
        )
        self.router_undecided = Counter(
            "llmproxy_router_undecided",
            "Requests the router could not decide (never cached), by reason (timeout, embedder-error, too-long).",
            ["reason"],
            registry=registry,
        )
        self.single_flight = Counter(
            "llmproxy_single_flight",
            "Misses that took part in single-flight, by role (leader, follower_local, follower_remote) and outcome "
            "(stored, not_stored; served, leader_gone, timeout; redis_error).",
            ["role", "outcome"],
            registry=registry,
        )
        self.single_flight_wait = Histogram(
            "llmproxy_single_flight_wait_seconds",
            "Time followers waited for the leader's answer, by role.",
            ["role"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.audit = AuditMetrics(registry, BoundedLabels(max_model_labels))
        self.timeseries_samples = Counter(
            "llmproxy_timeseries_samples",
            "History samples for RedisTimeSeries: written, dropped (queue full) or failed (Redis error).",
            ["outcome"],
            registry=registry,
        )

    def observe(self, trace: RequestTrace, model: str, total_s: float, cost_usd: float) -> None:
        """Count one finished request; model is already bounded (see BoundedLabels)."""
        result = trace.result
        self._child(self.requests, trace.endpoint, model, result, trace.route or NO_ROUTE).inc()
        self._child(self.request_duration, trace.endpoint, result).observe(total_s)
        for stage, seconds in trace.stages.items():
            self._child(self.stage_duration, stage).observe(seconds)
        self._child(self.stage_duration, "total").observe(total_s)
        if trace.first_byte_s is not None:
            self._child(self.first_byte, result).observe(trace.first_byte_s)
        if trace.upstream_status is not None:
            self._child(self.upstream_responses, trace.upstream or DEFAULT_UPSTREAM, str(trace.upstream_status)).inc()
        if trace.write is not None:
            self._child(self.cache_writes, trace.write).inc()
        if trace.write_timing is not None:
            self._child(self.write_timing, trace.write_timing).inc()
        if trace.bypass_reason is not None:
            self._child(self.bypasses, trace.bypass_reason).inc()
        if trace.route_undecided is not None:
            self._child(self.router_undecided, trace.route_undecided).inc()
        if trace.cached_usage is not None:
            self._child(self.cached_tokens, model, "prompt").inc(trace.cached_usage.prompt_tokens)
            self._child(self.cached_tokens, model, "completion").inc(trace.cached_usage.completion_tokens)
            self._child(self.cost_saved, model).inc(cost_usd)
        for component, operation in trace.errors:
            self._child(self.errors, component, operation).inc()
        for component in {component for component, _ in trace.errors}:
            self._child(self.fail_open, component).inc()
        if trace.flight is not None:
            self._child(self.single_flight, trace.flight.role, trace.flight.outcome).inc()
            if trace.flight.role != "leader":
                self._child(self.single_flight_wait, trace.flight.role).observe(trace.flight.wait_s)

    def count_retry(self, upstream: str, reason: str) -> None:
        """One upstream attempt retried (reason: connection, 429, 502 or 503)."""
        self._child(self.upstream_retries, upstream, reason).inc()

    def set_breaker_state(self, upstream: str, state: int, opened: bool) -> None:
        """The breaker of an upstream changed state (0 closed, 1 half-open, 2 open)."""
        self._child(self.breaker_state, upstream).set(state)
        if opened:
            self._child(self.breaker_opened, upstream).inc()

    def set_cross_shard_search(self, available: bool) -> None:
        """What the startup probe found on a Redis Cluster."""
        self.cross_shard_search.set(1 if available else 0)

    def set_redis_breaker_state(self, state: int) -> None:
        """The Redis breaker changed state (0 closed, 1 half-open, 2 open)."""
        self.redis_breaker_state.set(state)

    def _child(self, metric: Counter | Gauge | Histogram, *labels: str) -> Any:
        # `labels()` validates and locks on every call (about half the cost of a request's metrics); the label
        # sets are bounded, so each child is looked up once and kept.
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The scrape body and its content type (OpenMetrics when the scraper asks for it)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._scrape_registry()), content_type

    def samples(self, name: str) -> list[MetricSample]:
        """Every sample named `name` (e.g. `llmproxy_fail_open_total`), merged over all workers like a scrape."""
        return [
            MetricSample(dict(sample.labels), sample.value)
            for family in self._scrape_registry().collect()
            for sample in family.samples
            if sample.name == name
        ]

    def _scrape_registry(self) -> CollectorRegistry:
        directory = os.environ.get(MULTIPROC_DIR_ENV)
        if not directory:
            return self.registry
        # Several workers: merge every process's files; this process's own registry would count twice.
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        merged.register(self._snapshot_collector)
        return merged
