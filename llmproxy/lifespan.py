"""Opens and closes every long-lived resource of the app; yields them as AppState."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
from anyio.abc import TaskGroup
from starlette.applications import Starlette

from llmproxy.breaker import BreakerState, CircuitBreaker
from llmproxy.cache.catalog.audit import AuditLog
from llmproxy.cache.catalog.entry_view import EntryReader
from llmproxy.cache.catalog.index import Catalog
from llmproxy.cache.catalog.invalidation import Invalidator
from llmproxy.cache.exact import ExactCache
from llmproxy.cache.paraphrase import ParaphraseFinder
from llmproxy.cache.semantic import SemanticIndex, SemanticIndexError
from llmproxy.cache.shadow.comparison import Embed
from llmproxy.cache.shadow.ledger import AuditLedger
from llmproxy.cache.single_flight import SingleFlight
from llmproxy.cache.verifier import Verifier
from llmproxy.cache.writeback import WriteBack
from llmproxy.embeddings.embedder import Embedder, ModelLoader
from llmproxy.proxy.cache_steps import CacheSteps
from llmproxy.proxy.coalescing import Coalescer
from llmproxy.proxy.forwarder import Forwarder, Upstreams
from llmproxy.proxy.pipeline import Pipeline
from llmproxy.proxy.replies import Replies
from llmproxy.proxy.shadow_audit import ShadowAuditor
from llmproxy.routing import Router, RoutesError, load_routes
from llmproxy.settings import ANTHROPIC_UPSTREAM, DEFAULT_UPSTREAM, Settings, UpstreamSettings
from llmproxy.state import STATE_KEY, AdminTools, AppState
from llmproxy.store.errors import CacheUnavailableError
from llmproxy.store.eviction import check_eviction_policy
from llmproxy.store.health import RedisHealth
from llmproxy.store.redis_client import RedisClient, create_redis, create_standalone, is_reachable
from llmproxy.store.search_probe import searches_across_shards
from llmproxy.telemetry.audit_metrics import AuditMetrics
from llmproxy.telemetry.history import History, HistoryWriter
from llmproxy.telemetry.labels import BoundedLabels
from llmproxy.telemetry.pricing import PriceList
from llmproxy.telemetry.prometheus import ProxyMetrics
from llmproxy.telemetry.recorder import Telemetry
from llmproxy.telemetry.redis_sampler import sample_redis
from llmproxy.telemetry.timeseries import HistoryError, HistoryStore, TimeSeriesUnsupportedError
from llmproxy.upstream.attempts import UpstreamHooks
from llmproxy.upstream.client import ANTHROPIC_STYLE, UpstreamClient

logger = logging.getLogger(__name__)


def lifespan_for(
    settings: Settings, model_loader: ModelLoader
) -> Callable[[Starlette], AbstractAsyncContextManager[dict[str, AppState]]]:
    """The Starlette lifespan that builds AppState from settings.

    Raises:
        ValueError: settings.redis.url is unset outside sentinel mode (the embedded Redis must be started before the
            app).
    """
    redis_url = settings.redis.url
    if redis_url is None and settings.redis.mode != "sentinel":
        raise ValueError("create_app needs settings.redis.url; `llmproxy serve` starts the embedded Redis first")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        async with AsyncExitStack() as resources, anyio.create_task_group() as background:
            # 1. Redis: connect lazily, but say at startup whether it answers.
            redis = create_redis(settings.redis, redis_url)
            resources.push_async_callback(redis.aclose)
            if not await is_reachable(redis):
                logger.warning(
                    "Redis (%s) does not answer yet; requests bypass the cache until it does", where(settings)
                )
            await check_eviction_policy(redis)  # warns under a policy that can evict the audit log or history
            metrics = ProxyMetrics(max_model_labels=settings.metrics.max_model_labels)
            # Where the L2 index and the catalog live: beside the answers, on a search node of their own (a cluster
            # whose shards cannot search together), or nowhere (exact matches only).
            search = await open_search_redis(settings, redis, metrics, resources)
            hash_tags = settings.redis.mode == "cluster"
            # 2. The upstream connection pools: the default one, one per named upstream, and Anthropic's, each with
            # its own breaker and retries, reported to the metrics.
            upstreams = upstream_clients(settings, metrics)
            for family in upstreams.families.values():
                for client in family.values():
                    resources.push_async_callback(client.aclose)
            # 3. The semantic layer: model, batcher task, vector index, router (skipped when disabled).
            exact = ExactCache(redis, settings.redis.key_prefix, hash_tags)
            ledger = audit_ledger(settings, redis)
            semantic = await open_semantic_layer(settings, search, exact, model_loader, background, ledger)
            # 4. The catalog of cached answers, which the admin API lists and invalidates (needs no model).
            catalog = Catalog(search or redis, settings.redis.key_prefix, hash_tags, searchable=search is not None)
            await ensure_catalog(catalog)
            # 5. The request pipeline over all of it.
            # One breaker for the request path's Redis: outages anywhere open it, so requests stop waiting on it.
            redis_health = RedisHealth(
                breaker=CircuitBreaker(
                    failure_threshold=settings.redis.breaker_failure_threshold,
                    reset_s=settings.redis.breaker_reset_s,
                    clock=time.monotonic,
                    on_change=lambda state: metrics.set_redis_breaker_state(state.value),
                ),
                clock=time.monotonic,
            )
            write_back = WriteBack(
                redis=redis,
                exact=exact,
                index=semantic.index,
                clock=time.time,
                catalog=catalog if search is not None else None,
                health=redis_health,
                max_entry_bytes=settings.cache.max_entry_bytes,
                verifier=semantic.verifier,
                search=search,
            )
            audit_log = AuditLog(redis, settings.redis.key_prefix)
            shadow = None
            if ledger is not None and semantic.embedder is not None:
                shadow = ShadowParts(ledger, audit_log, semantic.embedder.embed, metrics.audit, background)
            pipeline = open_pipeline(
                settings,
                upstreams=upstreams,
                cache=CacheSteps(exact=exact, finder=semantic.finder, write_back=write_back, health=redis_health),
                router=semantic.router,
                flight=open_single_flight(settings, redis, background),
                shadow=shadow,
            )
            # 6. Telemetry: the Prometheus metrics (made in step 1), Redis-wide figures sampled in the background,
            # and the traffic history written to RedisTimeSeries by a background task, off the request path.
            history = await open_history(settings, redis, metrics, background, resources)
            telemetry = open_telemetry(settings, redis, metrics, history, catalog, background)
            # 7. The admin API's tools.
            admin = admin_tools(redis, settings.redis.key_prefix, catalog, semantic, metrics, search, ledger)
            state = AppState(
                settings=settings,
                redis=redis,
                upstreams=upstreams,
                pipeline=pipeline,
                clock=time.time,
                router=semantic.router,
                telemetry=telemetry,
                history=history,
                admin=admin,
                redis_health=redis_health,
            )
            # The model and libraries are millions of long-lived objects: keep them out of the garbage collector's
            # full passes, which otherwise stall the event loop for 100+ ms now and then (p99 of cache hits).
            gc.freeze()
            yield {STATE_KEY: state}
            background.cancel_scope.cancel()

    return lifespan


def upstream_clients(settings: Settings, metrics: ProxyMetrics) -> Upstreams:
    """The OpenAI family: the default upstream's client (key None) and one per named upstream; the Anthropic
    family: its one client (named `anthropic` in metrics)."""
    targets: dict[str | None, UpstreamSettings] = {None: settings.upstream}
    targets.update(settings.upstreams)
    openai = {
        name: UpstreamClient(target, hooks=upstream_hooks(name or DEFAULT_UPSTREAM, metrics))
        for name, target in targets.items()
    }
    anthropic = UpstreamClient(
        settings.anthropic, hooks=upstream_hooks(ANTHROPIC_UPSTREAM, metrics), style=ANTHROPIC_STYLE
    )
    return Upstreams({"openai": openai, "anthropic": {None: anthropic}})


@dataclass(frozen=True, slots=True)
class ShadowParts:
    """What shadow verification needs besides the forwarder; its workers run in `background`."""

    ledger: AuditLedger
    audit_log: AuditLog
    embed: Embed
    metrics: AuditMetrics
    background: TaskGroup


def audit_ledger(settings: Settings, redis: RedisClient) -> AuditLedger | None:
    """The shared audit ledger, or None when shadow verification is off (semantic.audit_rate 0)."""
    if not settings.semantic.enabled or settings.semantic.audit_rate <= 0:
        return None
    return AuditLedger(redis, settings.redis.key_prefix, clock=time.time, hash_tags=settings.redis.mode == "cluster")


def open_pipeline(
    settings: Settings,
    *,
    upstreams: Upstreams,
    cache: CacheSteps,
    router: Router | None,
    flight: SingleFlight | None,
    shadow: ShadowParts | None = None,
) -> Pipeline:
    """The request path over its cache steps: the forwarder, the replies it makes itself, single-flight, and
    shadow verification of L2 hits (its workers started in the background)."""
    forwarder = Forwarder(
        upstreams=upstreams,
        write_back=cache.write_back,
        want_usage=settings.upstream.request_stream_usage,
        max_pending_writes=settings.cache.max_pending_writes,
    )
    replies = Replies(clock=time.time)
    auditor = None
    if shadow is not None:
        auditor = ShadowAuditor(
            settings=settings.semantic,
            forwarder=forwarder,
            ledger=shadow.ledger,
            write_back=cache.write_back,
            audit_log=shadow.audit_log,
            embed=shadow.embed,
            prices=PriceList(settings.metrics.prices),
            metrics=shadow.metrics,
        )
        shadow.background.start_soon(auditor.run)
    return Pipeline(
        cache=cache,
        router=router,
        forwarder=forwarder,
        replies=replies,
        coalescer=None if flight is None else Coalescer(flight=flight, forwarder=forwarder, replies=replies),
        refuse_undecided=settings.router.on_undecided == "block",
        auditor=auditor,
    )


def upstream_hooks(name: str, metrics: ProxyMetrics) -> UpstreamHooks:
    """How one upstream's client reports retries and breaker changes to the metrics."""

    def breaker_changed(state: BreakerState) -> None:
        metrics.set_breaker_state(name, state.value, opened=state is BreakerState.OPEN)

    metrics.set_breaker_state(name, BreakerState.CLOSED.value, opened=False)  # on /metrics before any change
    return UpstreamHooks(retried=functools.partial(metrics.count_retry, name), breaker_changed=breaker_changed)


def open_single_flight(settings: Settings, redis: RedisClient, background: TaskGroup) -> SingleFlight | None:
    """Coalescing of identical misses, or None when disabled; its lease renewer and listener run in the background."""
    if not settings.single_flight.enabled:
        return None
    flight = SingleFlight(redis=redis, key_prefix=settings.redis.key_prefix, settings=settings.single_flight)
    background.start_soon(flight.run)
    return flight


def open_telemetry(
    settings: Settings,
    redis: RedisClient,
    metrics: ProxyMetrics,
    history: History | None,
    catalog: Catalog,
    background: TaskGroup,
) -> Telemetry:
    """What the request path reports to; the Redis sampler runs in the background until shutdown."""
    background.start_soon(sample_redis, redis, metrics.snapshot, catalog.size)
    prices = PriceList(settings.metrics.prices)
    sink = history.writer.offer if history is not None else None
    return Telemetry(
        metrics=metrics, prices=prices, models=BoundedLabels(settings.metrics.max_model_labels), history=sink
    )


async def open_history(
    settings: Settings, redis: RedisClient, metrics: ProxyMetrics, background: TaskGroup, resources: AsyncExitStack
) -> History | None:
    """The history store and its writer task, or None when disabled or the Redis has no TimeSeries."""
    if not settings.timeseries.enabled:
        return None
    store = HistoryStore(redis=redis, key_prefix=settings.redis.key_prefix, settings=settings.timeseries)
    try:
        await store.ensure()
    except TimeSeriesUnsupportedError:
        logger.warning("this Redis has no TimeSeries module: traffic history and /admin/stats are off")
        return None
    except HistoryError as exc:  # Redis down at startup: the writer creates the series once it answers
        logger.warning("could not create the traffic history series yet: %s", exc)
    writer = HistoryWriter(store=store, metrics=metrics, settings=settings.timeseries)
    background.start_soon(writer.run)
    # Runs after the task group has cancelled run(): the last samples are written before Redis closes.
    resources.push_async_callback(writer.flush)
    return History(store=store, writer=writer)


@dataclass(frozen=True, slots=True)
class SemanticLayer:
    """The parts that need the embedding model; all None when the semantic layer is off."""

    finder: ParaphraseFinder | None = None
    index: SemanticIndex | None = None
    router: Router | None = None
    embedder: Embedder | None = None
    verifier: Verifier | None = None


async def open_search_redis(
    settings: Settings, redis: RedisClient, metrics: ProxyMetrics, resources: AsyncExitStack
) -> RedisClient | None:
    """The Redis that holds the L2 index and the catalog: Redis itself, except on a cluster whose shards cannot
    search together (redis.search_url then, else None: exact matches only). Never one shard's search alone."""
    if settings.redis.mode != "cluster":
        return redis
    across = await searches_across_shards(redis, settings.redis.key_prefix)
    metrics.set_cross_shard_search(across)
    if across:
        logger.info("Redis Cluster searches across its shards: the semantic index and the catalog live on the cluster")
        return redis
    missing = "Redis Cluster without cross-shard search (no search coordinator, as in Redis Stack 7.x; Redis 8 has one)"
    if settings.redis.search_url is not None:
        logger.warning("%s: the semantic index (L2) and the catalog live on redis.search_url", missing)
        search = create_standalone(settings.redis, settings.redis.search_url)
        resources.push_async_callback(search.aclose)
        return search
    logger.warning(
        "%s and no redis.search_url: exact matches only (L2 semantic cache, entries listing and filtered "
        "invalidation off; the router still works). Set redis.search_url to a standalone Redis Stack for them.",
        missing,
    )
    return None


def where(settings: Settings) -> str:
    """Which Redis, for a log line (no credentials)."""
    if settings.redis.mode == "sentinel":
        return f"sentinel service {settings.redis.sentinel_service}"
    parts = urlsplit(settings.redis.url or "")
    return f"{settings.redis.mode} at {parts.hostname}:{parts.port}" if parts.hostname else settings.redis.mode


async def open_semantic_layer(
    settings: Settings,
    redis: RedisClient | None,
    exact: ExactCache,
    model_loader: ModelLoader,
    background: TaskGroup,
    ledger: AuditLedger | None = None,
) -> SemanticLayer:
    """Load the model, start its batcher (a task in `background`), open the L2 index and load the routes.

    Raises:
        SemanticIndexError: an existing L2 index does not match.
        RoutesError: the routes file is invalid.
    """
    if not settings.semantic.enabled:
        if settings.router.routes_file is not None:
            logger.warning("semantic.enabled is false: the routes in %s are not used", settings.router.routes_file)
        return SemanticLayer()
    model = await anyio.to_thread.run_sync(model_loader, settings.embeddings)
    embedder = Embedder(model, settings.embeddings.max_batch, settings.embeddings.max_wait_ms)
    await warm_up(embedder)
    background.start_soon(embedder.run_batcher)
    timeout_s = settings.embeddings.timeout_ms / 1000
    index, finder, verifier = None, None, None
    if redis is not None:  # None: no Redis here can search (exact matches only), but the router still works
        index = SemanticIndex(
            redis=redis, key_prefix=settings.redis.key_prefix, dimension=embedder.dimension, hnsw=settings.semantic.hnsw
        )
        await ensure_index(index)
        verifier = await open_verifier(settings, index, model_loader, background)
        # Under an error budget, each model's threshold is at most the one the ledger keeps (read locally).
        budgeted = ledger is not None and settings.semantic.max_error_rate is not None
        finder = ParaphraseFinder(
            embedder=embedder,
            index=index,
            exact=exact,
            settings=settings.semantic,
            embed_timeout_s=timeout_s,
            effective_threshold=ledger.effective_threshold if budgeted and ledger is not None else None,
            verifier=verifier,
        )
    # The route references live in this process (no Redis): routing holds while Redis is down or flushed.
    unloaded = Router(
        embedder=embedder, dimension=embedder.dimension, max_windows=settings.router.max_windows, timeout_s=timeout_s
    )
    router = await open_router(unloaded, settings)
    if router is not None:
        reload_requests: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        background.start_soon(serve_reload_requests, reload_requests, router, settings)
        reload_on_sighup(reload_requests)
    return SemanticLayer(finder=finder, index=index, router=router, embedder=embedder, verifier=verifier)


async def open_verifier(
    settings: Settings, index: SemanticIndex, model_loader: ModelLoader, background: TaskGroup
) -> Verifier | None:
    """The verifier model (semantic.verifier_model) run by the same backend as the primary one, with its batcher
    task in `background`; None when none is configured."""
    name = settings.semantic.verifier_model
    if name is None:
        return None
    embedding = settings.embeddings.model_copy(update={"model": name})
    model = await anyio.to_thread.run_sync(model_loader, embedding)
    embedder = Embedder(model, embedding.max_batch, embedding.max_wait_ms)
    await warm_up(embedder)
    background.start_soon(embedder.run_batcher)
    logger.info("L2 verifier model %s loaded (%d dimensions)", name, embedder.dimension)
    timeout_s = embedding.timeout_ms / 1000
    return Verifier(embedder, index, settings.semantic.verifier_max_distance, timeout_s)


async def warm_up(embedder: Embedder) -> None:
    """Run the model once: the first forward pass allocates and is several times slower than the next ones,
    and that should be paid at startup, not inside a request's embedding timeout."""
    try:
        await anyio.to_thread.run_sync(embedder.encode, ["warm up"])
        # A full window too: the first long input allocates again (a long prompt routed on its windows).
        await anyio.to_thread.run_sync(embedder.encode, ["warm up " * (embedder.window_limit // 2)])
    except Exception:  # a failing model costs the semantic cache (each request skips L2), not the startup
        logger.exception("the embedding model failed its first run; requests will skip the semantic cache")


async def ensure_index(index: SemanticIndex) -> None:
    """Create the L2 index if missing.

    Raises:
        SemanticIndexError: an existing index does not match (e.g. another model's dimension).
    """
    try:
        await index.ensure()
    except SemanticIndexError:
        raise
    except Exception as exc:  # Redis down at startup: L2 is bypassed until it answers again
        logger.warning("could not create the semantic index yet: %s", exc.__class__.__name__)


async def ensure_catalog(catalog: Catalog) -> None:
    """Create the catalog index if missing; with Redis down, the first admin query creates it.

    Raises:
        CatalogIndexError: an existing index does not match.
    """
    try:
        await catalog.ensure()
    except CacheUnavailableError as exc:
        logger.warning("could not create the catalog index yet: %s", exc)


def admin_tools(
    redis: RedisClient,
    key_prefix: str,
    catalog: Catalog,
    semantic: SemanticLayer,
    metrics: ProxyMetrics,
    search: RedisClient | None = None,
    ledger: AuditLedger | None = None,
) -> AdminTools:
    """What the admin API works with; invalidation by prompt uses the semantic layer when it is on."""
    embed = semantic.embedder.embed if semantic.embedder is not None else None

    def count_deleted(mode: str, count: int) -> None:
        metrics.invalidated.labels(mode).inc(count)

    apart = search if search is not None and search is not redis else None  # a search node of its own
    invalidator = Invalidator(
        redis=redis,
        key_prefix=key_prefix,
        catalog=catalog,
        index=semantic.index,
        embed=embed,
        on_deleted=count_deleted,
        search=apart,
    )
    return AdminTools(
        catalog=catalog,
        entries=EntryReader(redis, key_prefix, apart),
        invalidator=invalidator,
        audit=AuditLog(redis, key_prefix),
        ledger=ledger,
    )


async def open_router(router: Router, settings: Settings) -> Router | None:
    """The router with its routes loaded (kept in this process), or None when no routes file is named.

    Raises:
        RoutesError: the routes file is missing or invalid.
    """
    path = settings.router.routes_file
    if path is None:
        logger.info("no routes file (router.routes_file): requests are only cached, never routed")
        return None
    await router.load(load_routes(path, settings.upstream_names()))
    logger.info("semantic router loaded %d routes from %s", len(router.table.routes), path)
    return router


async def reload_routes(router: Router, settings: Settings) -> None:
    """Reload the routes file; a bad file keeps the routes in force (logged)."""
    assert settings.router.routes_file is not None
    try:
        table = await router.reload(settings.router.routes_file, settings.upstream_names())
    except RoutesError as exc:
        logger.error("routes not reloaded, the previous routes stay in force: %s", exc)
        return
    logger.info("routes reloaded: %s", ", ".join(route.name for route in table.routes) or "(none)")


def reload_on_sighup(requests: asyncio.Queue[None]) -> None:
    """`kill -HUP` asks for a routes reload, where signals can be handled (the main thread)."""

    def request_reload() -> None:
        # A signal callback runs outside any task: it only files the request; several HUPs make one reload.
        if not requests.full():
            requests.put_nowait(None)

    if threading.current_thread() is threading.main_thread():
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, request_reload)


async def serve_reload_requests(requests: asyncio.Queue[None], router: Router, settings: Settings) -> None:
    """Reload the routes each time one is asked for (the lifespan owns and cancels this task)."""
    while True:
        await requests.get()
        await reload_routes(router, settings)
