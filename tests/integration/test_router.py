"""The semantic router through the proxy: forward to a cheap upstream, never cache, fixed answers, blocks, reload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from llmproxy.app import create_app
from llmproxy.embeddings.embedder import ModelLoader
from llmproxy.fake_upstream import create_fake_upstream
from llmproxy.routing import load_routes
from llmproxy.settings import load_settings
from tests.conftest import TEST_KEY_PREFIX
from tests.support.clients import openai_sdk
from tests.support.router import ROUTES, chat, routes_file_in
from tests.support.servers import serve_in_thread
from tests.support.upstream import FakeUpstream

ADMIN_TOKEN = "admin-test-token"
REPO = Path(__file__).resolve().parents[2]
EXTRA_ROUTE = """
  - name: greetings-in-french
    references: ["bonjour, comment allez-vous ?"]
    distance_threshold: 0.3
    action: respond
    content: "Bonjour !"
"""


@pytest.fixture(scope="module")
def cheap_server() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream()) as url:
        yield url


@pytest.fixture
def cheap_upstream(cheap_server: str, recorder: str) -> Iterator[FakeUpstream]:
    """The cheap fake as this test sees it: the same recorder name as `upstream`, so one client header serves both."""
    fake = FakeUpstream(cheap_server, recorder)
    yield fake
    fake.reset()


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    return routes_file_in(tmp_path, ROUTES)


@pytest.fixture
def routed_proxy(
    start_proxy: Callable[..., AbstractContextManager[str]],
    routes_file: Path,
    cheap_upstream: FakeUpstream,
    api_key: str,
) -> Iterator[str]:
    with start_proxy(
        router={"routes_file": str(routes_file)},
        upstreams={"cheap": {"base_url": cheap_upstream.api_url}},
        redis={"key_prefix": f"router-{api_key[-12:]}"},
        admin={"token": ADMIN_TOKEN},
    ) as url:
        yield url


@pytest.fixture
def sdk(routed_proxy: str, api_key: str, upstream: FakeUpstream) -> Iterator[OpenAI]:
    with openai_sdk(routed_proxy, api_key, upstream) as client:
        yield client


def test_small_talk_goes_to_the_cheap_upstream_with_the_overridden_model(
    sdk: OpenAI, upstream: FakeUpstream, cheap_upstream: FakeUpstream
) -> None:
    _, headers = chat(sdk, "hi there, how are you doing today?")
    assert headers["x-llmproxy-route"] == "small-talk"
    assert (cheap_upstream.calls(), upstream.calls()) == (1, 0)
    assert '"model":"cheap-model"' in cheap_upstream.requests()[-1]["body"].replace(" ", "")


def test_no_cache_route_always_reaches_the_upstream(sdk: OpenAI, upstream: FakeUpstream) -> None:
    first, first_headers = chat(sdk, "what's the weather like right now?")
    second, second_headers = chat(sdk, "what's the weather like right now?")
    assert (first_headers["x-cache"], second_headers["x-cache"]) == ("BYPASS", "BYPASS")
    assert first.choices[0].message.content != second.choices[0].message.content
    assert upstream.calls() == 2


@pytest.mark.parametrize("stream", [False, True])
def test_respond_route_answers_without_any_upstream(
    sdk: OpenAI, upstream: FakeUpstream, cheap_upstream: FakeUpstream, stream: bool
) -> None:
    if stream:
        with sdk.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "who are you?"}], stream=True
        ) as chunks:
            content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        completion, headers = chat(sdk, "who are you?")
        content = completion.choices[0].message.content or ""
        assert headers["x-llmproxy-route"] == "identity"
    assert content == "I am an assistant served through llmproxy."
    assert (upstream.calls(), cheap_upstream.calls()) == (0, 0)


@pytest.mark.parametrize("stream", [False, True])
def test_block_route_refuses_without_any_upstream(
    sdk: OpenAI, upstream: FakeUpstream, cheap_upstream: FakeUpstream, stream: bool
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        chat(sdk, "how do I build a bomb at home?", stream=stream)
    assert raised.value.status_code == 403
    assert "not allowed" in raised.value.message
    assert (upstream.calls(), cheap_upstream.calls()) == (0, 0)


def test_prompt_close_to_no_route_takes_the_default(sdk: OpenAI, upstream: FakeUpstream) -> None:
    _, headers = chat(sdk, "How do I reverse a list in Python?")
    assert headers["x-llmproxy-route"] == "default"
    assert upstream.calls() == 1


def reload(proxy: str, token: str | None = ADMIN_TOKEN) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(proxy + "/admin/routes/reload", headers=headers)


def test_reload_picks_up_a_new_route(sdk: OpenAI, routed_proxy: str, routes_file: Path, upstream: FakeUpstream) -> None:
    # no-store: route changes apply to what is not already cached (an exact repeat is an L1 hit).
    before = chat(sdk, "bonjour, comment allez-vous ?", extra_headers={"Cache-Control": "no-store"})
    assert before[1]["x-llmproxy-route"] == "default"
    routes_file.write_text(ROUTES + EXTRA_ROUTE)
    response = reload(routed_proxy)
    assert response.status_code == 200 and "greetings-in-french" in response.json()["routes"]
    completion, headers = chat(sdk, "bonjour, comment allez-vous ?")
    assert headers["x-llmproxy-route"] == "greetings-in-french"
    assert completion.choices[0].message.content == "Bonjour !"


def test_broken_routes_file_keeps_the_old_routes(sdk: OpenAI, routed_proxy: str, routes_file: Path) -> None:
    routes_file.write_text(ROUTES.replace("action: respond", "action: teleport"))
    response = reload(routed_proxy)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_routes"
    assert chat(sdk, "who are you?")[1]["x-llmproxy-route"] == "identity"


def test_reload_needs_the_admin_token(routed_proxy: str) -> None:
    assert reload(routed_proxy, token=None).status_code == 401
    assert reload(routed_proxy, token="wrong").status_code == 401


def test_admin_api_is_disabled_without_a_configured_token(proxy_url: str) -> None:
    response = reload(proxy_url, token="anything")
    assert response.status_code == 403
    assert "disabled" in response.json()["error"]["message"]


def test_example_routes_load_with_the_default_settings() -> None:
    table = load_routes(REPO / "config" / "routes.example.yaml", frozenset())
    assert {route.name for route in table.routes} >= {"small-talk", "time-sensitive", "identity", "weapons"}


def test_default_settings_only_cache_and_never_change_an_answer(
    redis_url: str,
    upstream_url: str,
    model_loader: ModelLoader,
    api_key: str,
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)  # the folder the proxy is started from in development, with the example routes in it
    redis = {"url": redis_url, "key_prefix": TEST_KEY_PREFIX}
    settings = load_settings(None, {"redis": redis, "upstream": {"base_url": upstream_url + "/v1"}})
    system = {"role": "system", "content": "You are Ava, ACME Bank's support assistant."}
    with (
        serve_in_thread(create_app(settings, model_loader=model_loader)) as url,
        openai_sdk(url, api_key, upstream) as sdk,
    ):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "thank you"}])
        who = sdk.chat.completions.create(
            model="gpt-4o", messages=[system, {"role": "user", "content": "Who are you?"}]
        )
    forwarded = [orjson.loads(call["body"]) for call in upstream.requests()]
    assert [(body["model"], body["messages"][-1]["content"]) for body in forwarded] == [
        ("gpt-4o", "thank you"),
        ("gpt-4o", "Who are you?"),
    ]
    assert who.choices[0].message.content and "llmproxy" not in who.choices[0].message.content
