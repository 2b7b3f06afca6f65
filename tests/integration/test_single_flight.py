"""Single-flight: concurrent identical misses reach the upstream once, in one proxy and across replicas.

The fake upstream answers slowly (`X-Fake-Latency-Ms`, forwarded upstream, not part of the cache key), so requests
sent together overlap; the counts asserted come from the fake and from /metrics, never from durations.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from openai import AsyncOpenAI
from redis.asyncio import Redis as AsyncRedis

from llmproxy.cache.entry import CacheEntry, encode_entry
from llmproxy.cache.keys import request_key
from llmproxy.cache.single_flight import SingleFlight
from llmproxy.protocols.chat import CHAT
from llmproxy.proxy.scope import scope_id
from llmproxy.settings import RedisSettings, SingleFlightSettings
from llmproxy.store.redis_client import create_redis
from llmproxy.trace import FlightRecord, RequestTrace
from tests.conftest import TEST_KEY_PREFIX
from tests.integration.test_metrics import scrape, scrape_until, value
from tests.integration.test_serve_command import serve
from tests.support.admin import drop_indexes, tenant
from tests.support.clients import async_openai_sdk, caller_headers
from tests.support.servers import free_port
from tests.support.upstream import FakeUpstream
from tests.support.waiting import eventually

MODEL = "fake-model"
MESSAGES: list[Any] = [{"role": "user", "content": "What do twenty identical questions cost?"}]
SLOW = {"X-Fake-Latency-Ms": "1500"}
FLIGHTS = "llmproxy_single_flight_total"


class Answer:
    """What one client received: the text, X-Cache, whether it was coalesced, and whether the answer finished."""

    def __init__(self, text: str, cache: str | None, coalesced: bool, finished: bool) -> None:
        self.text, self.cache, self.coalesced, self.finished = text, cache, coalesced, finished


async def ask(client: AsyncOpenAI, stream: bool, headers: dict[str, str]) -> Answer:
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, stream=stream, extra_headers=headers
    )
    cache, coalesced = raw.headers.get("x-cache"), raw.headers.get("x-llmproxy-coalesced") == "1"
    if not stream:
        completion: Any = raw.parse()
        choice = completion.choices[0]
        return Answer(choice.message.content, cache, coalesced, choice.finish_reason == "stop")
    chunks = [chunk async for chunk in raw.parse()]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    return Answer(text, cache, coalesced, chunks[-1].choices[0].finish_reason == "stop")


async def ask_together(
    urls: list[str], api_key: str, fake: FakeUpstream, streams: list[bool], headers: dict[str, str]
) -> list[Answer]:
    """Send one request per entry of `streams` at once, spread over the proxies in turn."""
    clients = [async_openai_sdk(url, api_key, fake) for url in urls]
    try:
        return await asyncio.gather(
            *(ask(clients[i % len(clients)], stream, headers) for i, stream in enumerate(streams))
        )
    finally:
        for client in clients:
            await client.close()


def lease_key(api_key: str) -> str:
    """The lease a leader of MESSAGES takes in the test key prefix (as a leader on another replica would)."""
    scope = scope_id(tenant(api_key), None)
    return f"{TEST_KEY_PREFIX}:lease:{scope}:{request_key(CHAT, scope, {'model': MODEL, 'messages': MESSAGES})}"


def flights(urls: list[str], role: str, outcome: str) -> float:
    """The single-flight count summed over the proxies (a stream is reported just after its client read it)."""
    total = 0.0
    for url in urls:
        samples = scrape_until(url, lambda s: value(s, FLIGHTS, role=role, outcome=outcome) > 0, timeout_s=2.0)
        total += value(samples, FLIGHTS, role=role, outcome=outcome)
    return total


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def assert_one_answer(answers: list[Answer]) -> None:
    assert len({answer.text for answer in answers}) == 1
    assert all(answer.finished for answer in answers)
    assert [answer.cache for answer in answers].count("MISS") == 1
    assert all(answer.cache in ("HIT-L1", "HIT-L2") for answer in answers if answer.cache != "MISS")


def test_twenty_concurrent_identical_requests_reach_the_upstream_once(
    proxy_url: str, api_key: str, upstream: FakeUpstream
) -> None:
    answers = asyncio.run(ask_together([proxy_url], api_key, upstream, [False] * 20, SLOW))
    assert upstream.calls() == 1
    assert_one_answer(answers)
    assert any(answer.coalesced for answer in answers)


def test_twenty_concurrent_streams_reach_the_upstream_once_and_each_gets_the_whole_answer(
    proxy_url: str, api_key: str, upstream: FakeUpstream
) -> None:
    answers = asyncio.run(ask_together([proxy_url], api_key, upstream, [True] * 20, SLOW))
    assert upstream.calls() == 1
    assert_one_answer(answers)
    assert answers[0].text.startswith("Fake reply #1")


@pytest.fixture
def two_replicas(start_proxy: Callable[..., AbstractContextManager[str]]) -> Iterator[list[str]]:
    """Two proxies with their own in-process state, sharing the test Redis and key prefix."""
    with ExitStack() as proxies:
        yield [proxies.enter_context(start_proxy()) for _ in range(2)]


def test_requests_split_over_two_replicas_reach_the_upstream_once(
    two_replicas: list[str], api_key: str, upstream: FakeUpstream
) -> None:
    streams = [i % 4 < 2 for i in range(20)]  # each replica gets streamed and plain requests
    answers = asyncio.run(ask_together(two_replicas, api_key, upstream, streams, SLOW))
    assert upstream.calls() == 1
    assert_one_answer(answers)
    assert flights(two_replicas, "leader", "stored") == 1
    assert flights(two_replicas, "follower_remote", "served") >= 1, "the other replica waited through Redis"


def test_two_serve_processes_sharing_redis_reach_the_upstream_once(
    tmp_path: Path,
    upstream: FakeUpstream,
    redis_url: str,
    redis_client: redis.Redis,
    key_prefix: str,
    api_key: str,
) -> None:
    config = tmp_path / "replica.yaml"
    config.write_text(
        f"redis:\n  key_prefix: {key_prefix}\nsemantic:\n  enabled: false\ntimeseries:\n  enabled: false\n"
    )
    replica = ("--redis-url", redis_url, "--config", str(config))
    try:
        with serve(tmp_path, upstream, *replica) as (first, _), serve(tmp_path, upstream, *replica) as (second, _):
            answers = asyncio.run(ask_together([first, second], api_key, upstream, [False] * 10 + [True] * 10, SLOW))
            assert upstream.calls() == 1
            assert_one_answer(answers)
            assert flights([first, second], "follower_remote", "served") >= 1
    finally:
        drop_indexes(redis_client, [f"{key_prefix}:catalog"])


def test_followers_of_a_failed_leader_call_the_upstream_themselves(
    start_proxy: Callable[..., AbstractContextManager[str]],
    api_key: str,
    upstream: FakeUpstream,
    redis_client: redis.Redis,
) -> None:
    async def scenario(url: str) -> tuple[BaseException | Answer, list[Answer]]:
        client = async_openai_sdk(url, api_key, upstream)
        leader = asyncio.ensure_future(ask(client, False, {**SLOW, "X-Fake-Status": "500"}))
        await wait_for_key(redis_client, lease_key(api_key))
        followers = await ask_together([url], api_key, upstream, [False, True, False, True, False], {})
        failed = (await asyncio.gather(leader, return_exceptions=True))[0]
        await client.close()
        return failed, followers

    with start_proxy() as url:
        failed, followers = asyncio.run(scenario(url))
        assert isinstance(failed, openai.InternalServerError)
        assert all(answer.cache == "MISS" and answer.finished for answer in followers)
        assert upstream.calls() == 1 + len(followers)
        assert flights([url], "leader", "not_stored") == 1
        assert flights([url], "follower_local", "leader_gone") == len(followers)


def test_a_request_waits_out_a_dead_leaders_lease_then_calls_the_upstream(
    start_proxy: Callable[..., AbstractContextManager[str]],
    api_key: str,
    upstream: FakeUpstream,
    redis_client: redis.Redis,
) -> None:
    with start_proxy() as url:
        redis_client.set(lease_key(api_key), "a-leader-that-died", px=2000)
        [answer] = asyncio.run(ask_together([url], api_key, upstream, [False], {}))
        assert (answer.cache, answer.finished) == ("MISS", True)
        assert upstream.calls() == 1
        assert flights([url], "follower_remote", "leader_gone") == 1


def test_a_follower_stops_waiting_after_wait_timeout(
    start_proxy: Callable[..., AbstractContextManager[str]],
    api_key: str,
    upstream: FakeUpstream,
    redis_client: redis.Redis,
) -> None:
    with start_proxy(single_flight={"wait_timeout_s": 0.3}) as url:
        redis_client.set(lease_key(api_key), "a-leader-that-hangs", px=30_000)
        try:
            [answer] = asyncio.run(ask_together([url], api_key, upstream, [True], {}))
            assert (answer.cache, answer.finished) == ("MISS", True)
            assert upstream.calls() == 1
            assert flights([url], "follower_remote", "timeout") == 1
        finally:
            redis_client.delete(lease_key(api_key))


CROWD = 1000


async def crowd(url: str, api_key: str, fake: FakeUpstream, size: int) -> list[httpx.Response]:
    """`size` identical requests at once, each on a connection of its own."""
    body = {"model": MODEL, "messages": MESSAGES}
    headers = caller_headers(api_key, fake) | SLOW
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        requests = [http.post("/v1/chat/completions", json=body, headers=headers) for _ in range(size)]
        return await asyncio.gather(*requests)


def test_a_thousand_concurrent_identical_misses_reach_the_upstream_once(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    # The default Redis pool (64 connections) serves 1,000 requests: they wait their turn for a connection.
    # The semantic layer is off only to spare the machine 1,000 embeddings; L1 and single-flight are what is tested.
    # A generous command timeout: on a starved CPU a reply can be late for real, which is not what this tests.
    with start_proxy(semantic={"enabled": False}, redis={"socket_timeout_s": 2.0}) as url:
        responses = asyncio.run(crowd(url, api_key, upstream, CROWD))
        state = value(scrape_until(url, lambda _: True), "llmproxy_redis_breaker_state")
    assert upstream.calls() == 1
    assert {response.status_code for response in responses} == {200}
    assert len({response.json()["choices"][0]["message"]["content"] for response in responses}) == 1
    assert Counter(response.headers["x-cache"] for response in responses) == {"MISS": 1, "HIT-L1": CROWD - 1}
    assert state == 0


def test_no_store_requests_are_not_coalesced(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    headers = {"X-Fake-Latency-Ms": "300", "Cache-Control": "no-store"}
    answers = asyncio.run(ask_together([proxy_url], api_key, upstream, [False] * 5, headers))
    assert upstream.calls() == 5
    assert {answer.cache for answer in answers} == {"MISS"}


def test_disabled_single_flight_forwards_every_miss(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream
) -> None:
    with start_proxy(single_flight={"enabled": False}) as url:
        asyncio.run(ask_together([url], api_key, upstream, [False] * 3, {"X-Fake-Latency-Ms": "300"}))
    assert upstream.calls() == 3


async def wait_for_key(client: redis.Redis, key: str, timeout_s: float = 10.0) -> None:
    """Poll until the key exists (the leader has taken its lease), letting the leader's request run meanwhile."""
    deadline = time.monotonic() + timeout_s
    while not client.exists(key):
        assert time.monotonic() < deadline, f"{key} never appeared"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_only_the_owner_releases_its_lease(redis: AsyncRedis, api_key: str) -> None:
    flight = SingleFlight(redis, "t-single-flight", SingleFlightSettings())
    key = f"t-single-flight:l1:{api_key}:hash"
    trace = RequestTrace("/v1/chat/completions")
    turn = await flight.join(key, trace)
    assert turn.lead is not None
    await redis.set(flight.lease_key(key), "another-owner", px=5_000)  # ours expired; someone else leads now
    await turn.lead.release(stored=False)
    assert await redis.get(flight.lease_key(key)) == b"another-owner"
    assert trace.flight == FlightRecord("leader", "not_stored")
    await redis.delete(flight.lease_key(key))


@pytest.mark.anyio
async def test_a_redis_failure_means_going_upstream_without_waiting(api_key: str) -> None:
    dead = AsyncRedis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    flight = SingleFlight(dead, "t-single-flight", SingleFlightSettings())
    trace = RequestTrace("/v1/chat/completions")
    turn = await flight.join(f"t-single-flight:l1:{api_key}:{uuid.uuid4().hex}", trace)
    await dead.aclose()
    assert (turn.entry, turn.lead) == (None, None)
    assert trace.flight == FlightRecord("leader", "redis_error")
    assert trace.errors == [("redis", "lease")]


@pytest.mark.anyio
async def test_a_leader_that_gets_no_connection_for_its_lease_still_leads_its_own_process(
    redis_url: str, api_key: str
) -> None:
    # One pooled connection, held by another command: the lease cannot be asked for in time (back-pressure).
    busy = create_redis(RedisSettings(max_connections=1, pool_timeout_s=0.05, socket_timeout_s=5.0), redis_url)
    flight = SingleFlight(busy, "t-single-flight", SingleFlightSettings())
    key = f"t-single-flight:l1:{api_key}:{uuid.uuid4().hex}"
    entry = CacheEntry(kind="chat", model=MODEL, created_at=time.time(), response={"id": "chatcmpl-1", "choices": []})
    try:
        holder = asyncio.ensure_future(busy.blpop([f"t-single-flight:{uuid.uuid4().hex}"], 0.5))
        await asyncio.sleep(0)
        lead = (await flight.join(key, RequestTrace("/v1/chat/completions"))).lead
        assert lead is not None, "it leads, without a lease"
        follower_trace = RequestTrace("/v1/chat/completions")
        follower = asyncio.ensure_future(flight.join(key, follower_trace))
        await holder  # the connection is back: the leader's answer is written, then it releases
        await busy.set(key, encode_entry(entry), px=60_000)
        await lead.release(stored=True)
        assert (await follower).entry == entry
        assert follower_trace.flight is not None and follower_trace.flight.outcome == "served"
        assert not await busy.exists(flight.lease_key(key))
    finally:
        await busy.delete(key)
        await busy.aclose()


QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"


def leases_of(redis_client: redis.Redis, api_key: str) -> list[bytes]:
    return list(redis_client.scan_iter(f"{TEST_KEY_PREFIX}:lease:{scope_id(tenant(api_key), None)}:*"))


async def ask_text(client: AsyncOpenAI, text: str) -> str | None:
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": text}]
    )
    return raw.headers.get("x-cache")


def test_an_l2_hit_frees_the_lease_it_took_during_its_search_and_leads_no_flight(
    start_proxy: Callable[..., AbstractContextManager[str]],
    api_key: str,
    upstream: FakeUpstream,
    redis_client: redis.Redis,
) -> None:
    async def run(url: str) -> list[str | None]:
        client = async_openai_sdk(url, api_key, upstream)
        try:
            return [await ask_text(client, QUESTION), await ask_text(client, PARAPHRASE)]
        finally:
            await client.close()

    with start_proxy() as url:
        assert asyncio.run(run(url)) == ["MISS", "HIT-L2"]
        assert eventually(lambda: leases_of(redis_client, api_key) == []), "the lease taken ahead is released"
        samples = scrape(url)
    assert value(samples, FLIGHTS, role="leader", outcome="stored") == 1  # the first question's, only
    assert value(samples, FLIGHTS, role="leader", outcome="not_stored") == 0
    assert upstream.calls() == 1


def test_twins_of_a_paraphrase_sent_together_are_all_answered_from_the_cache(
    proxy_url: str, api_key: str, upstream: FakeUpstream, redis_client: redis.Redis
) -> None:
    async def run() -> list[str | None]:
        client = async_openai_sdk(proxy_url, api_key, upstream)
        try:
            await ask_text(client, QUESTION)
            return list(await asyncio.gather(*(ask_text(client, PARAPHRASE) for _ in range(12))))
        finally:
            await client.close()

    answers = asyncio.run(run())
    assert set(answers) <= {"HIT-L2", "HIT-L1"} and "HIT-L2" in answers
    assert upstream.calls() == 1
    assert eventually(lambda: leases_of(redis_client, api_key) == []), "every lease taken ahead is released"
