"""Request validation: what the proxy accepts and the 400s it answers (pure)."""

from __future__ import annotations

import orjson
import pytest

from llmproxy.errors import InvalidRequestError
from llmproxy.protocols.wire import (
    MAX_JSON_DEPTH,
    EndpointKind,
    JsonObject,
    decode_json_object,
    is_complete_answer,
    parse_request,
)


def test_chat_request_facts() -> None:
    raw = orjson.dumps(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    parsed = parse_request("chat", raw)
    assert (parsed.model, parsed.stream, parsed.include_usage) == ("m", True, True)
    assert parsed.body["messages"][0]["content"] == "hi"


def test_include_usage_needs_stream() -> None:
    raw = orjson.dumps({"model": "m", "prompt": "p", "stream_options": {"include_usage": True}})
    assert parse_request("completion", raw).include_usage is False


def test_unknown_fields_are_kept_for_the_upstream() -> None:
    raw = orjson.dumps({"model": "m", "input": "x", "brand_new_option": {"a": 1}})
    assert parse_request("embedding", raw).body["brand_new_option"] == {"a": 1}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "missing_required_parameter"),
        ({"model": "", "messages": [{"role": "user"}]}, "model", "invalid_value"),
        ({"model": "m", "messages": [{"role": "wizard"}]}, "messages.0.role", "invalid_value"),
        ({"model": "m", "messages": [{"role": "user"}], "n": 0}, "n", "invalid_value"),
        ({"model": "m", "messages": [{"role": "user"}], "temperature": 3}, "temperature", "invalid_value"),
        ({"model": "m", "messages": [{"role": "user"}], "stream": 1}, "stream", "invalid_value"),
    ],
)
def test_invalid_chat_requests_name_the_parameter(body: dict[str, object], param: str, code: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_request("chat", orjson.dumps(body))
    assert (raised.value.param, raised.value.instance_code) == (param, code)


@pytest.mark.parametrize("raw", [b"", b"{", b"null", b'"text"', b"[]"])
def test_non_object_bodies_are_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_request("chat", raw)
    assert raised.value.instance_code == "invalid_json"


FINISHED = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}


@pytest.mark.parametrize(
    ("kind", "response", "complete"),
    [
        ("chat", {"choices": [FINISHED]}, True),
        ("chat", {"choices": [FINISHED, {**FINISHED, "index": 1, "finish_reason": None}]}, False),
        ("chat", {"choices": []}, False),
        ("chat", {"error": {"message": "overloaded"}}, False),
        ("chat", {"choices": [FINISHED], "error": {"message": "partial"}}, False),
        ("completion", {"choices": [{"text": "x", "index": 0, "finish_reason": "length"}]}, True),
        ("embedding", {"data": [{"embedding": [0.1]}]}, True),
        ("embedding", {"data": []}, False),
    ],
)
def test_only_complete_successful_answers_count(kind: EndpointKind, response: JsonObject, complete: bool) -> None:
    assert is_complete_answer(kind, response) is complete


def test_body_nested_deeper_than_the_limit_is_a_400() -> None:
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(InvalidRequestError) as raised:
        decode_json_object(b'{"a": ' + deep + b"}")
    assert raised.value.instance_code == "invalid_json" and "nested" in raised.value.message


def test_body_nested_to_the_limit_is_accepted() -> None:
    depth = MAX_JSON_DEPTH - 1  # the body object itself is the first level
    assert decode_json_object(b'{"a": ' + b"[" * depth + b"]" * depth + b"}")["a"]


def test_many_brackets_side_by_side_are_not_deep() -> None:
    wide = orjson.dumps({"a": [[1]] * 10_000, "b": [{"c": {}}] * 10_000})
    assert len(decode_json_object(wide)["a"]) == 10_000


@pytest.mark.parametrize("part", [{"type": "text"}, {"type": "text", "text": 5}, {"type": "text", "text": None}])
def test_text_part_needs_a_text_string(part: JsonObject) -> None:
    raw = orjson.dumps(
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "ok"}, part]}]}
    )
    with pytest.raises(InvalidRequestError) as raised:
        parse_request("chat", raw)
    assert raised.value.param == "messages.0.content" and "part 1" in raised.value.message


def test_other_content_parts_are_left_to_the_upstream() -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}, {"type": "input_audio"}]
    raw = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})
    assert parse_request("chat", raw).body["messages"][0]["content"] == content


@pytest.mark.parametrize("options", [1.5, True, "yes", [1], {"include_usage": True}])
def test_embeddings_are_never_streamed_whatever_stream_fields_they_carry(options: object) -> None:
    # Embeddings have no stream parameter: such fields are unknown ones, forwarded for the upstream to judge.
    raw = orjson.dumps({"model": "m", "input": "x", "stream": True, "stream_options": options})
    parsed = parse_request("embedding", raw)
    assert (parsed.stream, parsed.include_usage) == (False, False)
    assert parsed.body["stream_options"] == options
