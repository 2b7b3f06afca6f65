"""What every protocol in the registry does alike: names and routes, complete answers, errors, usage, JSON bodies,
and the round trip of a fixed answer through replay and assembly (pure)."""

from __future__ import annotations

import orjson
import pytest

from llmproxy.errors import InvalidRequestError, RequestTimeoutError, UpstreamError
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest, WireProtocol
from llmproxy.protocols.json_body import MAX_JSON_DEPTH, decode_json_object
from llmproxy.protocols.openai_stream import ChunkedProtocol
from llmproxy.protocols.registry import PROTOCOL_NAMES, PROTOCOLS, by_name, by_path
from llmproxy.streaming import SseDecoder
from llmproxy.trace import TokenUsage

STREAMING = [protocol for protocol in PROTOCOLS if isinstance(protocol, ChunkedProtocol)]


def test_each_protocol_is_found_by_its_name_and_its_path() -> None:
    assert PROTOCOL_NAMES == ("chat", "completion", "embedding", "responses")
    for protocol in PROTOCOLS:
        assert by_name(protocol.name) is protocol and by_path(protocol.path) is protocol
        assert protocol.path.startswith("/v1/") and protocol.upstream_family == "openai"
    assert by_path("/v1/models") is None
    with pytest.raises(KeyError):
        by_name("image")


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
def test_only_complete_successful_answers_count(kind: str, response: JsonObject, complete: bool) -> None:
    assert by_name(kind).is_complete(response) is complete


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTOCOL_NAMES)
def test_the_proxys_errors_and_refusals_are_in_openais_shape(protocol: WireProtocol) -> None:
    error = RequestTimeoutError("too slow")

    assert protocol.error_status(error) == 408
    assert protocol.error_body(error) == {
        "error": {"message": "too slow", "type": "invalid_request_error", "param": None, "code": "request_timeout"}
    }
    assert protocol.refusal(403, "not here", "blocked_by_route") == {
        "error": {"message": "not here", "type": "invalid_request_error", "param": None, "code": "blocked_by_route"}
    }


@pytest.mark.parametrize("protocol", STREAMING, ids=[protocol.name for protocol in STREAMING])
def test_a_stream_error_is_a_last_data_event_the_sdks_raise(protocol: WireProtocol) -> None:
    (event,) = SseDecoder().feed(protocol.stream_error(UpstreamError("gone")))
    assert orjson.loads(event.data or "")["error"]["code"] == "upstream_unreachable"


@pytest.mark.parametrize(
    ("answer", "error"),
    [({"id": "x"}, None), ({"id": "x", "error": None}, None), ({"error": {"message": "boom"}}, "boom"),
     ({"error": "flat"}, "flat"), ({"error": {}}, "(no message)")],
)  # fmt: skip
def test_an_error_object_in_a_200_is_an_error(answer: JsonObject, error: str | None) -> None:
    assert all(protocol.answer_error(answer) == error for protocol in PROTOCOLS)


def test_usage_is_read_from_the_answer_when_it_is_whole() -> None:
    chat = by_name("chat")
    assert chat.usage({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == TokenUsage(3, 4)
    assert chat.usage({"usage": {"prompt_tokens": 3}}) == TokenUsage(3, 0)  # embeddings report no completion
    assert chat.usage({"usage": {"prompt_tokens": "3"}}) is None
    assert chat.usage({}) is None


@pytest.mark.parametrize("protocol", STREAMING, ids=[protocol.name for protocol in STREAMING])
def test_a_fixed_answer_replayed_and_assembled_is_the_answer(protocol: ChunkedProtocol) -> None:
    answer = protocol.fixed_answer("m", "A fixed answer of several words.", "llmproxy-1", 1_700_000_000)
    request = ParsedRequest(body={"model": "m", "stream": True}, model="m", stream=True)
    assembler = protocol.assembler(request, want_usage=False)

    assert all(assembler.add(event) for event in SseDecoder().feed(protocol.replay(answer, request)))
    assert assembler.result() == {key: value for key, value in answer.items() if key != "usage"}


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTOCOL_NAMES)
def test_the_upstream_body_is_the_callers_unless_a_route_or_usage_changes_it(protocol: WireProtocol) -> None:
    body = {"model": "m", "prompt": "p", "input": "p", "messages": [{"role": "user", "content": "p"}], "stream": True}
    if protocol.name == "responses":
        del body["prompt"]  # a reusable prompt there: an object
    parsed = protocol.parse(orjson.dumps(body), [])

    assert protocol.upstream_body(parsed, model=None, want_usage=False) is None
    rewritten = orjson.loads(protocol.upstream_body(parsed, model="other", want_usage=True) or b"")
    assert rewritten["model"] == "other"
    # Only chunk streams are asked for their usage (a Responses stream always reports it), and only protocols
    # that stream have any.
    assert ("stream_options" in rewritten) is (parsed.stream and isinstance(protocol, ChunkedProtocol))


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
