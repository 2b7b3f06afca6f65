"""The async Redis client the cache uses: its connection pool, its connections' timeouts, its readiness probe.

Two things redis-py does not do the way the request path needs:
- When every pooled connection is busy, a command waits its turn (up to `pool_timeout_s`) instead of failing.
- Timeouts measure Redis, not this process's event loop: connecting, sending and reading a reply are bounded by
  `deadline`, which a stalled loop (a burst of requests) does not trip while the reply is already there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmproxy.settings import RedisSettings
from llmproxy.store.deadline import deadline
from llmproxy.store.errors import CacheUnavailableError, PoolExhaustedError, redis_call

RedisClient = Redis  # the client type, named here so modules above the cache need not import redis

HEALTH_CHECK_INTERVAL_S = 30


class _Deadlines(AbstractConnection):
    """Connect, send and read bounded by `deadline` (redis-py's own socket timeouts are turned off)."""

    def __init__(self, *, reply_timeout_s: float, connect_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reply_timeout_s = reply_timeout_s
        self._connect_timeout_s = connect_timeout_s

    async def _connect(self) -> None:
        # A TimeoutError here is reported by redis-py as "Timeout connecting to server".
        async with deadline(self._connect_timeout_s):
            await super()._connect()  # type: ignore[no-untyped-call,safe-super]

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """Send one packed command (connecting first if needed).

        Raises:
            TimeoutError: the command could not be sent in time.
            ConnectionError: the connection failed.
        """
        try:
            async with deadline(self._reply_timeout_s):
                await super().send_packed_command(command, check_health)
        except TimeoutError:
            raise RedisTimeoutError(f"Timeout writing to {self._host_error()}") from None

    async def read_response(self, disable_decoding: bool = False, timeout: float | None = None, **kwargs: Any) -> Any:
        """The reply to a command; an explicit timeout (pub/sub reads) is redis-py's own.

        Raises:
            TimeoutError: no reply in time.
            ConnectionError: the connection failed.
        """
        if timeout is not None:
            return await super().read_response(disable_decoding, timeout, **kwargs)
        try:
            async with deadline(self._reply_timeout_s):
                return await super().read_response(disable_decoding, None, **kwargs)
        except TimeoutError:  # redis-py closed the connection as the read was cancelled: no half-read reply stays
            raise RedisTimeoutError(f"Timeout reading from {self._host_error()}") from None


class _TcpConnection(_Deadlines, Connection):
    pass


class _TlsConnection(_Deadlines, SSLConnection):
    pass


class _UnixConnection(_Deadlines, UnixDomainSocketConnection):
    pass


# redis://, rediss://, unix://: the class redis-py picks for the URL, and the same with deadlines.
_WITH_DEADLINES: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _TcpConnection,
    SSLConnection: _TlsConnection,
    UnixDomainSocketConnection: _UnixConnection,
}


class WaitingPool(ConnectionPool):
    """A pool that, when every connection is busy, waits its turn for one instead of failing at once.

    redis-py's BlockingConnectionPool waits too, but under one lock that releases must also take: with a thousand
    waiters a returned connection queues behind all of them, and the waits run out while connections sit idle.
    Here a semaphore counts the connections handed out; a release wakes the first waiter directly (FIFO).
    A wait that runs out raises PoolExhaustedError, not a ConnectionError: it says nothing about Redis.
    """

    def __init__(self, *, timeout: float, max_connections: int, **connection_kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **connection_kwargs)
        self.connection_class = _WITH_DEADLINES[self.connection_class]
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._handed_out: set[AbstractConnection] = set()  # connections holding a slot, until released

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connected connection from the pool.

        Raises:
            PoolExhaustedError: no connection came back within the pool's timeout.
            ConnectionError: a new connection could not be made.
        """
        try:
            async with deadline(self._timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise PoolExhaustedError(f"all {self.max_connections} Redis connections stayed busy") from exc
        try:
            connection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except BaseException:
            self._slots.release()  # the parent already put its connection back, if it had one
            raise
        self._handed_out.add(connection)
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        """Put a connection back and pass its slot to the next waiter."""
        try:
            await super().release(connection)
        finally:
            if connection in self._handed_out:  # not when the parent returns one it could not connect
                self._handed_out.discard(connection)
                self._slots.release()


def create_redis(settings: RedisSettings, url: str) -> Redis:
    """A pooled client whose every command is bounded by the request-path timeout."""
    pool = WaitingPool.from_url(
        url,
        max_connections=settings.max_connections,
        timeout=settings.pool_timeout_s,
        socket_timeout=None,  # the connections' deadlines apply instead
        socket_connect_timeout=None,
        reply_timeout_s=settings.socket_timeout_s,
        connect_timeout_s=settings.connect_timeout_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        # redis-py retries connection errors and timeouts 3 times by default: a 4x longer wait on the request
        # path when Redis is down. Never retry a timeout; retry a broken connection once, at once: after Redis
        # restarted, every pooled connection is dead but looks fine until used, and the retry runs on a new one.
        # While Redis is down the retry is refused at once too.
        retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
    )
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections


async def is_reachable(redis: Redis) -> bool:
    """True when Redis answers PING within its timeouts."""
    try:
        with redis_call("ping", quiet=True):
            return bool(await redis.ping())
    except CacheUnavailableError:
        return False
