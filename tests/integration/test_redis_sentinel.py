"""The proxy under real Sentinels (a primary and its replica from the Redis Stack binaries, three sentinels), with
nothing failing: every tier and the admin API work as on a standalone Redis. Failover: test_redis_failover.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.support.admin import ADMIN_TOKEN, tenant
from tests.support.clients import openai_sdk
from tests.support.redis_topologies import SENTINEL_SERVICE, SentinelSetup, redis_sentinels
from tests.support.upstream import FakeUpstream
from tests.support.waiting import eventually

StartProxy = Callable[..., AbstractContextManager[str]]
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    with redis_sentinels(tmp_path_factory.mktemp("sentinel")) as setup:
        yield setup


def on_sentinels(start_proxy: StartProxy, setup: SentinelSetup, key_prefix: str) -> AbstractContextManager[str]:
    redis_section = {
        "mode": "sentinel",
        "sentinels": setup.sentinel_addresses,
        "sentinel_service": SENTINEL_SERVICE,
        "key_prefix": key_prefix,
    }
    return start_proxy(redis_url="redis://unused:6379/0", redis=redis_section, admin={"token": ADMIN_TOKEN})


def ask(sdk: OpenAI, text: str) -> str:
    messages: list[Any] = [{"role": "user", "content": text}]
    raw = sdk.chat.completions.with_raw_response.create(model="fake-model", messages=messages)
    return raw.headers["x-cache"]


def test_every_tier_history_and_admin_work_under_sentinels(
    start_proxy: StartProxy,
    sentinels: SentinelSetup,
    key_prefix: str,
    api_key: str,
    upstream: FakeUpstream,
) -> None:
    with on_sentinels(start_proxy, sentinels, key_prefix) as proxy, openai_sdk(proxy, api_key, upstream) as sdk:
        answers = [ask(sdk, text) for text in ("How do I reverse a list in Python?",) * 2]
        answers.append(ask(sdk, "What is the way to reverse a Python list?"))

        def recorded() -> bool:
            totals = httpx.get(proxy + "/admin/stats", params={"from": "-10m"}, headers=AUTH).json()["totals"]
            return bool(totals["requests"] == 3 and totals["hits_l1"] == 1 and totals["hits_l2"] == 1)

        history = eventually(recorded)
        listed = httpx.get(proxy + "/admin/entries", headers=AUTH).json()
        deleted = httpx.post(proxy + "/admin/invalidate", json={"tenant": tenant(api_key)}, headers=AUTH, timeout=10)
        events = httpx.get(proxy + "/admin/audit", headers=AUTH).json()["events"]
        after = ask(sdk, "How do I reverse a list in Python?")
    assert answers == ["MISS", "HIT-L1", "HIT-L2"]
    assert history, "the traffic history is written to the sentinels' primary"
    assert listed["total"] == 2  # the answer and its promoted paraphrase
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 2, deleted.text
    assert events[0]["action"] == "invalidate"
    assert after == "MISS"
    assert upstream.calls() == 2
