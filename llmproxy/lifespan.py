"""Opens and closes every long-lived resource of the app; yields them as AppState."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import anyio
from starlette.applications import Starlette

from llmproxy.cache.exact import ExactCache
from llmproxy.cache.semantic import SemanticIndex, SemanticIndexError
from llmproxy.cache.writeback import WriteBack
from llmproxy.embeddings import Embedder, ModelLoader
from llmproxy.paraphrase import ParaphraseFinder
from llmproxy.pipeline import Pipeline
from llmproxy.redis_client import create_redis, is_reachable
from llmproxy.settings import Settings
from llmproxy.state import AppState
from llmproxy.upstream.client import UpstreamClient

logger = logging.getLogger(__name__)

STATE_KEY = "app_state"


def lifespan_for(
    settings: Settings, model_loader: ModelLoader
) -> Callable[[Starlette], AbstractAsyncContextManager[dict[str, AppState]]]:
    """The Starlette lifespan that builds AppState from settings.

    Raises:
        ValueError: settings.redis.url is unset (the embedded Redis must be started before the app).
    """
    redis_url = settings.redis.url
    if redis_url is None:
        raise ValueError("create_app needs settings.redis.url; `llmproxy serve` starts the embedded Redis first")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        async with AsyncExitStack() as resources, anyio.create_task_group() as background:
            # 1. Redis: connect lazily, but say at startup whether it answers.
            redis = create_redis(settings.redis, redis_url)
            resources.push_async_callback(redis.aclose)
            if not await is_reachable(redis):
                logger.warning("Redis at %s does not answer yet; requests bypass the cache until it does", redis_url)
            # 2. The upstream connection pool.
            upstream = UpstreamClient(settings.upstream)
            resources.push_async_callback(upstream.aclose)
            # 3. The semantic layer: model, batcher task, vector index (skipped entirely when disabled).
            exact = ExactCache(redis, settings.redis.key_prefix)
            finder, index = None, None
            if settings.semantic.enabled:
                embedder = Embedder(
                    await anyio.to_thread.run_sync(model_loader, settings.embeddings),
                    settings.embeddings.max_batch,
                    settings.embeddings.max_wait_ms,
                )
                background.start_soon(embedder.run_batcher)
                index = SemanticIndex(redis, settings.redis.key_prefix, embedder.dimension, settings.semantic.hnsw)
                await ensure_index(index)
                finder = ParaphraseFinder(embedder, index, exact, settings.semantic)
            # 4. The request pipeline over all of it.
            write_back = WriteBack(redis, exact, index, time.time)
            pipeline = Pipeline(exact, write_back, upstream, finder, time.time, settings.upstream.request_stream_usage)
            yield {STATE_KEY: AppState(settings, redis, upstream, pipeline, time.time)}
            background.cancel_scope.cancel()

    return lifespan


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
