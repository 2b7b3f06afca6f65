"""Anthropic Messages through the proxy: the official anthropic SDK over real HTTP, the suite's Redis Stack and fake.

Each test has its own API key (its own tenant) and its own recorder in the fake, whose calls it counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic import Anthropic, AsyncAnthropic
from anthropic.types import Message, MessageParam, ToolParam
from openai import OpenAI

from tests.conftest import FakeUpstream
from tests.support.admin import AdminProxy
from tests.support.router import BLOCKED_PROMPT, ROUTES, routes_file_in
from tests.support.servers import free_port
from tests.support.upstream import metric

MODEL = "fake-model"
MESSAGES_PATH = "/v1/messages"
QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "What is the way to reverse a Python list?"
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Forecast for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"],
    },
}


def ask(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]


def sdk(base_url: str, api_key: str, fake: FakeUpstream) -> Anthropic:
    # The SDK appends /v1/messages itself: its base URL is the proxy's root, as ANTHROPIC_BASE_URL is.
    return Anthropic(base_url=base_url, api_key=api_key, max_retries=0, timeout=30, default_headers=fake.headers)


@pytest.fixture
def fake(upstream_url: str, recorder: str) -> FakeUpstream:
    return FakeUpstream(upstream_url, recorder)


@pytest.fixture
def claude(proxy_url: str, api_key: str, fake: FakeUpstream) -> Iterator[Anthropic]:
    with sdk(proxy_url, api_key, fake) as client:
        yield client


def create(client: Anthropic, messages: list[MessageParam], **options: Any) -> tuple[Message, dict[str, str]]:
    """One `messages.create`: the message and the response headers."""
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 200, "messages": messages, **options}
    raw = client.messages.with_raw_response.create(**params)
    return raw.parse(), dict(raw.headers)


def stream(client: Anthropic, messages: list[MessageParam], **options: Any) -> tuple[Message, dict[str, str], int]:
    """One `messages.stream()`: the final message, the response headers, and how many text deltas came."""
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 200, "messages": messages, **options}
    with client.messages.stream(**params) as events:
        deltas = sum(1 for event in events if event.type == "text")
        return events.get_final_message(), dict(events.response.headers), deltas


def dumped(message: Message) -> dict[str, Any]:
    """A message as JSON, whichever SDK class holds it (the stream helper's ParsedMessage, or Message)."""
    return Message.model_validate(message.model_dump()).model_dump()


def test_repeat_is_an_l1_hit_without_an_upstream_call(claude: Anthropic, fake: FakeUpstream) -> None:
    first, miss = create(claude, ask(QUESTION))
    second, hit = create(claude, ask(QUESTION))
    assert (miss["x-cache"], hit["x-cache"]) == ("MISS", "HIT-L1")
    assert second == first  # the original message, its id included
    assert fake.calls(MESSAGES_PATH) == 1


def test_paraphrase_is_an_l2_hit(claude: Anthropic, fake: FakeUpstream) -> None:
    original, _ = create(claude, ask(QUESTION))
    answer, headers = create(claude, ask(PARAPHRASE))
    assert headers["x-cache"] == "HIT-L2"
    assert answer == original
    assert fake.calls(MESSAGES_PATH) == 1


def test_stream_miss_then_stream_hit_in_several_deltas(claude: Anthropic, fake: FakeUpstream) -> None:
    first, miss, _ = stream(claude, ask(QUESTION))
    second, hit, deltas = stream(claude, ask(QUESTION))
    assert (miss["x-cache"], hit["x-cache"]) == ("MISS", "HIT-L1")
    assert second == first
    assert deltas > 1
    assert fake.calls(MESSAGES_PATH) == 1


def test_streamed_miss_serves_a_json_request(claude: Anthropic, fake: FakeUpstream) -> None:
    streamed, _, _ = stream(claude, ask(QUESTION))
    message, headers = create(claude, ask(QUESTION))
    assert headers["x-cache"] == "HIT-L1"
    assert dumped(message) == dumped(streamed)
    assert fake.calls(MESSAGES_PATH) == 1


def test_json_miss_serves_a_stream_request(claude: Anthropic, fake: FakeUpstream) -> None:
    message, _ = create(claude, ask(QUESTION))
    streamed, headers, _ = stream(claude, ask(QUESTION))
    assert headers["x-cache"] == "HIT-L1"
    assert dumped(streamed) == dumped(message)
    assert fake.calls(MESSAGES_PATH) == 1


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_tool_use_answer_is_cached(claude: Anthropic, fake: FakeUpstream, streamed: bool) -> None:
    prompt = ask("Use get_weather for Paris over 3 days")
    if streamed:
        first, _, _ = stream(claude, prompt, tools=[WEATHER])
    else:
        first, _ = create(claude, prompt, tools=[WEATHER])
    again, headers = create(claude, prompt, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    assert [block.type for block in first.content] == ["text", "tool_use"]
    assert headers["x-cache"] == "HIT-L1"
    assert dumped(again) == dumped(first)
    assert fake.calls(MESSAGES_PATH) == 1


def test_tool_result_turn_is_exact_only(claude: Anthropic, fake: FakeUpstream) -> None:
    call, _ = create(claude, ask("Use get_weather for Paris over 3 days"), tools=[WEATHER])
    tool_use = next(block for block in call.content if block.type == "tool_use")

    def answer(result: str) -> list[MessageParam]:
        turn: MessageParam = {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": result}],
        }
        return [*ask("Use get_weather for Paris over 3 days"), {"role": "assistant", "content": call.content}, turn]

    first, miss = create(claude, answer("Sunny, 24 degrees"), tools=[WEATHER])
    _, hit = create(claude, answer("Sunny, 24 degrees"), tools=[WEATHER])
    _, other = create(claude, answer("Sunny and 24 degrees"), tools=[WEATHER])  # near-identical: still a miss
    assert first.content[0].type == "text" and "tool output" in first.content[0].text
    assert (miss["x-cache"], hit["x-cache"], other["x-cache"]) == ("MISS", "HIT-L1", "MISS")
    assert fake.calls(MESSAGES_PATH) == 3


def test_changed_system_prompt_is_a_miss(claude: Anthropic, fake: FakeUpstream) -> None:
    _, first = create(claude, ask(QUESTION), system="Answer briefly.")
    _, same = create(claude, ask(QUESTION), system="Answer briefly.")
    _, changed = create(claude, ask(QUESTION), system=[{"type": "text", "text": "Answer at length."}])
    _, paraphrased = create(claude, ask(PARAPHRASE), system="Answer at length, like a pirate.")
    assert (first["x-cache"], same["x-cache"], changed["x-cache"], paraphrased["x-cache"]) == (
        "MISS",
        "HIT-L1",
        "MISS",
        "MISS",
    )
    assert fake.calls(MESSAGES_PATH) == 3


def test_cache_control_markers_do_not_change_the_key(claude: Anthropic, fake: FakeUpstream) -> None:
    create(claude, ask(QUESTION), system=[{"type": "text", "text": "Answer briefly."}])
    marked = [{"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}]
    _, headers = create(claude, ask(QUESTION), system=marked)
    assert headers["x-cache"] == "HIT-L1"
    assert fake.calls(MESSAGES_PATH) == 1


def x_api_key_sdk(base_url: str, key: str, fake: FakeUpstream) -> Anthropic:
    """A client that sends its key as `x-api-key`, as Claude Code does (this SDK's `api_key` is a Bearer token)."""
    headers = {**fake.headers, "x-api-key": key}
    return Anthropic(base_url=base_url, api_key=None, max_retries=0, timeout=30, default_headers=headers)


@pytest.mark.parametrize("make", [sdk, x_api_key_sdk], ids=["bearer", "x-api-key"])
def test_two_api_keys_are_isolated_and_each_is_forwarded(
    proxy_url: str, api_key: str, fake: FakeUpstream, make: Callable[[str, str, FakeUpstream], Anthropic]
) -> None:
    with make(proxy_url, api_key + "-alice", fake) as alice, make(proxy_url, api_key + "-bob", fake) as bob:
        create(alice, ask(QUESTION))
        _, bobs = create(bob, ask(QUESTION))
        _, alices = create(alice, ask(QUESTION))
    assert (bobs["x-cache"], alices["x-cache"]) == ("MISS", "HIT-L1")
    assert fake.calls(MESSAGES_PATH) == 2
    # No operator key is configured: each caller's own credential went upstream, as it was sent.
    sent = [call["headers"].get("x-api-key") or call["headers"]["authorization"] for call in fake.requests()]
    assert [value.removeprefix("Bearer ") for value in sent] == [api_key + "-alice", api_key + "-bob"]


def test_operator_key_replaces_the_callers_credentials(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, fake: FakeUpstream
) -> None:
    with start_proxy(anthropic={"api_key": "sk-ant-operator"}) as url, sdk(url, api_key, fake) as client:
        create(client, ask(QUESTION))
    (call,) = fake.requests()
    assert call["headers"]["x-api-key"] == "sk-ant-operator"
    assert "authorization" not in call["headers"]


def test_another_anthropic_version_or_beta_is_a_miss(claude: Anthropic, fake: FakeUpstream) -> None:
    create(claude, ask(QUESTION))
    _, version = create(claude, ask(QUESTION), extra_headers={"anthropic-version": "2024-10-22"})
    _, beta = create(claude, ask(QUESTION), extra_headers={"anthropic-beta": "some-feature-2025-01-01"})
    _, again = create(claude, ask(QUESTION))
    assert (version["x-cache"], beta["x-cache"], again["x-cache"]) == ("MISS", "MISS", "HIT-L1")
    assert fake.calls(MESSAGES_PATH) == 3


@pytest.mark.parametrize("stop", ["pause_turn", "refusal"])
@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_paused_or_refused_answers_are_never_stored(
    claude: Anthropic, fake: FakeUpstream, stop: str, streamed: bool
) -> None:
    header = {"X-Fake-Stop-Reason": stop}
    if streamed:
        message, _, _ = stream(claude, ask(QUESTION), extra_headers=header)
    else:
        message, _ = create(claude, ask(QUESTION), extra_headers=header)
    _, headers = create(claude, ask(QUESTION))
    assert message.stop_reason == stop
    assert headers["x-cache"] == "MISS"
    assert fake.calls(MESSAGES_PATH) == 2


def test_max_tokens_answers_are_stored_like_chat_length(claude: Anthropic, fake: FakeUpstream) -> None:
    first, _ = create(claude, ask(QUESTION), max_tokens=3)
    again, headers = create(claude, ask(QUESTION), max_tokens=3)
    assert first.stop_reason == "max_tokens"
    assert (headers["x-cache"], again) == ("HIT-L1", first)


@pytest.mark.parametrize(
    "fault", [{"X-Fake-Stream-Error-After": "4"}, {"X-Fake-Drop-After": "4"}, {"X-Fake-Malformed-Sse": "1"}]
)
def test_broken_streams_raise_in_the_sdk_and_are_not_stored(
    claude: Anthropic, fake: FakeUpstream, fault: dict[str, str]
) -> None:
    with pytest.raises((anthropic.APIError, ValueError)):
        stream(claude, ask(QUESTION), extra_headers=fault)
    _, headers = create(claude, ask(QUESTION))
    assert headers["x-cache"] == "MISS"
    assert fake.calls(MESSAGES_PATH) == 2


def test_stream_error_event_is_relayed_in_anthropic_shape(claude: Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as raised:
        stream(claude, ask(QUESTION), extra_headers={"X-Fake-Stream-Error-After": "4"})
    assert raised.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


@pytest.mark.parametrize("status", [500, 529])
def test_upstream_errors_are_relayed_and_not_stored(claude: Anthropic, fake: FakeUpstream, status: int) -> None:
    with pytest.raises(anthropic.APIStatusError) as raised:
        create(claude, ask(QUESTION), extra_headers={"X-Fake-Status": str(status)})
    assert raised.value.status_code == status
    assert isinstance(raised.value.body, dict) and raised.value.body["type"] == "error"
    _, headers = create(claude, ask(QUESTION))
    assert headers["x-cache"] == "MISS"


def test_overloaded_529_is_retried(claude: Anthropic, fake: FakeUpstream, recorder: str) -> None:
    fault = {"X-Fake-Request-Id": recorder, "X-Fake-Fail-Times": "1", "X-Fake-Status": "529"}
    message, headers = create(claude, ask(QUESTION), extra_headers=fault)
    assert message.stop_reason == "end_turn"
    assert headers["x-llmproxy-upstream-attempts"] == "2"


def test_concurrent_identical_misses_reach_the_upstream_once(proxy_url: str, api_key: str, fake: FakeUpstream) -> None:
    async def together() -> list[str]:
        client = AsyncAnthropic(
            base_url=proxy_url, api_key=api_key, max_retries=0, timeout=30, default_headers=fake.headers
        )
        try:
            raws = await asyncio.gather(
                *(
                    client.messages.with_raw_response.create(
                        model=MODEL,
                        max_tokens=200,
                        messages=ask(QUESTION),
                        extra_headers={"X-Fake-Latency-Ms": "1500"},
                    )
                    for _ in range(10)
                )
            )
        finally:
            await client.close()
        assert len({(await raw.parse()).id for raw in raws}) == 1
        return [raw.headers["x-cache"] for raw in raws]

    statuses = asyncio.run(together())
    assert statuses.count("MISS") == 1
    assert fake.calls(MESSAGES_PATH) == 1


def test_a_client_that_leaves_mid_stream_caches_nothing(claude: Anthropic, fake: FakeUpstream) -> None:
    with claude.messages.stream(
        model=MODEL, max_tokens=200, messages=ask(QUESTION), extra_headers={"X-Fake-Chunk-Delay-Ms": "200"}
    ) as events:
        next(iter(events))
    _, headers = create(claude, ask(QUESTION))
    assert headers["x-cache"] == "MISS"
    assert fake.calls(MESSAGES_PATH) == 2


def test_count_tokens_is_cached_exactly(claude: Anthropic, fake: FakeUpstream) -> None:
    def count(text: str) -> tuple[int, str]:
        raw = claude.messages.with_raw_response.count_tokens(model=MODEL, messages=ask(text), system="be brief")
        return raw.parse().input_tokens, raw.headers["x-cache"]

    first, miss = count(QUESTION)
    again, hit = count(QUESTION)
    _, paraphrase = count(PARAPHRASE)
    assert (miss, hit, paraphrase) == ("MISS", "HIT-L1", "MISS")
    assert again == first
    assert fake.calls("/v1/messages/count_tokens") == 2
    assert fake.calls(MESSAGES_PATH) == 0


def test_requests_with_anthropic_version_pass_through_to_the_anthropic_upstream(
    start_proxy: Callable[..., AbstractContextManager[str]], upstream_url: str, api_key: str, fake: FakeUpstream
) -> None:
    # The OpenAI upstream is a closed port: only the Anthropic one answers.
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with start_proxy(upstream_api_url=closed, anthropic={"base_url": upstream_url}) as url:
        with sdk(url, api_key, fake) as client:
            models = client.models.list()
        openai_style = httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {api_key}"})
    assert models.data and models.data[0].type == "model"  # Anthropic's model objects
    assert openai_style.status_code == 502
    assert "error" in openai_style.json() and "type" not in openai_style.json()  # OpenAI's shape


def test_unreachable_anthropic_upstream_is_a_502_in_anthropic_shape(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, fake: FakeUpstream
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with start_proxy(anthropic={"base_url": closed, "max_retries": 0}) as url, sdk(url, api_key, fake) as client:
        with pytest.raises(anthropic.InternalServerError) as raised:
            create(client, ask(QUESTION))
        with pytest.raises(anthropic.InternalServerError) as streamed:
            stream(client, ask(QUESTION))
        with pytest.raises(anthropic.InternalServerError) as models:
            client.models.list()
    for error in (raised.value, streamed.value, models.value):
        assert error.status_code == 502
        assert isinstance(error.body, dict) and error.body["type"] == "error"
        assert error.body["error"]["type"] == "api_error"


def test_open_breaker_answers_503_in_anthropic_shape(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, fake: FakeUpstream
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    settings = {"base_url": closed, "max_retries": 0, "breaker_failure_threshold": 1}
    with start_proxy(anthropic=settings) as url, sdk(url, api_key, fake) as client:
        with pytest.raises(anthropic.InternalServerError):
            create(client, ask(QUESTION))
        with pytest.raises(anthropic.InternalServerError) as raised:
            create(client, ask(QUESTION))
        opened = metric(url, "llmproxy_upstream_breaker_state", upstream="anthropic")
    assert raised.value.status_code == 503
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "api_error", "message": raised.value.body["error"]["message"]},  # type: ignore[index]
    }
    assert opened == 2  # open


def test_malformed_requests_are_400s_in_anthropic_shape(proxy_url: str, claude: Anthropic, api_key: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model=MODEL, max_tokens="ten", messages=ask(QUESTION))  # type: ignore[arg-type]
    headers = {"x-api-key": api_key, "anthropic-version": "2023-06-01", "content-type": "application/json"}
    not_json = httpx.post(proxy_url + MESSAGES_PATH, content=b"{nope", headers=headers)
    no_limit = httpx.post(proxy_url + MESSAGES_PATH, json={"model": MODEL, "messages": ask("hi")}, headers=headers)
    too_large = httpx.post(proxy_url + MESSAGES_PATH, content=b"x" * (128 * 1024), headers=headers)
    assert raised.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    for response, status, kind in [
        (not_json, 400, "invalid_request_error"),
        (no_limit, 400, "invalid_request_error"),
        (too_large, 413, "request_too_large"),
    ]:
        assert response.status_code == status
        body = response.json()
        assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]


def test_metrics_count_messages_by_endpoint(proxy_url: str, claude: Anthropic) -> None:
    labels = {"endpoint": MESSAGES_PATH, "model": MODEL, "route": "none"}
    before = metric(proxy_url, "llmproxy_requests_total", result="hit_l1", **labels)
    create(claude, ask(QUESTION))
    create(claude, ask(QUESTION))
    assert metric(proxy_url, "llmproxy_requests_total", result="hit_l1", **labels) == before + 1


@pytest.fixture
def routed(start_proxy: Callable[..., AbstractContextManager[str]], tmp_path: Path, api_key: str) -> Iterator[str]:
    routes = routes_file_in(tmp_path, ROUTES)
    cheap = {"base_url": f"http://127.0.0.1:{free_port()}/v1"}  # OpenAI-compatible, and closed
    prefix = {"key_prefix": f"msg-router-{api_key[-12:]}"}
    with start_proxy(router={"routes_file": str(routes)}, upstreams={"cheap": cheap}, redis=prefix) as url:
        yield url


def test_a_route_to_a_named_openai_upstream_leaves_messages_on_their_own(
    routed: str, api_key: str, fake: FakeUpstream
) -> None:
    with sdk(routed, api_key, fake) as client:
        message, headers = create(client, ask("hi there, how are you doing today?"))
    assert headers["x-llmproxy-route"] == "small-talk"
    assert message.model == MODEL  # the caller's model, from the Anthropic upstream
    assert fake.calls(MESSAGES_PATH) == 1


def test_router_respond_answers_an_anthropic_message(routed: str, api_key: str, fake: FakeUpstream) -> None:
    with sdk(routed, api_key, fake) as client:
        message, headers = create(client, ask("who are you?"))
        streamed, _, _ = stream(client, ask("who are you?"))
    assert message.content[0].type == "text"
    assert message.content[0].text == "I am an assistant served through llmproxy."
    assert (message.type, message.stop_reason, headers["x-llmproxy-route"]) == ("message", "end_turn", "identity")
    assert dumped(streamed) == {**dumped(message), "id": streamed.id}  # a fixed answer gets a new id each time
    assert fake.calls(MESSAGES_PATH) == 0


def test_router_block_refuses_in_anthropic_shape(routed: str, api_key: str, fake: FakeUpstream) -> None:
    with sdk(routed, api_key, fake) as client, pytest.raises(anthropic.PermissionDeniedError) as raised:
        create(client, ask(BLOCKED_PROMPT))
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "permission_error", "message": "This topic is not allowed here."},
    }
    assert fake.calls(MESSAGES_PATH) == 0


def test_admin_lists_invalidates_and_audits_messages_and_counts(admin_proxy: AdminProxy, api_key: str) -> None:
    fake = FakeUpstream(admin_proxy.url)  # only for its (empty) headers: counts are not read here
    with sdk(admin_proxy.url, api_key, fake) as client:
        create(client, ask(QUESTION), system="be brief")
        client.messages.count_tokens(model=MODEL, messages=ask(QUESTION))
        listed = admin_proxy.entries(kind="messages")["entries"]
        counted = admin_proxy.entries(kind="count_tokens")["entries"]
        assert [(entry["kind"], entry["prompt"]) for entry in listed] == [("messages", QUESTION)]
        assert [entry["kind"] for entry in counted] == ["count_tokens"]
        shown = admin_proxy.http.get(f"/admin/entries/{listed[0]['id']}").json()
        assert shown["response"]["type"] == "message"

        deleted = admin_proxy.invalidate(kind="messages")
        assert deleted.status_code == 200 and deleted.json()["deleted"] == 1
        assert create(client, ask(QUESTION), system="be brief")[1]["x-cache"] == "MISS"
        assert (
            client.messages.with_raw_response.count_tokens(model=MODEL, messages=ask(QUESTION)).headers["x-cache"]
            == "HIT-L1"
        )
    (event,) = admin_proxy.audit()
    assert (event["action"], event["filters"], event["deleted"]) == ("invalidate", {"kind": "messages"}, 1)


def test_thinking_blocks_and_their_signatures_survive_the_cache(claude: Anthropic, fake: FakeUpstream) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    streamed, _, _ = stream(claude, ask(QUESTION), max_tokens=2048, thinking=thinking)
    message, json_hit = create(claude, ask(QUESTION), max_tokens=2048, thinking=thinking)
    replayed, stream_hit, _ = stream(claude, ask(QUESTION), max_tokens=2048, thinking=thinking)
    assert (json_hit["x-cache"], stream_hit["x-cache"]) == ("HIT-L1", "HIT-L1")
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].type == "thinking" and message.content[0].signature
    assert dumped(message) == dumped(streamed) == dumped(replayed)
    assert fake.calls(MESSAGES_PATH) == 1


def test_no_answer_crosses_between_chat_and_messages(proxy_url: str, api_key: str, claude: Anthropic) -> None:
    # Same tenant (this SDK sends the key as a Bearer token, like the OpenAI SDK), same model, same question.
    with OpenAI(base_url=proxy_url + "/v1", api_key=api_key, max_retries=0) as openai_sdk:
        openai_sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    _, exact = create(claude, ask(QUESTION))
    _, paraphrase = create(claude, ask(PARAPHRASE), max_tokens=201)
    assert (exact["x-cache"], paraphrase["x-cache"]) == ("MISS", "MISS")
