"""An answer stored between a request's L1 lookup and its L2 lookup is found by L2 under the request's own key:
that is an L1 hit (same exact key), labelled and counted so, with no similarity header and no promotion write.

Two replicas share one Redis: replica 1 holds its caller inside the embedding step (after the L1 miss) while
the same request is answered and stored through replica 2, then lets it go on to L2.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from llmproxy.app import create_app
from llmproxy.embeddings.embedder import ModelLoader
from llmproxy.settings import EmbeddingSettings
from tests.conftest import proxy_settings
from tests.integration.test_metrics import scrape, value
from tests.support.admin import drop_indexes
from tests.support.clients import openai_sdk
from tests.support.servers import serve_in_thread
from tests.support.upstream import FakeUpstream

QUESTION = "How do I reverse a list in Python?"
CHAT = "/v1/chat/completions"
GATE_TIMEOUT_S = 30.0


class GatedModel:
    """The real model, except that once `hold` is set the next encode waits for `release` (orders two replicas)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.hold, self.entered, self.release = threading.Event(), threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        if self.hold.is_set():
            self.hold.clear()
            self.entered.set()
            assert self.release.wait(GATE_TIMEOUT_S), "the test never released the gated embedding"
        return self._model.encode(*args, **kwargs)


class Writes:
    """Keyspace notifications of the cache's L1 and catalog keys: every write Redis performs on them."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._client, self._prefix = client, key_prefix
        self._previous = client.config_get("notify-keyspace-events")["notify-keyspace-events"]
        client.config_set("notify-keyspace-events", "KA")
        self._pubsub = client.pubsub()
        self._pubsub.psubscribe(f"__keyspace@*__:{key_prefix}:*")
        self._pubsub.get_message(timeout=5)  # the psubscribe confirmation

    def collected(self) -> list[tuple[str, str]]:
        """(key, event) of the answer and catalog keys written since the start, in order."""
        marker = f"{self._prefix}:marker:{uuid.uuid4().hex}"
        self._client.set(marker, "1", ex=60)  # delivered after every earlier event: the end of the list
        events: list[tuple[str, str]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = self._pubsub.get_message(timeout=1)
            if message is None or message["type"] != "pmessage":
                continue
            key = message["channel"].decode().split(":", 1)[1]
            if key == marker:
                return events
            if key.startswith((f"{self._prefix}:l1:", f"{self._prefix}:cat:")):
                events.append((key, message["data"].decode()))
        raise AssertionError("the marker write was never notified")

    def close(self) -> None:
        self._pubsub.close()
        self._client.config_set("notify-keyspace-events", self._previous)


@pytest.fixture
def gate(model_loader: ModelLoader) -> GatedModel:
    return GatedModel(model_loader(EmbeddingSettings()))


@pytest.fixture
def replicas(
    redis_url: str, upstream_url: str, model_loader: ModelLoader, key_prefix: str, gate: GatedModel
) -> Iterator[tuple[str, str]]:
    """Replica 1 (gated model, a generous embedding timeout) and replica 2 (the model as is), on one key prefix."""
    sections: dict[str, dict[str, Any]] = {"redis": {"key_prefix": key_prefix}}
    gated = proxy_settings(
        redis_url, upstream_url + "/v1", embeddings={"timeout_ms": GATE_TIMEOUT_S * 1000}, **sections
    )
    plain = proxy_settings(redis_url, upstream_url + "/v1", **sections)
    with (
        serve_in_thread(create_app(gated, model_loader=lambda _: gate)) as first,
        serve_in_thread(create_app(plain, model_loader=model_loader)) as second,
    ):
        yield first, second
    with redis.Redis.from_url(redis_url) as client:
        drop_indexes(client, [f"{key_prefix}:l2", f"{key_prefix}:catalog"])


def ask(url: str, api_key: str, fake: FakeUpstream) -> dict[str, str]:
    with openai_sdk(url, api_key, fake, timeout=60) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="fake-model", messages=[{"role": "user", "content": QUESTION}]
        )
        return dict(raw.headers)


def test_an_l2_candidate_with_the_requests_own_key_is_an_l1_hit(
    replicas: tuple[str, str],
    gate: GatedModel,
    api_key: str,
    upstream: FakeUpstream,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    first, second = replicas
    held: dict[str, dict[str, str]] = {}
    gate.hold.set()
    caller = threading.Thread(target=lambda: held.setdefault("headers", ask(first, api_key, upstream)))
    caller.start()
    assert gate.entered.wait(GATE_TIMEOUT_S)  # replica 1 missed L1 and is embedding
    assert ask(second, api_key, upstream)["x-cache"] == "MISS"  # replica 2 answers and stores the same request
    writes = Writes(redis_client, key_prefix)
    try:
        gate.release.set()
        caller.join(GATE_TIMEOUT_S)
        promotions = writes.collected()
    finally:
        writes.close()
    headers = held["headers"]
    assert headers["x-cache"] == "HIT-L1"
    assert "x-cache-similarity" not in headers
    assert promotions == []
    samples = scrape(first)
    labels = {"endpoint": CHAT, "model": "fake-model", "route": "none"}
    assert value(samples, "llmproxy_requests_total", result="hit_l1", **labels) == 1
    assert value(samples, "llmproxy_requests_total", result="hit_l2", **labels) == 0
    assert upstream.calls() == 1
