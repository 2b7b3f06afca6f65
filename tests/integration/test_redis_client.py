"""The request path's Redis client against a real Redis: a pool that waits its turn, timeouts that measure Redis
rather than this process's event loop, and dead pooled connections replaced after a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmproxy.settings import RedisSettings
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from llmproxy.store.errors import Fault, PoolExhaustedError, classify
from llmproxy.store.redis_client import create_redis
from tests.support.servers import free_port

REPLY_TIMEOUT_S = 0.25
STALLED_REPLY_TIMEOUT_S = 0.5
STALL_S = 1.0  # longer than the reply timeout: asyncio.timeout would fire as soon as the loop runs again


@pytest.fixture(params=[False, True], ids=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Both event loops the proxy runs on (uvicorn picks uvloop when it is installed): their timers and I/O
    callbacks run in a different order, which the deadlines must both survive."""
    return "asyncio", {"use_uvloop": request.param}


@pytest.fixture
async def one_connection(redis_url: str) -> AsyncIterator[Redis]:
    """A client whose pool has a single connection, and a short wait for it."""
    client = create_redis(RedisSettings(max_connections=1, pool_timeout_s=0.2, socket_timeout_s=2.0), redis_url)
    yield client
    await client.aclose()


def blocking_pop(client: Redis, seconds: float) -> asyncio.Future[object]:
    """A command that holds its connection for `seconds` (BLPOP on a key nobody pushes to), started now."""
    return asyncio.ensure_future(client.blpop([f"t-redis-client:{uuid.uuid4().hex}"], seconds))


@pytest.mark.anyio
async def test_a_command_waits_for_a_busy_pool_and_runs_when_a_connection_comes_back(one_connection: Redis) -> None:
    holder = blocking_pop(one_connection, 0.05)
    await asyncio.sleep(0)  # the holder has taken the only connection
    assert await one_connection.ping()
    assert await holder is None


@pytest.mark.anyio
async def test_a_pool_busy_for_longer_than_its_wait_is_back_pressure_not_an_outage(one_connection: Redis) -> None:
    holder = blocking_pop(one_connection, 1.0)
    await asyncio.sleep(0)
    with pytest.raises(PoolExhaustedError) as raised:
        await one_connection.ping()
    assert classify(raised.value) is Fault.POOL
    assert await holder is None


@pytest.mark.anyio
async def test_a_stalled_event_loop_does_not_time_out_a_reply_that_came_in_time(
    redis_url: str, redis_client: redis.Redis
) -> None:
    client = create_redis(RedisSettings(socket_timeout_s=STALLED_REPLY_TIMEOUT_S), redis_url)
    try:
        await client.ping()  # connected: the command below is sent at once
        reply = blocking_pop(client, 0.1)  # Redis answers (nil) 0.1 s after it gets the command
        while not any(entry["cmd"] == "blpop" for entry in redis_client.client_list()):
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)  # the client is now waiting for the reply, its timer armed
        time.sleep(STALL_S)  # the loop is blocked while the reply arrives; when it runs again the timer is overdue
        assert await reply is None
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_a_reply_slower_than_the_timeout_still_times_out_as_an_outage(redis_url: str) -> None:
    client = create_redis(RedisSettings(socket_timeout_s=REPLY_TIMEOUT_S), redis_url)
    try:
        with pytest.raises(RedisTimeoutError) as raised:
            await blocking_pop(client, 2.0)
        assert classify(raised.value) is Fault.OUTAGE
        assert await client.ping()  # the timed-out connection was dropped, not reused half-read
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_after_redis_restarts_every_dead_pooled_connection_is_replaced_without_an_error(tmp_path: Path) -> None:
    server = EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path / "redis", port=free_port()))
    server.start()
    client = create_redis(RedisSettings(), server.url)
    try:
        await asyncio.gather(*(client.blpop([f"t-warm-{n}"], 0.05) for n in range(10)))  # ten pooled connections
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        server.stop()
        server.start()  # same port; the pooled connections are dead but look fine until used
        results = await asyncio.gather(*(client.get(f"t-key-{n}") for n in range(10)), return_exceptions=True)
    finally:
        await client.aclose()
        server.stop()
    assert results == [None] * 10
