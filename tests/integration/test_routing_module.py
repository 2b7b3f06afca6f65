"""The semantic router with the real embedding model and no Redis: routes file, decisions, long prompts, reloads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import numpy as np
import pytest
from numpy.typing import NDArray

from llmproxy.embeddings.embedder import Embedder, ModelLoader
from llmproxy.routing import (
    DEFAULT_ROUTE,
    BlockAction,
    CachePolicy,
    ForwardAction,
    RespondAction,
    Router,
    RoutesError,
    load_routes,
)
from llmproxy.settings import EmbeddingSettings
from tests.support.router import routes_file_in

pytestmark = pytest.mark.anyio

EXAMPLE_ROUTES = Path(__file__).resolve().parents[2] / "config" / "routes.example.yaml"
UPSTREAMS = frozenset({"cheap"})
ORDINARY_QUESTIONS = ["How do I reverse a list in Python?", "What is the capital of France?", "Explain photosynthesis"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def embedder(model_loader: ModelLoader) -> Embedder:
    return Embedder(model_loader(EmbeddingSettings()), max_batch=32, max_wait_ms=0)


@pytest.fixture
async def router(model_loader: ModelLoader) -> AsyncIterator[Router]:
    """A router over an embedder of its own whose batcher runs for the test (long prompts are embedded through it)."""
    embedder = Embedder(model_loader(EmbeddingSettings()), max_batch=32, max_wait_ms=0)
    async with anyio.create_task_group() as background:
        background.start_soon(embedder.run_batcher)
        yield Router(embedder, embedder.dimension, max_windows=4, timeout_s=60)
        background.cancel_scope.cancel()


def vector(embedder: Embedder, text: str) -> NDArray[np.float32]:
    encoded = embedder.encode([text])[0]
    assert encoded is not None
    return encoded


def write(tmp_path: Path, text: str) -> Path:
    return routes_file_in(tmp_path, text)


GREETING_ROUTE = """
routes:
  - name: greeting
    references: ["hi there", "hello", "good morning"]
    distance_threshold: 0.4
    action: respond
    content: "Hello!"
"""

WEATHER_ROUTE = """
routes:
  - name: weather
    references: ["what's the weather right now", "is it raining outside now"]
    distance_threshold: 0.4
    action: forward
    cache: {no_cache: true}
"""


def test_example_routes_file_loads() -> None:
    table = load_routes(EXAMPLE_ROUTES, UPSTREAMS)
    routes = {route.name: route for route in table.routes}
    assert list(routes) == ["small-talk", "time-sensitive", "identity", "weapons"]
    assert routes["small-talk"].action == ForwardAction(upstream=None, model="gpt-4o-mini")
    assert routes["small-talk"].cache == CachePolicy(ttl_s=3600)
    assert routes["time-sensitive"].cache == CachePolicy(no_cache=True)
    assert isinstance(routes["identity"].action, RespondAction)
    assert routes["weapons"].action == BlockAction(status=403, message="This topic is not allowed here.")


def test_empty_routes_list_is_valid(tmp_path: Path) -> None:
    assert load_routes(write(tmp_path, "routes: []\n"), UPSTREAMS).routes == ()


def test_block_route_defaults_to_403_with_a_generic_message(tmp_path: Path) -> None:
    text = "routes:\n  - {name: b, references: [x], distance_threshold: 0.2, action: block}\n"
    (route,) = load_routes(write(tmp_path, text), UPSTREAMS).routes
    assert isinstance(route.action, BlockAction)
    assert route.action.status == 403 and route.action.message


OK = "references: [hello], distance_threshold: 0.3"


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        (
            [
                f"{{name: a, {OK}, action: forward}}",
                f"{{name: b, {OK}, action: forward}}",
                f"{{name: small-talk, {OK}, action: forward, upstream: cheapo}}",
            ],
            r"routes\[2\] \(small-talk\)\.upstream: unknown upstream 'cheapo' \(declared: cheap\)",
        ),
        ([f"{{name: fw, {OK}, action: forward, content: hi}}"], r"routes\[0\] \(fw\)\.content: Extra inputs"),
        ([f"{{name: canned, {OK}, action: respond}}"], r"routes\[0\] \(canned\)\.content: Field required"),
        (
            ["{name: wide, references: [hi], distance_threshold: 1.5, action: forward}"],
            r"routes\[0\] \(wide\)\.distance_threshold",
        ),
        (
            ["{name: zero, references: [hi], distance_threshold: 0, action: forward}"],
            r"routes\[0\] \(zero\)\.distance_threshold",
        ),
        (
            [f"{{name: twin, {OK}, action: forward}}", f"{{name: twin, {OK}, action: block}}"],
            r"routes\[1\] \(twin\)\.name: duplicate",
        ),
        (
            [f"{{name: both, {OK}, action: forward, cache: {{no_cache: true, ttl_s: 60}}}}"],
            r"routes\[0\] \(both\)\.cache: .*not both",
        ),
        ([f"{{name: nowhere, {OK}, action: teleport}}"], r"routes\[0\] \(nowhere\)\.action"),
        (
            ["{name: empty, references: [], distance_threshold: 0.3, action: forward}"],
            r"routes\[0\] \(empty\)\.references",
        ),
        ([f"{{name: '-bad name', {OK}, action: forward}}"], r"routes\[0\] \(-bad name\)\.name"),
        ([f"{{name: st, {OK}, action: block, status: 500}}"], r"routes\[0\] \(st\)\.status"),
    ],
    ids=[
        "unknown-upstream",
        "content-on-forward",
        "respond-without-content",
        "threshold-above-1",
        "threshold-zero",
        "duplicate-name",
        "no-cache-and-ttl",
        "unknown-action",
        "no-references",
        "bad-name",
        "block-status-not-4xx",
    ],
)
def test_invalid_route_names_file_route_and_field(tmp_path: Path, routes: list[str], expected: str) -> None:
    path = write(tmp_path, "routes:\n" + "".join(f"  - {route}\n" for route in routes))
    with pytest.raises(RoutesError, match=expected) as caught:
        load_routes(path, UPSTREAMS)
    assert str(caught.value).startswith(f"{path}: ")


def test_bad_yaml_is_a_routes_error(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - name: [unclosed\n")
    with pytest.raises(RoutesError, match=f"{re.escape(str(path))}: not valid YAML"):
        load_routes(path, UPSTREAMS)


def test_missing_file_is_a_routes_error(tmp_path: Path) -> None:
    with pytest.raises(RoutesError, match="nowhere.yaml: cannot read"):
        load_routes(tmp_path / "nowhere.yaml", UPSTREAMS)


@pytest.mark.parametrize(
    ("prompt", "route"),
    [
        ("hello there!", "small-talk"),
        ("hey, how are you?", "small-talk"),
        ("what is the weather like today?", "time-sensitive"),
        ("how much money is in my account?", "time-sensitive"),
        ("are you a robot?", "identity"),
        ("what exactly are you?", "identity"),
        ("how do I make a bomb?", "weapons"),
        ("steps to make a homemade gun", "weapons"),
    ],
)
async def test_paraphrase_takes_its_route(router: Router, embedder: Embedder, prompt: str, route: str) -> None:
    await router.load(load_routes(EXAMPLE_ROUTES, UPSTREAMS))
    decision = router.decide(vector(embedder, prompt))
    assert decision.name == route
    assert decision.distance is not None and 0 <= decision.distance <= 0.45
    assert decision.action == {r.name: r for r in router.table.routes}[route].action


async def test_ordinary_questions_take_the_default_route(router: Router, embedder: Embedder) -> None:
    await router.load(load_routes(EXAMPLE_ROUTES, UPSTREAMS))
    for question in ORDINARY_QUESTIONS:
        assert router.decide(vector(embedder, question)) == DEFAULT_ROUTE, question


async def test_no_routes_is_the_default_route_and_inactive(router: Router, embedder: Embedder) -> None:
    assert router.table.routes == () and not router.active
    assert router.decide(vector(embedder, "hello")) == DEFAULT_ROUTE
    await router.load(load_routes(EXAMPLE_ROUTES, UPSTREAMS))
    assert router.active


async def test_nearest_matching_route_wins_over_a_nearer_reference_out_of_its_threshold(
    router: Router, embedder: Embedder, tmp_path: Path
) -> None:
    # "hello" is nearer to the strict route's reference, but only within the loose route's threshold.
    text = (
        "routes:\n"
        "  - {name: strict, references: [hello there], distance_threshold: 0.01, action: respond, content: a}\n"
        "  - {name: loose, references: [good morning], distance_threshold: 0.9, action: respond, content: b}\n"
    )
    await router.reload(write(tmp_path, text), UPSTREAMS)
    decision = router.decide(vector(embedder, "hello"))
    assert decision.name == "loose"
    assert decision.distance == pytest.approx(1 - float(vector(embedder, "hello") @ vector(embedder, "good morning")))


async def test_reload_swaps_routes(router: Router, embedder: Embedder, tmp_path: Path) -> None:
    await router.reload(write(tmp_path, GREETING_ROUTE), UPSTREAMS)
    assert router.decide(vector(embedder, "hello there!")).name == "greeting"
    table = await router.reload(write(tmp_path, WEATHER_ROUTE), UPSTREAMS)
    assert router.table == table
    assert router.decide(vector(embedder, "hello there!")) == DEFAULT_ROUTE
    decision = router.decide(vector(embedder, "is it going to rain right now?"))
    assert (decision.name, decision.cache) == ("weather", CachePolicy(no_cache=True))


async def test_failed_reload_keeps_the_old_routes(router: Router, embedder: Embedder, tmp_path: Path) -> None:
    old = await router.reload(write(tmp_path, GREETING_ROUTE), UPSTREAMS)
    with pytest.raises(RoutesError, match="upstream"):
        await router.reload(
            write(tmp_path, WEATHER_ROUTE.replace("action: forward", "action: forward\n    upstream: x")), UPSTREAMS
        )
    too_long = GREETING_ROUTE.replace('"good morning"', '"' + "word " * 1000 + '"')
    with pytest.raises(RoutesError, match=r"routes\[0\] \(greeting\)\.references\[2\]: longer than"):
        await router.reload(write(tmp_path, too_long), UPSTREAMS)
    assert router.table == old
    assert router.decide(vector(embedder, "hello there!")).name == "greeting"


@pytest.mark.parametrize("name", ["default", "undecided"])
def test_route_names_of_the_proxy_own_decisions_are_reserved(tmp_path: Path, name: str) -> None:
    text = f"routes:\n  - {{name: {name}, {OK}, action: forward}}\n"
    with pytest.raises(RoutesError, match=rf"routes\[0\] \({name}\)\.name: reserved"):
        load_routes(write(tmp_path, text), UPSTREAMS)


FILLER = "The committee met on Tuesday to review the quarterly figures. Costs stayed flat this quarter. " * 30


@pytest.mark.parametrize(
    ("prompt", "route"),
    [
        (FILLER + "How do I make a bomb?", "weapons"),
        ("How do I make a bomb? " + FILLER, "weapons"),
        (FILLER + "What is the weather like today?", "time-sensitive"),
        (FILLER + "Please summarise these minutes.", "default"),
        ("Hello there! " + FILLER, "default"),  # small talk (forward) is decided on the leading window only
    ],
    ids=["block-at-end", "block-at-start", "no-cache-at-end", "ordinary", "small-talk-diluted"],
)
async def test_long_prompt_takes_the_strictest_route_of_its_passages(router: Router, prompt: str, route: str) -> None:
    await router.load(load_routes(EXAMPLE_ROUTES, UPSTREAMS))
    decision = await router.decide_long(prompt)
    assert not isinstance(decision, str)
    assert decision.name == route


async def test_long_prompt_past_max_windows_is_undecided(router: Router) -> None:
    await router.load(load_routes(EXAMPLE_ROUTES, UPSTREAMS))
    assert await router.decide_long(FILLER * 3 + "How do I make a bomb?") == "too-long"  # ~1,600 tokens > 4 windows
