"""GET /admin/overview and GET /admin/routes over real HTTP: health, breakers, fail-open counts, routes and traffic."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from llmproxy.store.embedded_redis import EmbeddedRedis
from tests.support.admin import ADMIN_TOKEN, AdminProxy, chat, running_admin_proxy
from tests.support.clients import caller_headers, openai_sdk
from tests.support.router import ROUTES, routes_file_in
from tests.support.upstream import FakeUpstream
from tests.support.waiting import eventually

AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
StartProxy = Callable[..., AbstractContextManager[str]]


def overview(proxy: AdminProxy) -> dict[str, Any]:
    response = proxy.http.get("/admin/overview")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_overview_reports_redis_entries_memory_and_closed_breakers(admin_proxy: AdminProxy) -> None:
    sdk = admin_proxy.sdk(f"sk-{uuid.uuid4().hex}")
    chat(sdk, "How do I reverse a list in Python?")
    chat(sdk, "What is the capital of France?")
    body = overview(admin_proxy)
    redis_part = body["redis"]
    assert (redis_part["status"], redis_part["breaker"], redis_part["entries"]) == ("ok", "closed", 2)
    assert redis_part["used_memory_bytes"] > 0
    assert redis_part["eviction_policy"] == "noeviction"
    assert redis_part["warnings"] == []
    assert body["upstreams"] == [
        {"name": "default", "breaker": "closed", "opened": 0},
        {"name": "anthropic", "breaker": "closed", "opened": 0},  # the Anthropic upstream's own breaker
    ]
    assert body["fail_open"] == {}
    assert body["semantic"]["enabled"] is True
    assert (body["history"], body["router"]) == (True, False)


def test_entry_count_follows_deletions_at_once(admin_proxy: AdminProxy) -> None:
    sdk = admin_proxy.sdk(f"sk-{uuid.uuid4().hex}")
    chat(sdk, "How do I reverse a list in Python?")
    assert overview(admin_proxy)["redis"]["entries"] == 1
    assert admin_proxy.http.post("/admin/flush", json={"confirm": "flush-all"}).status_code == 200
    assert overview(admin_proxy)["redis"]["entries"] == 0  # sampled by the call, not 15 s later


def test_an_open_upstream_breaker_and_its_openings_are_shown(
    start_proxy: StartProxy, key_prefix: str, redis_client: redis.Redis, upstream: FakeUpstream
) -> None:
    breaker = {"breaker_failure_threshold": 2, "breaker_reset_s": 60, "max_retries": 0}
    with running_admin_proxy(start_proxy, key_prefix, redis_client, upstream, upstream=breaker) as proxy:
        for _ in range(2):
            body = {"model": "fake-model", "messages": [{"role": "user", "content": uuid.uuid4().hex}]}
            headers = caller_headers("sk-test", upstream) | {"X-Fake-Status": "500"}
            assert httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers).status_code == 500
        assert overview(proxy)["upstreams"] == [
            {"name": "default", "breaker": "open", "opened": 1},
            {"name": "anthropic", "breaker": "closed", "opened": 0},
        ]


def test_with_redis_down_the_overview_still_answers_and_counts_fail_open(
    start_proxy: StartProxy, own_redis: EmbeddedRedis, upstream: FakeUpstream
) -> None:
    fast = {"socket_timeout_s": 0.25, "breaker_failure_threshold": 100}
    with start_proxy(redis_url=own_redis.url, redis=fast, admin={"token": ADMIN_TOKEN}) as url:
        with openai_sdk(url, "sk-test", upstream) as sdk:
            assert chat(sdk, "How do I reverse a list in Python?") == "MISS"
            seen = httpx.get(url + "/admin/overview", headers=AUTH).json()["redis"]
            own_redis.stop()
            assert chat(sdk, "How do I reverse a list in Python?") == "BYPASS"  # served anyway, by the upstream
        response = httpx.get(url + "/admin/overview", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["redis"]["status"] == "unreachable"
    assert body["redis"]["eviction_policy"] == "unknown"
    assert body["redis"]["entries"] == seen["entries"] == 1  # the last sample, kept
    assert body["fail_open"]["redis"] >= 1


def test_without_a_router_the_routes_listing_says_so(admin_proxy: AdminProxy) -> None:
    response = admin_proxy.http.get("/admin/routes")
    assert response.status_code == 200, response.text
    assert response.json() == {"configured": False, "routes_file": None, "routes": [], "other": []}


def test_routes_listing_shows_each_route_with_its_action_and_traffic(
    start_proxy: StartProxy, key_prefix: str, redis_client: redis.Redis, tmp_path: Path, upstream: FakeUpstream
) -> None:
    routes_file = routes_file_in(tmp_path, ROUTES)
    router = {"routes_file": str(routes_file)}
    cheap = {"cheap": {"base_url": upstream.api_url}}
    with running_admin_proxy(start_proxy, key_prefix, redis_client, upstream, router=router, upstreams=cheap) as proxy:
        sdk = proxy.sdk(f"sk-{uuid.uuid4().hex}")
        chat(sdk, "hi there, how are you doing today?")  # small-talk: a miss
        chat(sdk, "hi there, how are you doing today?")  # an L1 hit: served before routing
        chat(sdk, "How do I reverse a list in Python?")  # default

        def routes() -> dict[str, Any]:
            listing: dict[str, Any] = proxy.http.get("/admin/routes").json()
            return listing

        # A request is counted once its write-back, which follows its response, is over.
        assert eventually(lambda: any(other["name"] == "default" for other in routes()["other"]))
        listed = routes()
    assert listed["configured"] is True
    assert listed["routes_file"] == str(routes_file)
    by_name = {route["name"]: route for route in listed["routes"]}
    assert list(by_name) == ["small-talk", "time-sensitive", "identity", "weapons"]
    assert by_name["small-talk"] == {
        "name": "small-talk",
        "action": "forward",
        "upstream": "cheap",
        "model": "cheap-model",
        "distance_threshold": 0.3,
        "references": 2,
        "cache": {"no_cache": False, "ttl_s": None},
        "requests": 1,
        "hits": 0,
    }
    assert by_name["time-sensitive"]["cache"] == {"no_cache": True, "ttl_s": None}
    assert (by_name["identity"]["action"], by_name["identity"]["content"]) == (
        "respond",
        "I am an assistant served through llmproxy.",
    )
    assert (by_name["weapons"]["action"], by_name["weapons"]["status"]) == ("block", 403)
    assert {other["name"]: (other["requests"], other["hits"]) for other in listed["other"]} == {
        "default": (1, 0),
        "none": (1, 1),
    }


@pytest.mark.parametrize("path", ["/admin/overview", "/admin/routes"])
def test_overview_and_routes_need_the_token(admin_proxy: AdminProxy, path: str) -> None:
    assert httpx.get(admin_proxy.url + path).status_code == 401
    assert httpx.get(admin_proxy.url + path, headers={"authorization": "Bearer wrong-token"}).status_code == 401
