"""The async Redis client the cache uses, for each deployment (`redis.mode`): its connection pool, its connections'
timeouts, its readiness probe.

- standalone: one server, through the pool below.
- sentinel: redis-py's `Sentinel(...).master_for(...)`: each new connection asks the sentinels for the primary, and a
  connection to a demoted primary is dropped, so a failover is followed without a restart.
- cluster: redis-py's asyncio `RedisCluster`, which routes each command by its key's slot and follows MOVED/ASK and
  failovers itself. Its API is the standalone client's for everything the cache sends (keys of one answer share a
  hash tag: cache/keys.py), so it is handed out under the same type; `is_cluster` tells the few callers that fan out.

Two things redis-py does not do the way the request path needs (standalone; the others use redis-py's own pools and
socket timeouts, with the same values):
- When every pooled connection is busy, a command waits its turn (up to `pool_timeout_s`) instead of failing.
- Timeouts measure Redis, not this process's event loop: connecting, sending and reading a reply are bounded by
  `deadline`, which a stalled loop (a burst of requests) does not trip while the reply is already there.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import ConnectionPool, Redis, RedisCluster, Sentinel
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
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


def create_redis(settings: RedisSettings, url: str | None) -> Redis:
    """A pooled client of the configured deployment whose every command is bounded by the request-path timeout.

    Raises:
        ValueError: standalone or cluster mode without a URL.
    """
    if settings.mode == "sentinel":
        return _sentinel_client(settings, url)
    if url is None:
        raise ValueError(f"redis.mode {settings.mode} needs redis.url")
    if settings.mode == "cluster":
        return _cluster_client(settings, url)
    return create_standalone(settings, url)


def create_standalone(settings: RedisSettings, url: str) -> Redis:
    """A client of one server (also the search node beside a cluster: redis.search_url)."""
    pool = WaitingPool.from_url(
        url,
        max_connections=settings.max_connections,
        timeout=settings.pool_timeout_s,
        socket_timeout=None,  # the connections' deadlines apply instead
        socket_connect_timeout=None,
        reply_timeout_s=settings.socket_timeout_s,
        connect_timeout_s=settings.connect_timeout_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=_retry(),
    )
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections


def is_cluster(redis: Redis) -> bool:
    """True when the client is a Redis Cluster client (multi-key work fans out per primary)."""
    return isinstance(redis, RedisCluster)


def cluster_client(redis: Redis) -> RedisCluster:
    """The client as the cluster client it is (only after is_cluster)."""
    assert isinstance(redis, RedisCluster)
    return redis


def _retry() -> Retry:
    # redis-py retries connection errors and timeouts 3 times by default: a 4x longer wait on the request path when
    # Redis is down. Never retry a timeout; retry a broken connection once, at once: after Redis restarted (or a
    # failover), every pooled connection is dead but looks fine until used, and the retry runs on a new one (to the
    # new primary). While Redis is down the retry is refused at once too.
    return Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))


def _cluster_client(settings: RedisSettings, url: str) -> Redis:
    cluster = RedisCluster.from_url(
        url,
        max_connections=settings.max_connections,  # per node
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=_retry(),
        # While a primary fails over, its slots have no owner for a few seconds: the rest must keep working, and
        # the client must come up during one.
        require_full_coverage=False,
    )
    # The cluster client speaks the same commands for every key the cache writes (one slot per answer).
    return cast(Redis, cluster)


def _sentinel_client(settings: RedisSettings, url: str | None) -> Redis:
    # The URL gives what the primary needs besides its address (found by the sentinels): credentials, TLS, db.
    options: dict[str, Any] = dict(parse_url(url)) if url is not None else {}
    for address in ("host", "port", "path"):
        options.pop(address, None)
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    timeouts: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
    }
    sentinel = Sentinel(
        [_host_port(address) for address in settings.sentinels],
        sentinel_kwargs=timeouts,  # the sentinels' own connections: no credentials of the data nodes
        **timeouts,
    )
    primary: Redis = sentinel.master_for(
        settings.sentinel_service,
        redis_class=Redis,
        max_connections=settings.max_connections,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=_retry(),
        **options,
    )
    return primary


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def is_reachable(redis: Redis) -> bool:
    """True when Redis answers PING within its timeouts."""
    try:
        with redis_call("ping", quiet=True):
            return bool(await redis.ping())
    except CacheUnavailableError:
        return False
