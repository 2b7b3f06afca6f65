"""Structured outputs and tool arguments of the fake upstream, for every protocol, parsed by the official SDKs."""

import enum
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel, Field

from tests.support.clients import anthropic_sdk, openai_sdk
from tests.support.upstream import FakeUpstream

MODEL = "fake-model"


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Place(BaseModel):
    city: str = Field(min_length=2)
    country: str | None


class Forecast(BaseModel):
    place: Place
    unit: Unit
    days: int = Field(ge=1, le=7)
    highs: list[float] = Field(min_length=2)


class GetWeather(BaseModel):
    """Forecast for a place."""

    place: Place
    unit: Unit


@pytest.fixture
def client(upstream: FakeUpstream) -> Iterator[OpenAI]:
    with openai_sdk(upstream.base_url, "sk-test", upstream, timeout=10) as sdk:
        yield sdk


def last_body(upstream: FakeUpstream) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(upstream.requests()[-1]["body"])
    return body


def test_chat_parse_answers_a_pydantic_model_with_schema_valid_json(client: OpenAI, upstream: FakeUpstream) -> None:
    completion = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "forecast for Oslo"}], response_format=Forecast
    )
    message = completion.choices[0].message
    assert message.parsed is not None and message.parsed.unit is Unit.CELSIUS and message.parsed.days == 1
    assert message.parsed.place.city == "Fake reply #1 to: forecast for Oslo"
    sent = last_body(upstream)["response_format"]["json_schema"]["schema"]
    jsonschema.validate(json.loads(message.content or ""), sent)


def test_chat_json_object_and_streamed_json_schema(client: OpenAI) -> None:
    plain = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], response_format={"type": "json_object"}
    )
    assert json.loads(plain.choices[0].message.content or "") == {"reply": "Fake reply #1 to: hi"}

    schema = Forecast.model_json_schema()
    chunks = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "stream it"}],
        response_format={"type": "json_schema", "json_schema": {"name": "forecast", "schema": schema}},
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(pieces) > 3
    Forecast.model_validate_json("".join(pieces))


def test_chat_tool_call_arguments_validate_against_the_tool_parameters(client: OpenAI) -> None:
    tool = openai.pydantic_function_tool(GetWeather, name="get_weather")
    completion = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "call get_weather for Oslo"}], tools=[tool]
    )
    calls = completion.choices[0].message.tool_calls or []
    assert completion.choices[0].finish_reason == "tool_calls" and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(call.function.parsed_arguments, GetWeather)
    jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])


def test_chat_calls_every_named_tool_in_parallel_and_answers_tool_outputs(client: OpenAI) -> None:
    tools: Any = [
        {"type": "function", "function": {"name": "get_weather", "parameters": GetWeather.model_json_schema()}},
        {"type": "function", "function": {"name": "get_time"}},
    ]
    question: Any = [{"role": "user", "content": "get_weather and get_time please"}]
    both = client.chat.completions.create(model=MODEL, messages=question, tools=tools)
    calls = both.choices[0].message.tool_calls or []
    assert [call.function.name for call in calls if call.type == "function"] == ["get_weather", "get_time"]
    assert [call.id for call in calls] == ["call_fake_1", "call_fake_1-1"]
    one = client.chat.completions.create(model=MODEL, messages=question, tools=tools, parallel_tool_calls=False)
    assert len(one.choices[0].message.tool_calls or []) == 1

    answers: Any = [{"role": "tool", "tool_call_id": call.id, "content": f"result {i}"} for i, call in enumerate(calls)]
    final = client.chat.completions.create(
        model=MODEL, messages=[*question, both.choices[0].message.model_dump(exclude_none=True), *answers], tools=tools
    )
    assert final.choices[0].message.tool_calls is None
    assert final.choices[0].message.content == "Fake reply #3 with tool output: result 0; result 1"


def test_chat_streams_several_tool_calls_each_with_its_own_index(client: OpenAI) -> None:
    tools: Any = [
        {"type": "function", "function": {"name": "get_weather", "parameters": GetWeather.model_json_schema()}},
        {"type": "function", "function": {"name": "get_time"}},
    ]
    chunks = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "get_weather, get_time"}], tools=tools, stream=True
    )
    arguments: dict[int, str] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments[delta.index] = arguments.get(delta.index, "") + (
                delta.function and delta.function.arguments or ""
            )
    assert sorted(arguments) == [0, 1]
    GetWeather.model_validate_json(arguments[0])
    assert json.loads(arguments[1]) == {"input": "get_weather, get_time"}


def test_responses_parse_answers_a_pydantic_model(client: OpenAI, upstream: FakeUpstream) -> None:
    parsed = client.responses.parse(model=MODEL, input="forecast for Oslo", text_format=Forecast)
    assert isinstance(parsed.output_parsed, Forecast)
    # The strict schema makes every field required: an optional one gets a value, not null.
    assert (
        parsed.output_parsed.place.country == parsed.output_parsed.place.city == "Fake reply #1 to: forecast for Oslo"
    )
    sent = last_body(upstream)["text"]["format"]
    assert sent["type"] == "json_schema" and sent["strict"] is True
    jsonschema.validate(json.loads(parsed.output_text), sent["schema"])

    with client.responses.stream(model=MODEL, input="stream a forecast", text_format=Forecast) as stream:
        done = [event for event in stream if event.type == "response.output_text.done"]
        final = stream.get_final_response()
    assert isinstance(done[0].parsed, Forecast) and isinstance(final.output_parsed, Forecast)


def test_responses_parse_gives_parsed_arguments_for_strict_pydantic_tools(client: OpenAI) -> None:
    tool = openai.pydantic_responses_function_tool(GetWeather, name="get_weather")
    parsed = client.responses.parse(model=MODEL, input="use the tool for Oslo", tools=[tool])
    call = parsed.output[0]
    assert call.type == "function_call" and isinstance(call.parsed_arguments, GetWeather)


def test_anthropic_parse_answers_a_pydantic_model_within_its_moved_constraints(upstream: FakeUpstream) -> None:
    with anthropic_sdk(upstream.base_url, upstream, api_key="sk-ant-test") as claude:
        message = claude.messages.parse(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "forecast"}], output_format=Forecast
        )
        with claude.messages.stream(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "forecast"}], output_format=Forecast
        ) as stream:
            streamed = stream.get_final_message()
    assert isinstance(message.parsed_output, Forecast) and 1 <= message.parsed_output.days <= 7
    assert len(message.parsed_output.highs) >= 2  # minItems travelled in a description
    assert isinstance(streamed.parsed_output, Forecast)
    sent = last_body(upstream)["output_config"]["format"]
    text = next(block.text for block in message.content if block.type == "text")
    jsonschema.validate(json.loads(text), sent["schema"])


def test_anthropic_tool_input_validates_against_the_input_schema(upstream: FakeUpstream) -> None:
    schema = GetWeather.model_json_schema()
    with anthropic_sdk(upstream.base_url, upstream, api_key="sk-ant-test") as claude:
        message = claude.messages.create(
            model=MODEL,
            max_tokens=200,
            tools=[{"name": "get_weather", "input_schema": schema}],
            messages=[{"role": "user", "content": "get weather for Oslo"}],
        )
    use = next(block for block in message.content if block.type == "tool_use")
    jsonschema.validate(use.input, schema)
    GetWeather.model_validate(use.input)
