"""The admin API as tests use it: an httpx client with the token, SDK clients per tenant, Redis key snapshots.

The SDK clients send the test's fake-upstream recorder header (tests/support/clients.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import httpx
import redis
from openai import OpenAI

from llmproxy.proxy.scope import caller_credentials, tenant_id
from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream
from tests.support.waiting import eventually

ADMIN_TOKEN = "admin-test-token-0123456789"
FAMILIES = ("l1", "l2", "cat")  # answers, L2 documents, catalog documents

Snapshot = dict[str, frozenset[str]]  # family -> entry ids (request hashes) present in Redis


@dataclass
class AdminProxy:
    """A proxy started with its own key prefix and an admin token; its tenants' calls count in `fake`."""

    url: str
    prefix: str
    redis: redis.Redis
    fake: FakeUpstream
    token: str = ADMIN_TOKEN
    http: httpx.Client = field(init=False)
    _sdks: list[OpenAI] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {self.token}"}, timeout=30)

    def sdk(self, api_key: str) -> OpenAI:
        """An SDK client of the tenant api_key (closed with the proxy)."""
        self._sdks.append(openai_sdk(self.url, api_key, self.fake))
        return self._sdks[-1]

    def close(self) -> None:
        for client in self._sdks:
            client.close()
        self.http.close()

    def invalidate(self, **body: Any) -> httpx.Response:
        return self.http.post("/admin/invalidate", json=body)

    def entries(self, **params: Any) -> dict[str, Any]:
        response = self.http.get("/admin/entries", params=params)
        assert response.status_code == 200, response.text
        listed: dict[str, Any] = response.json()
        return listed

    def audit(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.http.get("/admin/audit").json()["events"]
        return events

    def snapshot(self) -> Snapshot:
        """Which entry ids have an L1 key, an L2 document and a catalog document right now."""
        return {family: self.ids(family) for family in FAMILIES}

    def ids(self, family: str) -> frozenset[str]:
        keys = self.redis.scan_iter(match=f"{self.prefix}:{family}:*", count=1000)
        return frozenset(key.decode().rpartition(":")[2] for key in keys)

    def new_ids(self, family: str, before: frozenset[str]) -> frozenset[str]:
        """The ids of `family` that were not there `before`, once there are any (write-backs follow responses)."""
        eventually(lambda: bool(self.ids(family) - before))
        return self.ids(family) - before


@contextmanager
def running_admin_proxy(
    start_proxy: Callable[..., AbstractContextManager[str]],
    key_prefix: str,
    redis_client: redis.Redis,
    fake: FakeUpstream,
    **sections: dict[str, Any],
) -> Iterator[AdminProxy]:
    """A proxy with the admin token and key_prefix (and `sections` changed); its indexes and audit go afterwards."""
    with start_proxy(redis={"key_prefix": key_prefix}, admin={"token": ADMIN_TOKEN}, **sections) as url:
        proxy = AdminProxy(url, key_prefix, redis_client, fake)
        try:
            yield proxy
        finally:
            proxy.close()
    drop_indexes(redis_client, [f"{key_prefix}:l2", f"{key_prefix}:catalog"])
    redis_client.delete(f"{key_prefix}:audit")


def tenant(api_key: str) -> str:
    """The tenant id the proxy derives from a Bearer API key (what the admin API filters on)."""
    found = tenant_id(caller_credentials([("authorization", f"Bearer {api_key}")]), shared=False, anonymous=False)
    assert found is not None
    return found


def chat(sdk: OpenAI, text: str, model: str = "fake-model", namespace: str | None = None) -> str:
    """Ask once; the X-Cache status."""
    headers = {"X-LLMProxy-Namespace": namespace} if namespace else {}
    raw = sdk.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], extra_headers=headers
    )
    return raw.headers["x-cache"]


def embed(sdk: OpenAI, text: str, model: str = "fake-embedding") -> str:
    """Embed once; the X-Cache status."""
    return sdk.embeddings.with_raw_response.create(model=model, input=text).headers["x-cache"]


def drop_indexes(client: redis.Redis, names: list[str]) -> None:
    """Drop those of the indexes that exist, with their documents."""
    existing = {name.decode() for name in client.execute_command("FT._LIST")}  # type: ignore[no-untyped-call]
    for name in set(names) & existing:
        client.execute_command("FT.DROPINDEX", name, "DD")  # type: ignore[no-untyped-call]


class _Cached(Protocol):
    id: str


CachedT = TypeVar("CachedT", bound=_Cached)


@dataclass
class Population(Generic[CachedT]):
    """Cached answers by name, and the two API keys (tenants) that asked for them."""

    entries: dict[str, CachedT]
    alice: str
    bob: str

    def ids(self, *names: str) -> frozenset[str]:
        return frozenset(self.entries[name].id for name in names)


def stored_id(admin: AdminProxy, ask: Callable[[], str]) -> str:
    """Ask once (a miss that is stored) and find the id of the one entry it added."""
    before = admin.ids("l1")
    assert ask() == "MISS"
    (new,) = admin.new_ids("l1", before)
    return new
