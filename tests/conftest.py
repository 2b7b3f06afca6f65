"""Session fixtures: a real Redis Stack, the fake model server and the proxy, each on a loopback port.

Every test gets its own API key, which is its own tenant scope: tests share one Redis and one proxy
without ever seeing each other's entries, and without FLUSHALL. Every test also gets its own recorder in the
shared fake upstream (`upstream`): its clients send the recorder's X-Fake-Recorder header, which proxies forward,
so the fake's call counts, call log and reply numbers are the test's own. Build clients with
tests/support/clients.py (`openai_sdk(url, api_key, upstream)`, `caller_headers(api_key, upstream)`, ...); a
request without the header lands in the fake's default recorder, which no test reads.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, settings
from openai import AsyncOpenAI, OpenAI
from playwright.sync_api import Browser
from redis.asyncio import Redis as AsyncRedis

from llmproxy.app import create_app
from llmproxy.commands.http_protocol import server_options
from llmproxy.embeddings.embedder import ModelLoader, load_model
from llmproxy.fake_upstream import FakeUpstreamConfig, create_fake_upstream
from llmproxy.settings import EmbeddingSettings, Settings, load_settings
from llmproxy.store.embedded_redis import EmbeddedRedis, EmbeddedRedisConfig
from tests.support.admin import AdminProxy, running_admin_proxy
from tests.support.clients import async_openai_sdk, openai_sdk
from tests.support.console import chromium
from tests.support.servers import free_port, serve_in_thread
from tests.support.upstream import FakeUpstream as FakeUpstream  # re-exported for tests that import it from here

# Fuzz tests (test_fuzz.py): `ci` runs by default, the same examples every time and well under a minute;
# `--hypothesis-profile=fuzz` is the long run by hand (BENCHMARKS.md, Robustness). Real HTTP: no deadline.
_FUZZ = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=100, derandomize=True, **_FUZZ)
settings.register_profile("fuzz", max_examples=5000, **_FUZZ)
settings.load_profile("ci")

TEST_KEY_PREFIX = "llmproxy-test"
TEST_MAX_BODY_BYTES = 64 * 1024


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = EmbeddedRedisConfig(data_dir=tmp_path_factory.mktemp("redis-stack"), persist=False)
    with EmbeddedRedis(config) as server:
        yield server.url


@pytest.fixture(scope="session")
def upstream_url() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamConfig())) as url:
        yield url


@pytest.fixture
def recorder() -> str:
    """The name of this test's recorder in the shared fake upstream (a fake the test starts itself can use it too)."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def upstream(upstream_url: str, recorder: str) -> Iterator[FakeUpstream]:
    """The shared fake upstream as this test sees it: only the calls its clients (which send `upstream.headers`) made.
    The recorder is dropped afterwards."""
    fake = FakeUpstream(upstream_url, recorder)
    yield fake
    fake.reset()  # the fake forgets this test's recorder


def proxy_settings(redis_url: str, upstream_api_url: str, **sections: dict[str, Any]) -> Settings:
    """Test settings: explicit Redis and upstream, small body limit; `sections` override per section."""
    # Short backoffs keep retry tests fast. Tests inject upstream failures on purpose, so a shared proxy's
    # breaker would couple them: only the breaker tests (with proxies of their own) let it open.
    upstream = {"retry_backoff_base_s": 0.01, "retry_backoff_max_s": 0.05, "breaker_failure_threshold": 1000}
    base: dict[str, dict[str, Any]] = {
        "server": {"max_body_bytes": TEST_MAX_BODY_BYTES},
        "upstream": {"base_url": upstream_api_url, **upstream},
        # The fake speaks Anthropic's API too, at its root (as `llmproxy serve --upstream` sets it).
        "anthropic": {"base_url": upstream_api_url.removesuffix("/v1"), **upstream},
        "redis": {"url": redis_url, "key_prefix": TEST_KEY_PREFIX},
        "router": {"routes_file": None},  # router tests start proxies with their own routes
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return load_settings(None, base)


@pytest.fixture(scope="session")
def model_loader() -> ModelLoader:
    """Loads each embedding model once per session and backend (ONNX unless a test asks for torch); every proxy the
    tests start shares it (read-only)."""
    models: dict[tuple[str, str | None], Any] = {}

    def load(settings: EmbeddingSettings) -> Any:
        key = (settings.backend, settings.model)
        if key not in models:
            models[key] = load_model(settings)
        return models[key]

    return load


@pytest.fixture(scope="session")
def proxy_url(redis_url: str, upstream_url: str, model_loader: ModelLoader) -> Iterator[str]:
    settings = proxy_settings(redis_url, upstream_url + "/v1")
    with serve_in_thread(create_app(settings, model_loader=model_loader), **server_options(settings.server)) as url:
        yield url


@pytest.fixture
def start_proxy(
    redis_url: str, upstream_url: str, model_loader: ModelLoader
) -> Callable[..., AbstractContextManager[str]]:
    """Start an extra proxy with some settings changed: `with start_proxy(upstream={...}) as url:`."""

    @contextmanager
    def start(**sections: dict[str, Any]) -> Iterator[str]:
        upstream_api = sections.pop("upstream_api_url", upstream_url + "/v1")
        settings = proxy_settings(str(sections.pop("redis_url", redis_url)), str(upstream_api), **sections)
        app = create_app(settings, model_loader=model_loader)
        with serve_in_thread(app, **server_options(settings.server)) as url:
            yield url

    return start


@pytest.fixture
def api_key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


@pytest.fixture
def client(proxy_url: str, api_key: str, upstream: FakeUpstream) -> Iterator[OpenAI]:
    """The shared proxy as this test's tenant (api_key) sees it; its upstream calls count in `upstream`."""
    with openai_sdk(proxy_url, api_key, upstream) as sdk:
        yield sdk


@pytest.fixture
def async_client(proxy_url: str, api_key: str, upstream: FakeUpstream) -> AsyncOpenAI:
    """The asyncio twin of `client`."""
    return async_openai_sdk(proxy_url, api_key, upstream)


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, so tests share one Redis without FLUSHALL."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    return f"t-{re.sub(r'[^A-Za-z0-9]+', '-', request.node.name)[:40]}-{digest}"


@pytest.fixture(name="redis")
async def async_redis(redis_url: str) -> AsyncIterator[AsyncRedis]:
    """An asyncio client for tests of the async cache modules (anyio-marked tests)."""
    client = AsyncRedis.from_url(redis_url, socket_timeout=5)
    yield client
    await client.aclose()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
def admin_proxy(
    start_proxy: Callable[..., AbstractContextManager[str]],
    key_prefix: str,
    redis_client: redis.Redis,
    upstream: FakeUpstream,
) -> Iterator[AdminProxy]:
    """A proxy with an admin token and a key prefix of this test's own (its tenants' calls count in `upstream`); its
    indexes are dropped afterwards."""
    with running_admin_proxy(start_proxy, key_prefix, redis_client, upstream) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, one per test module (tests/support/console.py)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis Stack of this test's own, on its own port: flushed, stopped or restarted at the same URL without
    disturbing the session one."""
    server = EmbeddedRedis(EmbeddedRedisConfig(data_dir=tmp_path / "redis", port=free_port()))
    server.start()
    try:
        yield server
    finally:
        server.stop()
