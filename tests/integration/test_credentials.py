"""Tenants from every kind of credential: Bearer, api-key, x-api-key, Basic, other schemes; none means bypass.

Callers are the official SDK: its `api_key` is the Bearer key, other credentials go in as headers (and its
Authorization header is omitted when a caller has no Bearer key). The fake upstream takes a Bearer key,
`api-key` or `x-api-key`; for Basic and other schemes the proxy sends a key of its own (`keyed` below).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
import redis
from openai import Omit, omit

from tests.integration.test_tenancy import stored_values
from tests.support.admin import ADMIN_TOKEN, AdminProxy, drop_indexes
from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream

QUESTION = "Summarise my private notes"
PROXY_KEY = "sk-the-proxys-own-upstream-key"
StartProxy = Callable[..., AbstractContextManager[str]]
Caller = dict[str, str]  # "api_key" (sent as Bearer by the SDK) and/or other headers


def secret() -> str:
    return f"key-{uuid.uuid4().hex}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def header_tenant(name: str, value: str) -> str:
    """The README's recipe for the tenant of one non-Bearer credential: `printf '<name>: %s\\n' "$KEY" | sha256sum`."""
    return hashlib.sha256(f"{name}: {value}\n".encode()).hexdigest()[:32]


def ask(url: str, fake: FakeUpstream, credentials: Caller) -> tuple[str, str | None]:
    """One chat request through the SDK with these credentials: its X-Cache and X-Cache-Bypass-Reason."""
    headers: dict[str, str | Omit] = {k: v for k, v in credentials.items() if k != "api_key"}
    api_key = credentials.get("api_key")
    if api_key is None:
        headers.setdefault("Authorization", omit)  # the SDK insists on a key; this caller sends none
    with openai_sdk(url, api_key or "never-sent", fake) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="fake-model", messages=[{"role": "user", "content": QUESTION}], extra_headers=headers
        )
    return raw.headers["x-cache"], raw.headers.get("x-cache-bypass-reason")


def statuses(url: str, fake: FakeUpstream, callers: list[Caller]) -> list[str]:
    """Each caller asks the same question in turn: their X-Cache values."""
    return [ask(url, fake, credentials)[0] for credentials in callers]


@pytest.fixture
def cleanup(redis_client: redis.Redis, key_prefix: str) -> Iterator[None]:
    yield
    drop_indexes(redis_client, [f"{key_prefix}:l2", f"{key_prefix}:catalog"])
    redis_client.delete(f"{key_prefix}:audit")


@pytest.fixture
def proxy(start_proxy: StartProxy, key_prefix: str, cleanup: None) -> Iterator[str]:
    """Forwards each caller's own credentials."""
    with start_proxy(redis={"key_prefix": key_prefix}, semantic={"enabled": False}) as url:
        yield url


@pytest.fixture
def keyed(start_proxy: StartProxy, key_prefix: str, cleanup: None) -> Iterator[str]:
    """Sends its own upstream key instead of the caller's Authorization header."""
    settings = {"redis": {"key_prefix": key_prefix}, "semantic": {"enabled": False}, "upstream": {"api_key": PROXY_KEY}}
    with start_proxy(**settings) as url:
        yield url


@pytest.mark.parametrize("header", ["api-key", "x-api-key"])
def test_two_callers_with_different_api_key_headers_never_share_an_answer(
    proxy: str, upstream: FakeUpstream, header: str
) -> None:
    alice, bob = {header: secret()}, {header: secret()}
    assert statuses(proxy, upstream, [alice, bob, alice, bob]) == ["MISS", "MISS", "HIT-L1", "HIT-L1"]
    assert upstream.calls() == 2


def test_two_basic_auth_users_never_share_an_answer(keyed: str, upstream: FakeUpstream) -> None:
    alice, bob = {"Authorization": basic("alice", secret())}, {"Authorization": basic("bob", secret())}
    alice_other_password = {"Authorization": basic("alice", secret())}
    assert statuses(keyed, upstream, [alice, bob, alice_other_password, alice]) == ["MISS", "MISS", "MISS", "HIT-L1"]
    assert upstream.calls() == 3


def test_another_authorization_scheme_is_a_tenant_of_its_own(keyed: str, upstream: FakeUpstream) -> None:
    alice, bob = {"Authorization": f"Token {secret()}"}, {"Authorization": secret()}  # a bare key has no scheme
    assert statuses(keyed, upstream, [alice, bob, alice, bob]) == ["MISS", "MISS", "HIT-L1", "HIT-L1"]


def test_one_key_sent_three_ways_is_three_tenants(proxy: str, upstream: FakeUpstream) -> None:
    key = secret()
    callers = [{"api_key": key}, {"api-key": key}, {"x-api-key": key}]
    assert statuses(proxy, upstream, callers) == ["MISS"] * 3
    assert statuses(proxy, upstream, callers) == ["HIT-L1"] * 3


def test_every_credential_of_a_request_is_part_of_its_tenant(proxy: str, upstream: FakeUpstream) -> None:
    key, azure = secret(), secret()
    callers = [{"api_key": key}, {"api_key": key, "api-key": azure}, {"api-key": azure}]
    assert statuses(proxy, upstream, callers) == ["MISS"] * 3
    assert statuses(proxy, upstream, [{"api-key": azure, "api_key": key}]) == ["HIT-L1"]


def test_the_authorization_scheme_name_is_case_insensitive(proxy: str, upstream: FakeUpstream) -> None:
    key = secret()
    assert statuses(proxy, upstream, [{"api_key": key}, {"Authorization": f"bearer {key}"}]) == ["MISS", "HIT-L1"]


def test_a_request_without_credentials_bypasses_the_cache_and_is_forwarded_unchanged(
    keyed: str, upstream: FakeUpstream
) -> None:
    assert [ask(keyed, upstream, {}) for _ in range(2)] == [("BYPASS", "no-credential")] * 2
    body = f'{{"model": "fake-model", "messages": [{{"role": "user", "content": "{QUESTION}"}}]}}'
    plain = httpx.post(
        keyed + "/v1/chat/completions", content=body, headers={"content-type": "application/json", **upstream.headers}
    )
    assert (plain.status_code, plain.headers["x-cache"], plain.headers["x-cache-bypass-reason"]) == (
        200,
        "BYPASS",
        "no-credential",
    )
    recorded = upstream.requests()
    assert len(recorded) == 3 and recorded[2]["body"] == body


def test_a_request_without_credentials_reaches_the_upstream_as_it_came(proxy: str, upstream: FakeUpstream) -> None:
    response = httpx.post(
        proxy + "/v1/chat/completions",
        json={"model": "fake-model", "messages": [{"role": "user", "content": QUESTION}]},
        headers=upstream.headers,
    )
    assert (response.status_code, response.headers["x-cache"]) == (401, "BYPASS")  # the upstream's own answer
    assert "authorization" not in upstream.requests()[0]["headers"]


def test_an_empty_credential_is_no_credential(keyed: str, upstream: FakeUpstream) -> None:
    assert ask(keyed, upstream, {"api-key": "", "Authorization": "Bearer"}) == ("BYPASS", "no-credential")


def test_anonymous_scope_lets_callers_without_credentials_share_one_partition(
    start_proxy: StartProxy, key_prefix: str, upstream: FakeUpstream, cleanup: None
) -> None:
    settings = {"redis": {"key_prefix": key_prefix}, "upstream": {"api_key": PROXY_KEY}}
    with start_proxy(**settings, cache={"anonymous_scope": True}) as url:
        assert statuses(url, upstream, [{}, {}]) == ["MISS", "HIT-L1"]
        assert statuses(url, upstream, [{"api-key": secret()}]) == ["MISS"]  # a credential is still a tenant of its own
    assert upstream.calls() == 2


def test_shared_scope_still_shares_across_every_kind_of_credential(
    start_proxy: StartProxy, key_prefix: str, upstream: FakeUpstream, cleanup: None
) -> None:
    settings = {"redis": {"key_prefix": key_prefix}, "upstream": {"api_key": PROXY_KEY}}
    with start_proxy(**settings, cache={"shared_scope": True}) as url:
        assert statuses(url, upstream, [{"api_key": secret()}, {"api-key": secret()}, {}]) == [
            "MISS",
            "HIT-L1",
            "HIT-L1",
        ]


def test_the_tenant_comes_from_the_caller_even_when_the_proxy_sends_its_own_key(
    keyed: str, upstream: FakeUpstream
) -> None:
    alice, bob = {"x-api-key": secret()}, {"api_key": secret()}
    assert statuses(keyed, upstream, [alice, bob, alice, bob]) == ["MISS", "MISS", "HIT-L1", "HIT-L1"]
    assert {call["headers"]["authorization"] for call in upstream.requests()} == {f"Bearer {PROXY_KEY}"}


def test_no_credential_reaches_redis_or_the_logs_in_clear(
    keyed: str, key_prefix: str, redis_client: redis.Redis, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    bearer, azure, anthropic, password, token = (secret() for _ in range(5))
    callers = [
        {"api_key": bearer},
        {"api-key": azure},
        {"x-api-key": anthropic},
        {"Authorization": basic("alice", password)},
        {"Authorization": f"Token {token}"},
    ]
    caplog.set_level(logging.DEBUG)
    assert statuses(keyed, upstream, callers) == ["MISS"] * 5
    assert statuses(keyed, upstream, callers) == ["HIT-L1"] * 5
    keys = list(redis_client.scan_iter(match=f"{key_prefix}:*", count=1000))
    stored = b"\n".join([*keys, *(value for key in keys for value in stored_values(redis_client, key))])
    proxy_logs = [record for record in caplog.records if not record.name.startswith("llmproxy.fake_upstream")]
    logged = "\n".join(f"{record.getMessage()} {record.args}" for record in proxy_logs)
    assert keys and proxy_logs
    for value in (bearer, azure, anthropic, password, token, basic("alice", password).split()[1]):
        assert value.encode() not in stored and value not in logged


def test_admin_listings_filter_on_the_tenant_of_any_credential(
    start_proxy: StartProxy, key_prefix: str, redis_client: redis.Redis, upstream: FakeUpstream, cleanup: None
) -> None:
    azure, anthropic = secret(), secret()
    with start_proxy(redis={"key_prefix": key_prefix}, admin={"token": ADMIN_TOKEN}) as url:
        admin = AdminProxy(url, key_prefix, redis_client, upstream)
        assert statuses(url, upstream, [{"api-key": azure}, {"x-api-key": anthropic}]) == ["MISS", "MISS"]
        listed = admin.entries(tenant=header_tenant("api-key", azure))
        assert [entry["tenant"] for entry in listed["entries"]] == [header_tenant("api-key", azure)]
        removed = admin.invalidate(tenant=header_tenant("x-api-key", anthropic))
        assert removed.status_code == 200, removed.text
        assert statuses(url, upstream, [{"api-key": azure}, {"x-api-key": anthropic}]) == ["HIT-L1", "MISS"]
        admin.close()


def test_tenant_ids_follow_the_readme_recipes(
    start_proxy: StartProxy, key_prefix: str, redis_client: redis.Redis, upstream: FakeUpstream, cleanup: None
) -> None:
    key = secret()
    with start_proxy(redis={"key_prefix": key_prefix}, admin={"token": ADMIN_TOKEN}) as url:
        admin = AdminProxy(url, key_prefix, redis_client, upstream)
        statuses(url, upstream, [{"api_key": key}, {"api-key": key}])
        listed: list[Any] = admin.entries()["entries"]
        admin.close()
    bearer_recipe = hashlib.sha256(key.encode()).hexdigest()[:32]  # printf %s "$KEY" | sha256sum
    assert {entry["tenant"] for entry in listed} == {bearer_recipe, header_tenant("api-key", key)}
