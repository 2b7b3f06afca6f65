"""The fake upstream's Anthropic Messages API, with the official anthropic SDK pointed straight at it (no proxy)."""

import json
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import jsonschema
import pytest
from anthropic import Anthropic
from anthropic.types import Message, MessageParam, ToolParam

from tests.support.clients import anthropic_sdk
from tests.support.upstream import FakeUpstream

MODEL = "fake-model"
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "minLength": 2}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city", "days"],
}
WEATHER: ToolParam = {"name": "get_weather", "description": "Forecast for a city", "input_schema": WEATHER_SCHEMA}
CLOCK: ToolParam = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}


def ask(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client(upstream: FakeUpstream) -> Iterator[Anthropic]:
    # The SDK appends /v1/messages itself: its base URL is the server root, as ANTHROPIC_BASE_URL is.
    with anthropic_sdk(upstream.base_url, upstream, api_key="sk-ant-test", timeout=10) as sdk:
        yield sdk


def normalized(message: Message) -> Any:
    return json.loads(re.sub(r"(fake_|#)\d+", r"\g<1>N", message.model_dump_json()))


def raw_events(upstream: FakeUpstream, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    response = httpx.post(
        upstream.api_url + "/messages", json={**body, "stream": True}, headers=HEADERS | upstream.headers
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n")[:-1]:
        event_line, data_line = block.split("\n")
        events.append((event_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))))
    return events


def test_message_has_the_shape_the_sdk_models(client: Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=100, system="be brief", messages=ask("what is redis"))

    assert (message.id, message.type, message.role, message.model) == ("msg_fake_1", "message", "assistant", MODEL)
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == "Fake reply #1 to: what is redis"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 7)
    assert message.usage.cache_read_input_tokens == 0 and message.usage.cache_creation_input_tokens == 0


def test_system_blocks_images_and_history_are_read(client: Anthropic) -> None:
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    messages: list[MessageParam] = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
        {
            "role": "user",
            "content": [
                {"type": "image", "source": image},  # type: ignore[typeddict-item]
                {"type": "text", "text": "what is in this picture"},
            ],
        },
    ]
    system: Any = [{"type": "text", "text": "you see images", "cache_control": {"type": "ephemeral"}}]
    message = client.messages.create(model=MODEL, max_tokens=100, system=system, messages=messages)
    assert message.content[0].type == "text" and message.content[0].text == "Fake reply #1 to: what is in this picture"
    assert message.usage.input_tokens == 3 + 2 + 2 + 5


def test_prompt_naming_a_tool_gets_text_then_a_schema_valid_tool_use(client: Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=100, tools=[WEATHER, CLOCK], messages=ask("get weather in Oslo")
    )

    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[0].type == "text" and message.content[0].text == "Fake reply #1: calling get_weather."
    use = message.content[1]
    assert use.type == "tool_use" and (use.id, use.name) == ("toolu_fake_1", "get_weather")
    jsonschema.validate(use.input, WEATHER_SCHEMA)
    assert use.input == {"city": "get weather in Oslo", "days": 1}


@pytest.mark.parametrize(
    ("prompt", "tool_choice", "blocks", "called"),
    [
        ("what time is it", None, ["text"], []),
        ("get_time and get_weather", None, ["text", "tool_use", "tool_use"], ["get_weather", "get_time"]),
        (
            "get_time and get_weather",
            {"type": "auto", "disable_parallel_tool_use": True},
            ["text", "tool_use"],
            ["get_weather"],
        ),
        ("hello", {"type": "any"}, ["tool_use"], ["get_weather"]),
        ("hello", {"type": "tool", "name": "get_time"}, ["tool_use"], ["get_time"]),
        ("get_time now", {"type": "none"}, ["text"], []),
    ],
)
def test_tool_rule_decides_which_tools_are_used(
    client: Anthropic, prompt: str, tool_choice: Any, blocks: list[str], called: list[str]
) -> None:
    options: dict[str, Any] = {"tool_choice": tool_choice} if tool_choice else {}
    message = client.messages.create(
        model=MODEL, max_tokens=100, tools=[WEATHER, CLOCK], messages=ask(prompt), **options
    )
    assert [block.type for block in message.content] == blocks
    assert [block.name for block in message.content if block.type == "tool_use"] == called
    assert message.stop_reason == ("tool_use" if called else "end_turn")


def test_tool_result_turn_is_answered_with_text(client: Anthropic) -> None:
    first = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER], messages=ask("get_weather for Oslo"))
    use = next(block for block in first.content if block.type == "tool_use")
    second = client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            *ask("get_weather for Oslo"),
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21 C"}]},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert [block.type for block in second.content] == ["text"]
    assert second.content[0].type == "text" and second.content[0].text == "Fake reply #2 with tool output: sunny, 21 C"


def test_raw_stream_is_the_typed_event_sequence(upstream: FakeUpstream) -> None:
    events = raw_events(upstream, {"model": MODEL, "max_tokens": 100, "messages": ask("hi")})

    assert all(name == data["type"] for name, data in events)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 5,  # "Fake reply #1 to: hi" in words
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["output_tokens"] == 1
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert (
        "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
        == "Fake reply #1 to: hi"
    )
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 5 and delta["usage"]["input_tokens"] == 1


def test_stream_helper_final_message_equals_the_json_message(client: Anthropic) -> None:
    options: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "tools": [WEATHER], "messages": ask("use the tool")}
    with client.messages.stream(**options) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    answered = client.messages.create(**options)

    assert texts == ["Fake ", "reply ", "#1: ", "calling ", "get_weather."]
    assert normalized(final) == normalized(answered)
    assert final.content[-1].type == "tool_use" and final.content[-1].input == {"city": "use the tool", "days": 1}


def test_streamed_tool_input_arrives_in_json_pieces(upstream: FakeUpstream) -> None:
    events = raw_events(
        upstream,
        {"model": MODEL, "max_tokens": 100, "tools": [WEATHER], "tool_choice": {"type": "any"}, "messages": ask("x")},
    )
    opened = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert opened == [{"type": "tool_use", "id": "toolu_fake_1", "name": "get_weather", "input": {}}]
    pieces = [data["delta"]["partial_json"] for name, data in events if name == "content_block_delta"]
    assert pieces[0] == "" and len(pieces) == 4
    jsonschema.validate(json.loads("".join(pieces)), WEATHER_SCHEMA)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_thinking_streams_a_signed_thinking_block_first(client: Anthropic, upstream: FakeUpstream) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    with client.messages.stream(model=MODEL, max_tokens=2048, thinking=thinking, messages=ask("why")) as stream:
        kinds = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()

    assert [block.type for block in final.content] == ["thinking", "text"]
    thought = final.content[0]
    assert thought.type == "thinking" and thought.thinking == "Fake thought #1 about: why" and thought.signature
    assert kinds == ["thinking_delta"] * 5 + ["signature_delta"] + ["text_delta"] * 5
    answered = client.messages.create(model=MODEL, max_tokens=2048, thinking=thinking, messages=ask("why"))
    assert answered.content[0].type == "thinking" and answered.content[0].thinking == "Fake thought #2 about: why"
    assert answered.content[0].signature not in ("", thought.signature)  # signs its own text


@pytest.mark.parametrize(
    ("thinking", "max_tokens"),
    [({"type": "enabled", "budget_tokens": 100}, 2048), ({"type": "enabled", "budget_tokens": 2048}, 2048)],
)
def test_thinking_budget_is_checked_as_the_api_does(client: Anthropic, thinking: Any, max_tokens: int) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=MODEL, max_tokens=max_tokens, thinking=thinking, messages=ask("why"))
    assert raised.value.type == "invalid_request_error"


def test_stop_sequence_and_max_tokens_end_the_text(client: Anthropic) -> None:
    stopped = client.messages.create(
        model=MODEL, max_tokens=100, stop_sequences=["END", "now"], messages=ask("say now END")
    )
    assert stopped.content[0].type == "text" and stopped.content[0].text == "Fake reply #1 to: say "
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "now")

    cut = client.messages.create(model=MODEL, max_tokens=3, messages=ask("one two three"))
    assert cut.content[0].type == "text" and cut.content[0].text == "Fake reply #2"
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3


def test_pause_turn_header_sets_the_stop_reason_of_json_and_stream(client: Anthropic) -> None:
    pause = {"X-Fake-Stop-Reason": "pause_turn"}
    assert (
        client.messages.create(model=MODEL, max_tokens=100, messages=ask("hi"), extra_headers=pause).stop_reason
        == "pause_turn"
    )
    with client.messages.stream(model=MODEL, max_tokens=100, messages=ask("hi"), extra_headers=pause) as stream:
        assert stream.get_final_message().stop_reason == "pause_turn"


def test_count_tokens_is_deterministic_and_matches_the_usage(client: Anthropic) -> None:
    request: dict[str, Any] = {
        "model": MODEL,
        "system": "be brief",
        "tools": [WEATHER],
        "messages": ask("what is redis"),
    }
    counted = client.messages.count_tokens(**request)
    assert (
        counted.input_tokens == client.messages.count_tokens(**request).input_tokens == 2 + 3 + 5
    )  # system, message, tool name and description
    assert client.messages.create(max_tokens=100, **request).usage.input_tokens == counted.input_tokens


def test_models_answer_in_anthropic_shape(client: Anthropic) -> None:
    assert [model.id for model in client.models.list()] == ["fake-model", "fake-model-mini"]
    assert client.models.retrieve("fake-model-mini").display_name == "Fake Model Mini"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-unknown")


def test_bearer_token_authenticates_too(upstream: FakeUpstream) -> None:
    with anthropic_sdk(upstream.base_url, upstream, auth_token="sk-ant-oauth") as bearer:
        assert bearer.messages.create(model=MODEL, max_tokens=10, messages=ask("hi")).stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_status_fault_raises_the_matching_sdk_error(
    client: Anthropic, status: int, error: type[anthropic.APIStatusError], kind: str
) -> None:
    with pytest.raises(error) as raised:
        client.messages.create(
            model=MODEL, max_tokens=10, messages=ask("hi"), extra_headers={"X-Fake-Status": str(status)}
        )
    assert raised.value.status_code == status and raised.value.type == kind
    assert isinstance(raised.value.body, dict) and raised.value.body["type"] == "error"


def test_missing_key_version_or_max_tokens_are_rejected_as_the_api_does(upstream: FakeUpstream) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": ask("hi")}
    no_key = httpx.post(
        upstream.api_url + "/messages", json=body, headers={"anthropic-version": "2023-06-01"} | upstream.headers
    )
    assert no_key.status_code == 401
    assert no_key.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }
    no_version = httpx.post(
        upstream.api_url + "/messages", json=body, headers={"x-api-key": "sk-ant-test"} | upstream.headers
    )
    assert no_version.status_code == 400 and no_version.json()["error"]["type"] == "invalid_request_error"
    bad_json = httpx.post(upstream.api_url + "/messages", content=b"{nope", headers=HEADERS | upstream.headers)
    assert bad_json.status_code == 400 and bad_json.json()["type"] == "error"
    no_limit = httpx.post(
        upstream.api_url + "/messages", json={"model": MODEL, "messages": ask("hi")}, headers=HEADERS | upstream.headers
    )
    assert no_limit.status_code == 400
    assert no_limit.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


def test_stream_error_event_raises_after_the_events_sent(client: Anthropic) -> None:
    received = []
    with pytest.raises(anthropic.APIStatusError) as raised:
        with client.messages.stream(
            model=MODEL, max_tokens=100, messages=ask("hi"), extra_headers={"X-Fake-Stream-Error-After": "4"}
        ) as stream:
            for event in stream:
                received.append(event.type)
    assert raised.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    # Four events were sent (message_start, content_block_start, ping, one delta); the SDK skips the ping and
    # adds a `text` event for the delta.
    assert received == ["message_start", "content_block_start", "content_block_delta", "text"]


def test_malformed_event_fails_to_decode_after_one_event(client: Anthropic) -> None:
    received = []
    with pytest.raises(json.JSONDecodeError):
        with client.messages.stream(
            model=MODEL, max_tokens=100, messages=ask("hi"), extra_headers={"X-Fake-Malformed-Sse": "1"}
        ) as stream:
            for event in stream:
                received.append(event.type)
    assert received == ["message_start"]


def test_unknown_anthropic_path_is_an_anthropic_not_found(upstream: FakeUpstream) -> None:
    response = httpx.post(upstream.api_url + "/messages/batches", json={}, headers=HEADERS | upstream.headers)
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"
