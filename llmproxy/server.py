"""Running the proxy: the embedded Redis (when no URL is set) around one uvicorn server."""

from __future__ import annotations

import logging
from contextlib import ExitStack

import uvicorn

from llmproxy.app import create_app
from llmproxy.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from llmproxy.settings import Settings

logger = logging.getLogger(__name__)


def run_proxy(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully and stop the embedded Redis if we started one.

    Raises:
        EmbeddedRedisError: the embedded Redis could not be started (the message names the fix).
    """
    with ExitStack() as resources:
        # 1. The cache store: the operator's Redis, or our own on a free loopback port.
        redis_url = settings.redis.url
        if redis_url is None:
            config = EmbeddedRedisConfig(
                data_dir=settings.redis.embedded_data_dir.resolve(), persist=settings.redis.embedded_persist
            )
            redis_url = resources.enter_context(EmbeddedRedis(config)).url
            logger.info("no Redis URL configured: using an embedded Redis Stack at %s", redis_url)
        effective = with_redis_url(settings, redis_url)
        # 2. The HTTP server; uvicorn handles the signals and drains in-flight requests.
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(effective),
                host=settings.server.host,
                port=settings.server.port,
                log_level=settings.server.log_level,
                lifespan="on",
                timeout_graceful_shutdown=30,
            )
        )
        logger.info("llmproxy listening on http://%s:%d/v1", settings.server.host, settings.server.port)
        server.run()


def with_redis_url(settings: Settings, url: str) -> Settings:
    """A copy of settings pointing at the given Redis."""
    return settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": url})})
