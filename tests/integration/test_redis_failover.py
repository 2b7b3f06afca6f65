"""A primary killed under traffic, on a real Redis Cluster and under real Sentinels: no request fails (the cache is
bypassed while the failover runs, and counted), the client follows the new topology by itself, and caching comes
back without a restart. Each test starts (and kills into) a topology of its own."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from openai import OpenAI

from tests.support.clients import openai_sdk
from tests.support.redis_servers import redis_stack
from tests.support.redis_topologies import SENTINEL_SERVICE, Node, redis_cluster, redis_sentinels
from tests.support.upstream import FakeUpstream, metric
from tests.support.waiting import eventually

StartProxy = Callable[..., AbstractContextManager[str]]
# Quick to reopen: the breaker's trial runs every half second, so caching resumes soon after the failover.
FAULT_SETTINGS = {"breaker_failure_threshold": 2, "breaker_reset_s": 0.5, "socket_timeout_s": 0.5}
CLIENT_TIMEOUT_S = 15.0
RECOVERY_S = 40.0
BYPASSED = "llmproxy_cache_bypass_total"


def ask(sdk: OpenAI, text: str) -> str:
    """X-Cache of one chat request; raises if the request itself failed."""
    raw = sdk.chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": text}]
    )
    assert raw.parse().choices[0].message.content
    return raw.headers["x-cache"]


def first_not_bypassed(sdk: OpenAI, text: str) -> str:
    """X-Cache of the first answer to `text` that used the cache again (a MISS would mean the answer was lost)."""
    seen: list[str] = []
    eventually(lambda: seen.append(ask(sdk, text)) or seen[-1] != "BYPASS", RECOVERY_S)
    return seen[-1]


def caching_resumed(sdk: OpenAI) -> bool:
    question = f"Is the cache back? {uuid.uuid4().hex}"
    return ask(sdk, question) == "MISS" and ask(sdk, question) == "HIT-L1"


@dataclass
class Traffic:
    """Requests sent one after another from a thread until stopped; every outcome is kept."""

    sdk: OpenAI
    results: list[str] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            try:
                self.results.append(ask(self.sdk, f"Traffic question {number % 8}"))
            except BaseException as exc:  # a failed request is what this test looks for
                self.failures.append(exc)
            number += 1


@contextmanager
def traffic(sdk: OpenAI) -> Iterator[Traffic]:
    running = Traffic(sdk)
    thread = threading.Thread(target=running.run, name="traffic", daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        thread.join(CLIENT_TIMEOUT_S * 2)


def bypass_reasons(proxy: str) -> float:
    return metric(proxy, BYPASSED, reason="redis-unavailable")


def test_a_cluster_primary_killed_under_traffic_fails_no_request_and_caching_comes_back(
    start_proxy: StartProxy, tmp_path: Path, key_prefix: str, api_key: str, upstream: FakeUpstream
) -> None:
    with redis_cluster(tmp_path / "cluster") as cluster, redis_stack(tmp_path / "search") as search_url:
        redis_section = {"mode": "cluster", "key_prefix": key_prefix, "search_url": search_url, **FAULT_SETTINGS}
        with (
            start_proxy(redis_url=cluster.url, redis=redis_section) as proxy,
            openai_sdk(proxy, api_key, upstream, timeout=CLIENT_TIMEOUT_S) as sdk,
        ):
            assert ask(sdk, "Which shard holds me?") == "MISS"
            assert eventually(lambda: sum(cluster.keys_per_primary(f"{key_prefix}:l1:*").values()) == 1)
            victim = next(
                node for node in cluster.primaries() if cluster.keys_per_primary(f"{key_prefix}:l1:*")[node.port]
            )
            replicated(victim)
            with traffic(sdk) as running:
                assert eventually(lambda: len(running.results) >= 10, RECOVERY_S)
                victim.kill()
                cluster.wait_healthy(RECOVERY_S)
                # The client learns the new slot map at its next topology refresh (at most one a second, and a
                # node's view may lag the promotion by a gossip round): caching is back when the victim's answer
                # is served by its promoted replica and every traffic question hits again.
                kept = first_not_bypassed(sdk, "Which shard holds me?")
                back = eventually(lambda: running.results[-16:] == ["HIT-L1"] * 16, RECOVERY_S)
                resumed = caching_resumed(sdk)
            bypassed = bypass_reasons(proxy)
    assert running.failures == []
    assert "BYPASS" in running.results and bypassed > 0, "the failover was bypassed and counted"
    assert kept == "HIT-L1", "the promoted replica serves the answer its primary stored"
    assert back and resumed, "every shard caches again, without a restart"


def test_a_sentinel_primary_killed_under_traffic_fails_no_request_and_caching_comes_back(
    start_proxy: StartProxy, tmp_path: Path, key_prefix: str, api_key: str, upstream: FakeUpstream
) -> None:
    with redis_sentinels(tmp_path / "sentinel") as setup:
        redis_section = {
            "mode": "sentinel",
            "sentinels": setup.sentinel_addresses,
            "sentinel_service": SENTINEL_SERVICE,
            "key_prefix": key_prefix,
            **FAULT_SETTINGS,
        }
        with (
            start_proxy(redis_url="redis://unused:6379/0", redis=redis_section) as proxy,
            openai_sdk(proxy, api_key, upstream, timeout=CLIENT_TIMEOUT_S) as sdk,
        ):
            assert [ask(sdk, "Who is the primary?") for _ in range(2)] == ["MISS", "HIT-L1"]
            old = setup.primary()
            replicated(old)
            with traffic(sdk) as running:
                assert eventually(lambda: len(running.results) >= 10, RECOVERY_S)
                old.kill()
                new = setup.wait_primary_other_than(old)
                kept = first_not_bypassed(sdk, "Who is the primary?")
                back = eventually(lambda: running.results[-16:] == ["HIT-L1"] * 16, RECOVERY_S)
                resumed = caching_resumed(sdk)
            bypassed = bypass_reasons(proxy)
    assert new is not old
    assert running.failures == []
    assert "BYPASS" in running.results and bypassed > 0, "the failover was bypassed and counted"
    assert kept == "HIT-L1", "the promoted replica serves the answer its primary stored"
    assert back and resumed, "caching is back, without a restart"


def replicated(primary: Node) -> None:
    """Wait until a replica has every write of the primary (WAIT), so killing it loses nothing."""
    with primary.client() as client:
        assert int(client.execute_command("WAIT", 1, 5000)) >= 1
