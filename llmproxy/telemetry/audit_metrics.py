"""The metrics of shadow verification: audited L2 hits by outcome, audits not made, effective thresholds."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from llmproxy.telemetry.labels import BoundedLabels

SIMILARITY_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0)


class AuditMetrics:
    """Registered in the proxy's registry; model labels are bounded like every other model label."""

    def __init__(self, registry: CollectorRegistry, models: BoundedLabels) -> None:
        self._models = models
        self.audits = Counter(
            "llmproxy_l2_audit",
            "L2 hits verified against a fresh upstream answer, by model and outcome (agree, disagree; error: the "
            "audit call or its bookkeeping failed, not counted in precision).",
            ["model", "outcome"],
            registry=registry,
        )
        self.skipped = Counter(
            "llmproxy_l2_audit_skipped",
            "L2 hits picked for verification but not verified, by reason (queue_full, minute_cap, dollar_cap).",
            ["reason"],
            registry=registry,
        )
        self.similarity = Histogram(
            "llmproxy_l2_audit_similarity",
            "Cosine similarity of the fresh and the served answers (non-deterministic requests).",
            buckets=SIMILARITY_BUCKETS,
            registry=registry,
        )
        self.threshold = Gauge(
            "llmproxy_l2_effective_threshold",
            "Effective L2 threshold per model after error-budget tightening (semantic.max_error_rate).",
            ["model"],
            multiprocess_mode="livemin",
            registry=registry,
        )

    def audited(self, model: str, outcome: str) -> None:
        """Count one audit's outcome."""
        self.audits.labels(self._models(model), outcome).inc()

    def set_threshold(self, model: str, threshold: float) -> None:
        """Show a model's effective threshold."""
        self.threshold.labels(self._models(model)).set(threshold)
