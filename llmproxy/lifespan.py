"""Opens and closes every long-lived resource of the app; yields them as AppState."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette

from llmproxy.cache.exact import ExactCache
from llmproxy.cache.writeback import WriteBack
from llmproxy.pipeline import Pipeline
from llmproxy.redis_client import create_redis, is_reachable
from llmproxy.settings import Settings
from llmproxy.state import AppState
from llmproxy.upstream.client import UpstreamClient

logger = logging.getLogger(__name__)

STATE_KEY = "app_state"


def lifespan_for(settings: Settings) -> Callable[[Starlette], AbstractAsyncContextManager[dict[str, AppState]]]:
    """The Starlette lifespan that builds AppState from settings.

    Raises:
        ValueError: settings.redis.url is unset (the embedded Redis must be started before the app).
    """
    redis_url = settings.redis.url
    if redis_url is None:
        raise ValueError("create_app needs settings.redis.url; `llmproxy serve` starts the embedded Redis first")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        async with AsyncExitStack() as resources:
            # 1. Redis: connect lazily, but say at startup whether it answers.
            redis = create_redis(settings.redis, redis_url)
            resources.push_async_callback(redis.aclose)
            if not await is_reachable(redis):
                logger.warning("Redis at %s does not answer yet; requests bypass the cache until it does", redis_url)
            # 2. The upstream connection pool.
            upstream = UpstreamClient(settings.upstream)
            resources.push_async_callback(upstream.aclose)
            # 3. The request pipeline over both.
            exact = ExactCache(redis, settings.redis.key_prefix)
            pipeline = Pipeline(
                exact, WriteBack(exact, time.time), upstream, time.time, settings.upstream.request_stream_usage
            )
            yield {STATE_KEY: AppState(settings, redis, upstream, pipeline, time.time)}

    return lifespan
