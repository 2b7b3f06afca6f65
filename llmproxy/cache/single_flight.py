"""Single-flight: concurrent identical misses (one L1 key) reach the upstream once, in one process and across replicas.

In a process, the first request for a key becomes its local leader and later ones await it without touching Redis.
Across processes, the local leader takes a Redis lease `{prefix}:lease:{scope}:{hash}` (SET NX PX, an owner
token, renewed by a background task while held). Whoever holds it forwards and writes the answer back; a local
leader that finds the lease taken follows: it waits until the lease is gone (woken by a message the owner publishes
on release, with polling as the fallback) and reads the answer from L1.

A follower waits for one leader only: if that leader ends without an answer in L1 (upstream error, incomplete
stream, a failed write), dies (its lease expires), or takes longer than `wait_timeout_s`, the follower calls the
upstream itself. Redis errors never make a request wait: it goes upstream at once. Load is not a Redis error: a
local leader that finds every pooled connection busy leads without a lease (this process's followers still wait
for it), and local followers read the answer from L1 once for all of them, not once each.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from redis.asyncio import Redis

from llmproxy.cache.entry import CacheEntry, decode_entry
from llmproxy.settings import SingleFlightSettings
from llmproxy.store.errors import CacheUnavailableError, Fault, redis_call
from llmproxy.trace import FlightOutcome, FlightRecord, FlightRole, RequestTrace

POLL_FIRST_S = 0.01  # a follower's first look at Redis; the delay doubles up to POLL_MAX_S
POLL_MAX_S = 0.1
LISTEN_TIMEOUT_S = 1.0  # the listener's read timeout: each return lets redis-py health-check the connection
LISTEN_RETRY_S = 1.0

# Only the owner may extend or delete its lease; the release also wakes the followers of every replica.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
redis.call('publish', ARGV[2], ARGV[3])
return 1
"""


@dataclass(eq=False, slots=True)
class _Flight:
    """One key's coalescing in this process: `done` is set when the local leader is finished."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # a release was announced: look again
    answered: bool = False  # the answer is in L1 (when done)
    reading: asyncio.Lock = field(default_factory=asyncio.Lock)  # the first follower reads L1, the others wait
    read: bool = False
    answer: CacheEntry | None = None  # what the first follower read


class Lead:
    """This request leads its key: it forwards, writes back, then must `release` exactly once."""

    __slots__ = ("_owner", "_key", "_flight", "_lease", "_token", "_trace", "_released")

    def __init__(
        self, owner: SingleFlight, key: str, flight: _Flight, lease: str | None, token: str, trace: RequestTrace
    ) -> None:
        self._owner = owner
        self._key = key
        self._flight = flight
        self._lease = lease
        self._token = token
        self._trace = trace
        self._released = False

    async def release(self, stored: bool, *, led: bool = True) -> None:
        """Hand the outcome to the followers (stored: the answer is in L1); further calls do nothing.

        `led` False: the lease was taken ahead, and the request was answered without the upstream (an L2 hit):
        it took no part in single-flight, and its trace says so.
        """
        if self._released:
            return
        self._released = True
        self._trace.flight = FlightRecord("leader", "stored" if stored else "not_stored") if led else None
        await self._owner._release(self._key, self._flight, self._lease, self._token, stored, self._trace)


@dataclass(frozen=True, slots=True)
class Turn:
    """A request's turn: an answer to serve, a lead to take, or neither (call the upstream uncoordinated); or,
    when asked not to wait, `wait`: another request leads."""

    entry: CacheEntry | None = None
    lead: Lead | None = None
    wait: Wait | None = None


class Wait:
    """Another request leads this key: `turn` waits for its answer; `leave` when this request no longer needs it
    (answered otherwise: `answered` says whether L1 now holds an answer for the key)."""

    __slots__ = ("_owner", "_key", "_flight", "_lease", "_trace")

    def __init__(self, owner: SingleFlight, key: str, flight: _Flight, lease: str | None, trace: RequestTrace) -> None:
        self._owner = owner
        self._key = key
        self._flight = flight
        self._lease = lease  # None: the leader is in this process (the flight is its); else this request's flight
        self._trace = trace

    async def turn(self) -> Turn:
        """The leader's answer (or none: go upstream), once it is done or the wait timed out."""
        if self._lease is None:
            return await self._owner._follow_local(self._key, self._flight, self._trace)
        try:
            turn = await self._owner._follow_remote(self._key, self._lease, self._flight, self._trace)
        except BaseException:
            self.leave(answered=False)
            raise
        self.leave(answered=turn.entry is not None)
        return turn

    def leave(self, answered: bool) -> None:
        """Stop waiting; this process's twins that wait on this request's flight are told `answered`."""
        if self._lease is not None:
            self._owner._land(self._key, self._flight, answered)


class SingleFlight:
    """Coalesces identical misses; `run` (a lifespan task) renews held leases and listens for releases."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        settings: SingleFlightSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._l1_prefix = f"{key_prefix}:l1:"
        self._lease_prefix = f"{key_prefix}:lease:"
        self._channel = f"{key_prefix}:flight"
        self._lease_ms = settings.lease_ms
        self._wait_timeout_s = settings.wait_timeout_s
        self._clock = clock
        self._flights: dict[str, _Flight] = {}  # L1 key → this process's flight
        self._held: dict[str, str] = {}  # lease key → owner token, renewed until released
        self._renew = redis.register_script(_RENEW)
        self._release_script = redis.register_script(_RELEASE)

    def lease_key(self, key: str) -> str:
        """The Redis lease of one L1 key (same scope and hash, another family)."""
        return self._lease_prefix + key.removeprefix(self._l1_prefix)

    async def join(self, key: str, trace: RequestTrace, *, wait: bool = True) -> Turn:
        """Lead the miss on `key`, or wait for the leader's answer (recorded on trace.flight).

        `wait` False: at most one round trip (taking the lease ahead of knowing whether it is needed); a request
        another one leads gets `Turn(wait=...)` at once, and must then either wait its turn or leave.
        """
        flight = self._flights.get(key)
        if flight is not None:
            waiting = Wait(self, key, flight, None, trace)
            return await waiting.turn() if wait else Turn(wait=waiting)
        flight = self._flights[key] = _Flight()
        try:
            turn = await self._contend(key, flight, trace)
        except BaseException:
            self._land(key, flight, answered=False)
            raise
        if turn.wait is not None:
            return await turn.wait.turn() if wait else turn
        if turn.lead is None:
            self._land(key, flight, answered=turn.entry is not None)
        return turn

    async def run(self) -> None:
        """Renew held leases and wake followers on releases, until cancelled."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._renew_leases)
            tasks.start_soon(self._listen)

    async def _contend(self, key: str, flight: _Flight, trace: RequestTrace) -> Turn:
        # Lease first, then L1: an answer stored before a lease was released is seen in the same round trip.
        lease, token = self.lease_key(key), uuid.uuid4().hex
        try:
            with redis_call("single-flight lease"):
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.set(lease, token, nx=True, px=self._lease_ms)
                    pipe.get(key)
                    acquired, raw = await pipe.execute()
        except CacheUnavailableError as exc:
            if exc.fault is Fault.POOL:  # this process is busy, Redis is not: coordinate here, not across replicas
                return Turn(lead=Lead(self, key, flight, None, token, trace))
            return _fail_open(trace, "leader")
        entry = None if raw is None else decode_entry(raw)
        if entry is not None:  # stored by a leader that finished after this request's L1 lookup
            if acquired:
                await self._release(key, None, lease, token, True, trace)
            trace.flight = FlightRecord("follower_remote", "served")
            return Turn(entry=entry)
        if acquired:
            self._held[lease] = token
            return Turn(lead=Lead(self, key, flight, lease, token, trace))
        return Turn(wait=Wait(self, key, flight, lease, trace))

    async def _follow_remote(self, key: str, lease: str, flight: _Flight, trace: RequestTrace) -> Turn:
        started = self._clock()
        deadline, delay = started + self._wait_timeout_s, POLL_FIRST_S
        entry: CacheEntry | None = None
        outcome: FlightOutcome = "timeout"
        try:
            while (remaining := deadline - self._clock()) > 0:
                with anyio.move_on_after(min(delay, remaining)):
                    await flight.wake.wait()
                flight.wake.clear()
                leased, entry = await self._peek(key, lease)
                if entry is not None or not leased:
                    outcome = "served" if entry is not None else "leader_gone"
                    break
                delay = min(delay * 2, POLL_MAX_S)
        except CacheUnavailableError:
            return _fail_open(trace, "follower_remote", self._clock() - started)
        trace.flight = FlightRecord("follower_remote", outcome, self._clock() - started)
        return Turn(entry=entry)

    async def _peek(self, key: str, lease: str) -> tuple[bool, CacheEntry | None]:
        # The lease before the entry: if the lease was already gone, the entry (when stored) is visible.
        with redis_call("single-flight wait"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.exists(lease)
                pipe.get(key)
                leased, raw = await pipe.execute()
        return bool(leased), None if raw is None else decode_entry(raw)

    async def _follow_local(self, key: str, flight: _Flight, trace: RequestTrace) -> Turn:
        started = self._clock()
        with anyio.move_on_after(self._wait_timeout_s):
            await flight.done.wait()
        waited = self._clock() - started
        if not flight.done.is_set() or not flight.answered:
            outcome: FlightOutcome = "timeout" if not flight.done.is_set() else "leader_gone"
            trace.flight = FlightRecord("follower_local", outcome, waited)
            return Turn()
        try:
            entry = await self._read_answer(key, flight)
        except CacheUnavailableError:
            return _fail_open(trace, "follower_local", waited)
        trace.flight = FlightRecord("follower_local", "served" if entry is not None else "leader_gone", waited)
        return Turn(entry=entry)

    async def _read_answer(self, key: str, flight: _Flight) -> CacheEntry | None:
        """The leader's answer from L1, read once for every local follower (a failed read is tried by the next)."""
        async with flight.reading:
            if not flight.read:
                with redis_call("single-flight read"):
                    raw = await self._redis.get(key)
                flight.answer, flight.read = None if raw is None else decode_entry(raw), True
        return flight.answer

    def _land(self, key: str, flight: _Flight, answered: bool) -> None:
        flight.answered = answered
        flight.done.set()
        if self._flights.get(key) is flight:
            del self._flights[key]

    async def _release(
        self, key: str, flight: _Flight | None, lease: str | None, token: str, stored: bool, trace: RequestTrace
    ) -> None:
        if flight is not None:
            self._land(key, flight, stored)
        if lease is None:  # led without a lease: nobody elsewhere waits for this one
            return
        self._held.pop(lease, None)
        # Runs when the response ends, maybe as the client leaves: followers elsewhere must still be told.
        with anyio.CancelScope(shield=True):
            try:
                with redis_call("single-flight release (the lease expires by itself)"):
                    await self._release_script(keys=[lease], args=[token, self._channel, key])
            except CacheUnavailableError:
                trace.failed("redis", "lease")

    async def _renew_leases(self) -> None:
        period_s = self._lease_ms / 3000
        while True:
            await anyio.sleep(period_s)
            for lease, token in list(self._held.items()):
                try:
                    with redis_call("single-flight lease renewal"):
                        renewed = await self._renew(keys=[lease], args=[token, self._lease_ms])
                except CacheUnavailableError:
                    continue  # logged; the next round tries again
                if not renewed:
                    self._held.pop(lease, None)  # expired meanwhile; another leader may hold it now

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                # Followers keep polling meanwhile; only their wake-ups are slower.
                with redis_call("single-flight listener (reconnecting)", quiet=True):
                    await pubsub.subscribe(self._channel)
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_TIMEOUT_S)
                        if message is not None:
                            self._wake(message["data"])
            except CacheUnavailableError:
                pass
            finally:
                with anyio.CancelScope(shield=True):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
            await anyio.sleep(LISTEN_RETRY_S)

    def _wake(self, data: bytes | str) -> None:
        key = data.decode() if isinstance(data, bytes) else data
        flight = self._flights.get(key)
        if flight is not None:
            flight.wake.set()


def _fail_open(trace: RequestTrace, role: FlightRole, waited: float = 0.0) -> Turn:
    # The failure is logged by redis_call (a full Redis at debug level: the health warns about it once a minute).
    trace.failed("redis", "lease")
    trace.flight = FlightRecord(role, "redis_error", waited)
    return Turn()
