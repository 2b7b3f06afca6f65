"""Running the proxy: the embedded Redis (when no URL is set) around one uvicorn server."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from llmproxy.app import create_app
from llmproxy.commands.http_protocol import server_options
from llmproxy.commands.logging_setup import configure_logging
from llmproxy.commands.worker_settings import export_for_workers, imported_settings
from llmproxy.settings import Settings
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from llmproxy.telemetry.prometheus import MULTIPROC_DIR_ENV

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACEFUL_SHUTDOWN_S = 30


class ShutdownRequested(Exception):
    """SIGINT/SIGTERM arrived; unwinding stops what we started."""


def run_proxy(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully and stop the embedded Redis if we started one.

    Raises:
        EmbeddedRedisError: the embedded Redis could not be started (the message names the fix).
    """
    with stop_on_signals(), ExitStack() as resources:
        # 1. The cache store: the operator's Redis, or our own on a free loopback port.
        redis_url = settings.redis.url
        if redis_url is None and settings.redis.mode == "standalone":
            config = EmbeddedRedisConfig(
                data_dir=settings.redis.embedded_data_dir.resolve(), persist=settings.redis.embedded_persist
            )
            redis_url = resources.enter_context(EmbeddedRedis(config)).url
            logger.info("no Redis URL configured: using an embedded Redis Stack at %s", redis_url)
        effective = settings if redis_url is None else with_redis_url(settings, redis_url)  # sentinel: no URL
        logger.info("llmproxy listening on http://%s:%d/v1", settings.server.host, settings.server.port)
        if settings.server.workers > 1:
            run_workers(effective, resources)
            return
        # 2. The HTTP server; uvicorn handles the signals and drains in-flight requests. Our protocol adds the
        #    header and unread-body deadlines uvicorn lacks (http_protocol.py).
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(effective),
                host=settings.server.host,
                port=settings.server.port,
                log_level=settings.server.log_level,
                lifespan="on",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                **server_options(settings.server),
            )
        )
        server.run()


def run_workers(settings: Settings, resources: ExitStack) -> None:
    """Several uvicorn worker processes on one socket, each importing the app with these settings.

    Prometheus metrics go through files in a private folder (the client's multiprocess mode), removed on exit.
    """
    metrics_dir = resources.enter_context(tempfile.TemporaryDirectory(prefix="llmproxy-metrics-"))
    os.environ[MULTIPROC_DIR_ENV] = metrics_dir
    export_for_workers(settings)
    uvicorn.run(
        "llmproxy.commands.serve:app_from_environment",
        factory=True,
        workers=settings.server.workers,
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.server.log_level,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **server_options(settings.server),
    )


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into ShutdownRequested, swallowed here once everything inside has unwound.

    uvicorn handles the signal itself while serving, shuts down gracefully, then restores these
    handlers and raises the signal again: that second delivery is what unwinds the embedded Redis.
    """

    def request_shutdown(signum: int, frame: FrameType | None) -> None:
        raise ShutdownRequested(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, request_shutdown) for sig in STOP_SIGNALS}
    try:
        yield
    except ShutdownRequested as stop:
        logger.info("stopped by %s", stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def with_redis_url(settings: Settings, url: str) -> Settings:
    """A copy of settings pointing at the given Redis."""
    return settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": url})})


def app_from_environment() -> ASGIApp:
    """The app of one uvicorn worker process (`llmproxy serve` with server.workers > 1 exported the settings)."""
    settings = imported_settings()
    configure_logging(settings.server.log_level)
    return create_app(settings)
