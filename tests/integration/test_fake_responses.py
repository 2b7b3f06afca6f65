"""The fake upstream's Responses API, with the official openai SDK pointed straight at it (no proxy)."""

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI
from openai.types.responses import FunctionToolParam, Response, ResponseInputParam

from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream

MODEL = "fake-model"
AUTH = {"Authorization": "Bearer sk-test"}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER: FunctionToolParam = {"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA, "strict": True}
CLOCK: FunctionToolParam = {"type": "function", "name": "get_time", "parameters": None, "strict": False}
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 6,  # "Fake reply #1 to: stream this" in words
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture
def client(upstream: FakeUpstream) -> Iterator[OpenAI]:
    with openai_sdk(upstream.base_url, "sk-test", upstream, timeout=10) as sdk:
        yield sdk


def normalized(response: Response) -> Any:
    """The response without what differs between two replies: numbers in ids and texts, timestamps."""
    text = json.dumps(response.model_dump(exclude={"created_at", "completed_at"}))
    return json.loads(re.sub(r"(fake_|#)\d+", r"\g<1>N", text))


def sent_bodies(upstream: FakeUpstream) -> list[dict[str, Any]]:
    return [json.loads(call["body"]) for call in upstream.requests()]


def test_text_response_has_the_shape_the_sdk_models(client: OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="what is redis", instructions="be brief", temperature=0.2)

    assert (response.id, response.object, response.status, response.model) == (
        "resp_fake_1",
        "response",
        "completed",
        MODEL,
    )
    message = response.output[0]
    assert message.type == "message" and message.id == "msg_fake_1" and message.role == "assistant"
    assert message.status == "completed" and len(message.content) == 1
    part = message.content[0]
    assert part.type == "output_text" and part.annotations == []
    assert response.output_text == "Fake reply #1 to: what is redis"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (5, 7, 12)
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert (response.instructions, response.temperature, response.tool_choice, response.tools) == (
        "be brief",
        0.2,
        "auto",
        [],
    )
    assert response.text is not None and response.text.format is not None and response.text.format.type == "text"
    assert response.parallel_tool_calls is True and response.error is None and response.incomplete_details is None
    assert response.completed_at is not None and response.created_at > 0


def test_input_items_answer_the_latest_user_message_and_count_every_text(client: OpenAI) -> None:
    items: ResponseInputParam = [
        {"role": "developer", "content": "answer in one line"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "describe"},
                {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"},
                {"type": "input_text", "text": "this picture"},
            ],
        },
    ]
    response = client.responses.create(model=MODEL, input=items)
    assert response.output_text == "Fake reply #1 to: describe this picture"
    assert response.usage is not None and response.usage.input_tokens == 4 + 2 + 2 + 3


def test_prompt_naming_a_tool_gets_a_schema_valid_function_call_and_its_output_gets_text(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    first = client.responses.create(model=MODEL, input="What is the weather in Oslo? Use get_weather", tools=[WEATHER])

    call = first.output[0]
    assert call.type == "function_call" and len(first.output) == 1
    assert (call.id, call.call_id, call.name, call.status) == ("fc_fake_1", "call_fake_1", "get_weather", "completed")
    arguments = json.loads(call.arguments)
    jsonschema.validate(arguments, WEATHER_SCHEMA)
    assert arguments == {"city": "What is the weather in Oslo? Use get_weather", "unit": "celsius"}
    assert first.output_text == "" and first.status == "completed"

    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}],
        tools=[WEATHER],
    )
    assert second.output_text == "Fake reply #2 with tool output: sunny, 21 C"
    assert second.previous_response_id == "resp_fake_1"
    assert sent_bodies(upstream)[1]["previous_response_id"] == "resp_fake_1"


@pytest.mark.parametrize(
    ("prompt", "options", "called"),
    [
        ("what time is it", {}, []),  # auto, no tool named: text
        ("please use a tool", {}, ["get_weather"]),  # asks for one: the first
        ("get_time and get weather", {}, ["get_weather", "get_time"]),  # both named, in the tools' order
        ("get_time and get weather", {"parallel_tool_calls": False}, ["get_weather"]),
        ("get_time please", {"tool_choice": "none"}, []),
        ("hello", {"tool_choice": "required"}, ["get_weather"]),
        ("hello", {"tool_choice": {"type": "function", "name": "get_time"}}, ["get_time"]),
    ],
)
def test_tool_rule_decides_which_functions_are_called(
    client: OpenAI, prompt: str, options: dict[str, Any], called: list[str]
) -> None:
    response = client.responses.create(model=MODEL, input=prompt, tools=[WEATHER, CLOCK], **options)
    calls = [item for item in response.output if item.type == "function_call"]
    assert [call.name for call in calls] == called
    assert len({call.call_id for call in calls}) == len(calls)
    if not called:
        assert response.output_text == f"Fake reply #1 to: {prompt}"
    if "get_time" in called:
        assert json.loads(next(c for c in calls if c.name == "get_time").arguments) == {"input": prompt}


def test_stream_is_the_typed_event_sequence_and_ends_with_the_json_response(client: OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input="stream this", stream=True))
    answered = client.responses.create(model=MODEL, input="stream this")

    assert [event.type for event in events] == TEXT_EVENTS
    assert [event.sequence_number for event in events] == list(range(len(events)))
    created = events[0]
    assert created.type == "response.created" and created.response.status == "in_progress"
    assert created.response.output == [] and created.response.usage is None
    deltas = [event for event in events if event.type == "response.output_text.delta"]
    assert {(d.item_id, d.output_index, d.content_index) for d in deltas} == {("msg_fake_1", 0, 0)}
    assert "".join(delta.delta for delta in deltas) == "Fake reply #1 to: stream this"
    final = events[-1]
    assert final.type == "response.completed" and final.response.id == created.response.id
    assert normalized(final.response) == normalized(answered)


def test_raw_stream_names_each_event_and_has_no_done_marker(upstream: FakeUpstream) -> None:
    body = {"model": MODEL, "input": "hi", "stream": True}
    response = httpx.post(upstream.api_url + "/responses", json=body, headers=AUTH | upstream.headers)

    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks[-1] == "" and "[DONE]" not in response.text
    for block in blocks[:-1]:
        event_line, data_line = block.split("\n")
        assert event_line.removeprefix("event: ") == json.loads(data_line.removeprefix("data: "))["type"]


def test_stream_helper_assembles_text_and_function_calls(client: OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="stream me") as stream:
        snapshots = [event.snapshot for event in stream if event.type == "response.output_text.delta"]
        text = stream.get_final_response()
    assert snapshots[-1] == text.output_text == "Fake reply #1 to: stream me" and len(snapshots) == 6

    with client.responses.stream(model=MODEL, input="weather? use the tool", tools=[WEATHER]) as stream:
        pieces = [event.delta for event in stream if event.type == "response.function_call_arguments.delta"]
        called = stream.get_final_response()
    call = called.output[0]
    assert call.type == "function_call" and len(pieces) == 3 and "".join(pieces) == call.arguments
    jsonschema.validate(json.loads(call.arguments), WEATHER_SCHEMA)


def test_max_output_tokens_cuts_the_reply_into_an_incomplete_response(client: OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="one two three", max_output_tokens=3)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Fake reply #1" and response.output[0].status == "incomplete"

    events = list(client.responses.create(model=MODEL, input="one two three", max_output_tokens=3, stream=True))
    assert events[-1].type == "response.incomplete" and "response.completed" not in [e.type for e in events]
    assert events[-1].response.incomplete_details is not None and events[-1].response.output_text == "Fake reply #2"


def test_failure_header_gives_a_failed_response_and_a_failed_stream(client: OpenAI) -> None:
    failing = {"X-Fake-Response-Status": "failed"}
    response = client.responses.create(model=MODEL, input="hi there", extra_headers=failing)
    assert response.status == "failed" and response.output == [] and response.usage is None
    assert response.error is not None and response.error.code == "server_error"

    events = list(client.responses.create(model=MODEL, input="hi there", stream=True, extra_headers=failing))
    types = [event.type for event in events]
    assert types[0] == "response.created" and types[-1] == "response.failed" and "response.output_text.delta" in types
    assert "response.output_item.done" not in types and "response.completed" not in types
    with client.responses.stream(model=MODEL, input="hi", extra_headers=failing) as stream:
        with pytest.raises(RuntimeError, match="response.completed"):
            stream.get_final_response()


def test_incomplete_header_cuts_the_reply_for_a_content_filter(client: OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="a b c d", extra_headers={"X-Fake-Response-Status": "incomplete"}
    )
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "content_filter" and response.output_text == "Fake reply #1 to:"


def test_conversation_is_accepted_and_echoed_but_not_with_a_previous_response(client: OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="hi", conversation="conv_123")
    assert response.conversation is not None and response.conversation.id == "conv_123"
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        client.responses.create(model=MODEL, input="hi", conversation="conv_123", previous_response_id="resp_x")


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"input": "hi"}, AUTH, 400),  # no model
        ({"model": MODEL}, AUTH, 400),  # no input
        ({"model": MODEL, "input": 5}, AUTH, 400),
        ({"model": MODEL, "input": "hi", "max_output_tokens": 0}, AUTH, 400),
        ({"model": MODEL, "input": "hi", "text": {"format": {"type": "xml"}}}, AUTH, 400),
        ({"model": MODEL, "input": "hi"}, {}, 401),
        ({"model": MODEL, "input": "hi"}, {**AUTH, "X-Fake-Status": "429"}, 429),
        ({"model": MODEL, "input": "hi"}, {**AUTH, "X-Fake-Response-Status": "lost"}, 400),
    ],
)
def test_errors_are_in_openai_shape(
    upstream: FakeUpstream, body: dict[str, Any], headers: dict[str, str], status: int
) -> None:
    response = httpx.post(upstream.api_url + "/responses", json=body, headers=headers | upstream.headers)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_sdk_raises_its_matching_errors(client: OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=MODEL, input="hi", extra_headers={"X-Fake-Status": "429"})
    with pytest.raises(openai.AuthenticationError):
        client.responses.create(model=MODEL, input="hi", extra_headers={"Authorization": "Basic eA=="})


def test_stream_faults_apply_to_typed_events(client: OpenAI) -> None:
    stream = client.responses.create(
        model=MODEL, input="hi", stream=True, extra_headers={"X-Fake-Stream-Error-After": "3"}
    )
    events = list(stream)
    assert [event.type for event in events][-1] == "error" and len(events) == 4
    assert events[-1].sequence_number == 3

    dropped = client.responses.create(model=MODEL, input="hi", stream=True, extra_headers={"X-Fake-Drop-After": "2"})
    received = []
    with pytest.raises(openai.APIConnectionError):
        for event in dropped:
            received.append(event)
    assert len(received) == 2
