"""The Responses API as a protocol: validation, the key, the bypass rule, the L2 view, the prompt shown, stream
assembly over the fake's event sequences, replay that the openai SDK's stream helper parses back, fixed answers,
refusals and usage (pure)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import openai
import orjson
import pytest
from openai._models import construct_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from llmproxy.cache.keys import request_key, semantic_key
from llmproxy.errors import InvalidRequestError, MalformedStreamError, UpstreamError
from llmproxy.fake_upstream.named_events import encode_named
from llmproxy.fake_upstream.responses import plan_response
from llmproxy.fake_upstream.responses_stream import response_events
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest
from llmproxy.protocols.chat import CHAT
from llmproxy.protocols.responses import RESPONSES
from llmproxy.streaming import SseDecoder, SseEvent
from llmproxy.trace import TokenUsage

LIMIT = 2_000
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


def parse(body: JsonObject) -> ParsedRequest:
    return RESPONSES.parse(orjson.dumps(body), [])


def events_of(raw: bytes) -> list[SseEvent]:
    return SseDecoder().feed(raw)


def fake_stream(body: JsonObject, outcome: str | None = None) -> tuple[list[SseEvent], JsonObject]:
    """The fake upstream's event stream for `body` (as it sends it) and the Response its last event carries."""
    events = list(response_events(plan_response(body, 1, outcome)))
    return events_of(b"".join(encode_named(event) for event in events)), events[-1][1]["response"]


def assembled(events: list[SseEvent]) -> tuple[bool, bool, JsonObject | None]:
    assembler = RESPONSES.assembler(parse({"model": "m", "input": "x", "stream": True}), want_usage=True)
    assert all(assembler.add(event) for event in events)  # nothing is hidden from the client
    return assembler.ended, assembler.failed, assembler.result()


def sdk_final(raw: bytes) -> Any:
    """What the openai SDK's `responses.stream()` helper makes of a stream: its final response."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=[], text_format=openai.omit)
    for event in events_of(raw):
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=orjson.loads(event.data or "")))
    return state._completed_response


# --- Validation -----------------------------------------------------------------------------------


def test_request_facts() -> None:
    parsed = parse({"model": "m", "input": "hi", "stream": True})
    assert (parsed.model, parsed.stream, parsed.key_headers) == ("m", True, ())
    assert parse({"prompt": {"id": "pmpt_1", "version": "2"}}).model == ""  # the prompt names the model


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x"}, "model", "missing_required_parameter"),
        ({"model": "", "input": "x"}, "model", "invalid_value"),
        ({"model": "m", "input": 5}, "input", "invalid_value"),
        ({"model": "m", "input": ["x"]}, "input", "invalid_value"),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream", "invalid_value"),
        ({"model": "m", "input": "x", "temperature": 3}, "temperature", "invalid_value"),
        ({"model": "m", "input": "x", "max_output_tokens": "9"}, "max_output_tokens", "invalid_value"),
        ({"model": "m", "input": "x", "background": 1}, "background", "invalid_value"),
        ({"model": "m", "prompt": {"version": "1"}}, "prompt.id", "missing_required_parameter"),
    ],
)
def test_invalid_requests_name_the_parameter(body: JsonObject, param: str, code: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse(body)
    assert (raised.value.param or "").startswith(param) and raised.value.instance_code == code


# --- The key ---------------------------------------------------------------------------------------

BASE: JsonObject = {"model": "m", "input": "What is Redis?"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream", True), ("stream_options", {"include_obfuscation": False}), ("metadata", {"run": "7"}),
        ("store", False), ("user", "u-1"), ("safety_identifier", "s-1"), ("prompt_cache_key", "k"),
        ("service_tier", "flex"),
    ],
)  # fmt: skip
def test_delivery_and_attribution_fields_leave_the_key_alone(field: str, value: Any) -> None:
    assert request_key(RESPONSES, "s", {**BASE, field: value}) == request_key(RESPONSES, "s", BASE)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "other"), ("input", "What is Redis exactly?"), ("instructions", "be brief"), ("tools", [WEATHER]),
        ("tool_choice", "required"), ("parallel_tool_calls", False), ("text", {"verbosity": "low"}),
        ("reasoning", {"effort": "high"}), ("temperature", 0.2), ("top_p", 0.5), ("max_output_tokens", 50),
        ("truncation", "auto"), ("include", ["reasoning.encrypted_content"]), ("top_logprobs", 2),
        ("max_tool_calls", 3), ("previous_response_id", "resp_1"), ("prompt", {"id": "p", "version": "1"}),
        ("a_future_field", 1),
    ],
)  # fmt: skip
def test_every_answer_changing_field_and_unknown_ones_change_the_key(field: str, value: Any) -> None:
    assert request_key(RESPONSES, "s", {**BASE, field: value}) != request_key(RESPONSES, "s", BASE)


def test_the_same_body_has_another_key_on_chat() -> None:
    body = {"model": "m", "input": "hi", "messages": [{"role": "user", "content": "hi"}]}
    assert request_key(RESPONSES, "s", body) != request_key(CHAT, "s", body)


# --- Never cached -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"conversation": "conv_1"}, "conversation"),
        ({"conversation": {"id": "conv_1"}}, "conversation"),
        ({"background": True}, "background"),
        ({"prompt": {"id": "pmpt_1"}}, "unpinned-prompt"),
        ({"prompt": {"id": "pmpt_1", "version": None}}, "unpinned-prompt"),
        ({"prompt": {"id": "pmpt_1", "version": "3"}}, None),
        ({"background": False}, None),
        ({"previous_response_id": "resp_1"}, None),  # an immutable stored response: context, not a bypass
        ({}, None),
    ],
)
def test_stateful_and_unpinned_requests_are_never_cached(extra: JsonObject, reason: str | None) -> None:
    assert RESPONSES.bypass_reason(parse({**BASE, **extra})) == reason


# --- The L2 view ------------------------------------------------------------------------------------


def user(content: Any) -> JsonObject:
    return {"type": "message", "role": "user", "content": content}


def test_the_latest_user_text_is_embedded_and_the_rest_partitions_it() -> None:
    view = RESPONSES.semantic_view({**BASE, "instructions": "be brief", "temperature": 0.2})
    assert view is not None and view.prompt == "What is Redis?"
    assert view.params == {"temperature": 0.2}
    assert view.context["instructions"] == "be brief" and view.context["earlier"] == []


def test_a_string_input_and_its_one_message_list_share_a_partition() -> None:
    as_string = semantic_key(RESPONSES, {"model": "m", "input": "hi there"})
    parts = [{"type": "input_text", "text": "hi there"}]
    for items in ([user("hi there")], [user(parts)], [{"role": "user", "content": "hi there"}]):
        assert semantic_key(RESPONSES, {"model": "m", "input": items}) == as_string


@pytest.mark.parametrize(
    "extra",
    [
        {"instructions": "answer in French"},
        {"previous_response_id": "resp_1"},
        {"input": [user("hello"), {"role": "assistant", "content": "hi"}, user("What is Redis?")]},
        {"tools": [WEATHER]},
    ],
)
def test_instructions_earlier_items_and_the_previous_response_change_the_partition(extra: JsonObject) -> None:
    plain, other = semantic_key(RESPONSES, BASE), semantic_key(RESPONSES, {**BASE, **extra})
    assert plain is not None and other is not None and other.prompt == plain.prompt
    assert (other.params_hash, other.context_hash) != (plain.params_hash, plain.context_hash)


@pytest.mark.parametrize(
    "items",
    [
        [user("weather?"), {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
         {"type": "function_call_output", "call_id": "c", "output": "sunny"}],
        [user([{"type": "input_text", "text": "what is this?"}, {"type": "input_image", "image_url": "x"}])],
        [user([{"type": "input_file", "file_id": "file_1"}])],
        [user("hi"), {"type": "message", "role": "assistant", "content": "hello"}],
        [{"type": "reasoning", "summary": []}],
        [],
    ],
)  # fmt: skip
def test_tool_outputs_and_non_text_inputs_are_exact_match_only(items: list[JsonObject]) -> None:
    assert RESPONSES.semantic_view({"model": "m", "input": items}) is None


def test_a_prompt_without_input_is_exact_match_only() -> None:
    assert RESPONSES.semantic_view({"prompt": {"id": "p", "version": "1"}}) is None


def test_a_responses_view_never_shares_a_partition_with_chat() -> None:
    chat = semantic_key(CHAT, {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    responses = semantic_key(RESPONSES, {"model": "m", "input": [{"role": "user", "content": "hi"}]})
    assert chat is not None and responses is not None and chat.context_hash != responses.context_hash


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (BASE, "What is Redis?"),
        ({"input": [user("first"), {"role": "assistant", "content": "ok"}, user("second")]}, "second"),
        ({"input": [user([{"type": "input_text", "text": "look"}, {"type": "input_image"}])]}, "look\n[input_image]"),
        ({"instructions": "be brief", "prompt": {"id": "p"}}, "be brief"),
        ({"prompt": {"id": "pmpt_1", "version": "2"}}, "[prompt pmpt_1 v2]"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
         '[{"type":"function_call_output","call_id":"c","output":"x"}]'),
    ],
)  # fmt: skip
def test_the_prompt_shown_is_the_latest_user_text(body: JsonObject, shown: str) -> None:
    assert RESPONSES.display_prompt(body, LIMIT) == shown
    assert len(RESPONSES.display_prompt({"input": "x" * 50}, 10)) == 10


# --- Streams -----------------------------------------------------------------------------------------


def test_the_fakes_text_stream_assembles_into_its_completed_response() -> None:
    events, final = fake_stream({"model": "m", "input": "stream this please"})
    assert assembled(events) == (True, False, final)
    assert RESPONSES.is_complete(final)


def test_the_fakes_function_call_stream_assembles_into_its_completed_response() -> None:
    events, final = fake_stream({"model": "m", "input": "call get_weather for Paris", "tools": [WEATHER]})
    assert final["output"][0]["type"] == "function_call"
    assert assembled(events) == (True, False, final)


def test_an_incomplete_stream_ends_without_an_answer_and_without_an_error() -> None:
    events, final = fake_stream({"model": "m", "input": "a reply that gets cut", "max_output_tokens": 2})
    assert final["status"] == "incomplete"
    assert assembled(events) == (True, False, None)


def test_a_failed_stream_and_an_error_event_fail_it() -> None:
    events, _ = fake_stream({"model": "m", "input": "x"}, outcome="failed")
    assert assembled(events) == (True, True, None)
    error = events_of(b'event: error\ndata: {"type":"error","code":"server_error","message":"m"}\n\n')
    ended, failed, _ = assembled(events[:3] + error)
    assert (ended, failed) == (False, True)


def test_a_stream_cut_before_its_final_event_is_not_an_answer() -> None:
    events, _ = fake_stream({"model": "m", "input": "x y z"})
    assert assembled(events[:-1]) == (False, False, None)


def test_a_malformed_event_is_a_stream_error() -> None:
    assembler = RESPONSES.assembler(parse({**BASE, "stream": True}), want_usage=False)
    with pytest.raises(MalformedStreamError):
        assembler.add(events_of(b"event: response.output_text.delta\ndata: {not json\n\n")[0])
    assert assembler.failed


def test_a_final_event_without_output_takes_the_finished_items() -> None:
    events, final = fake_stream({"model": "m", "input": "hello"})
    final_event = {"type": "response.completed", "response": {**final, "output": None}, "sequence_number": 99}
    ended, failed, result = assembled([*events[:-1], *events_of(encode_named(("response.completed", final_event)))])
    assert (ended, failed, result) == (True, False, final)


# --- Replay ------------------------------------------------------------------------------------------

STORED: JsonObject = {
    **RESPONSES.fixed_answer("m", "", "resp_stored", 1_700_000_000),
    "output": [
        {"id": "rs_1", "type": "reasoning", "status": "completed",
         "summary": [{"type": "summary_text", "text": "The user wants the weather in Paris."}]},
        {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Let me look that up for you right away.", "annotations": [],
                      "logprobs": []}]},
        {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1", "name": "get_weather",
         "arguments": '{"city":"Paris","unit":"celsius"}'},
    ],
    "usage": {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42},
}  # fmt: skip


def replayed(answer: JsonObject) -> bytes:
    return RESPONSES.replay(answer, parse({**BASE, "stream": True}))


def test_a_replay_assembles_back_into_the_stored_response() -> None:
    assert assembled(events_of(replayed(STORED))) == (True, False, STORED)


def test_the_sdk_stream_helper_parses_a_replay_into_the_stored_response() -> None:
    final = sdk_final(replayed(STORED))
    assert final.model_dump(exclude_none=True) == sdk_final(replayed(STORED)).model_dump(exclude_none=True)
    assert final.id == "resp_stored" and final.output_text == "Let me look that up for you right away."
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[2].arguments == '{"city":"Paris","unit":"celsius"}'


def test_a_replay_numbers_its_events_and_splits_every_text() -> None:
    events = [orjson.loads(event.data or "") for event in events_of(replayed(STORED))]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert (events[0]["type"], events[-1]["type"]) == ("response.created", "response.completed")
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    counts = Counter(event["type"] for event in events)
    assert counts["response.output_text.delta"] > 1
    assert counts["response.function_call_arguments.delta"] > 1
    assert counts["response.reasoning_summary_text.delta"] > 1
    # Every delta points at the item it belongs to.
    ids = {item["id"]: index for index, item in enumerate(STORED["output"])}
    assert all(ids[event["item_id"]] == event["output_index"] for event in events if "item_id" in event)
    texts = "".join(event["delta"] for event in events if event["type"] == "response.output_text.delta")
    assert texts == "Let me look that up for you right away."


def test_refusals_and_unknown_items_replay_whole() -> None:
    refusal = {"id": "msg_2", "type": "message", "status": "completed", "role": "assistant",
               "content": [{"type": "refusal", "refusal": "I can't help with that request."}]}  # fmt: skip
    search = {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {"type": "search"}}
    answer = {**STORED, "output": [search, refusal]}
    raw = replayed(answer)
    assert assembled(events_of(raw)) == (True, False, answer)
    assert sdk_final(raw).output[1].content[0].refusal == "I can't help with that request."


# --- Answers, the router and errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "complete"),
    [
        (STORED, True),
        ({**STORED, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}, False),
        ({**STORED, "status": "failed", "error": {"code": "server_error", "message": "x"}}, False),
        ({**STORED, "status": "in_progress"}, False),
        ({"error": {"message": "overloaded"}}, False),
    ],
)
def test_only_completed_responses_are_stored(answer: JsonObject, complete: bool) -> None:
    assert RESPONSES.is_complete(answer) is complete


def test_a_failed_response_is_an_answer_but_a_bare_error_object_is_not() -> None:
    failed = {"object": "response", "status": "failed", "error": {"code": "server_error", "message": "boom"}}
    assert RESPONSES.answer_error(failed) is None
    assert RESPONSES.answer_error({"error": {"message": "boom"}}) == "boom"


def test_a_fixed_answer_is_a_completed_response_the_sdk_reads() -> None:
    answer = RESPONSES.fixed_answer("m", "I am an assistant.", "llmproxy-1", 1_700_000_000)
    assert RESPONSES.is_complete(answer)
    assert openai.types.responses.Response.model_validate(answer).output_text == "I am an assistant."
    assert sdk_final(replayed(answer)).output_text == "I am an assistant."


def test_a_refusal_and_the_proxys_errors_are_in_openais_shape() -> None:
    assert RESPONSES.refusal(403, "not here", "blocked_by_route") == {
        "error": {"message": "not here", "type": "invalid_request_error", "param": None, "code": "blocked_by_route"}
    }
    (event,) = events_of(RESPONSES.stream_error(UpstreamError("gone")))
    data = orjson.loads(event.data or "")
    assert (event.event, data["type"], data["code"]) == ("error", "error", "upstream_unreachable")
    assert data["error"]["message"] == "gone"  # the SDKs raise an event holding an error object


def test_usage_is_read_in_input_and_output_tokens() -> None:
    assert RESPONSES.usage(STORED) == TokenUsage(prompt_tokens=12, completion_tokens=30)
    assert RESPONSES.usage({"usage": None}) is None
    assert RESPONSES.usage({"usage": {"input_tokens": "12"}}) is None


def test_the_upstream_body_changes_only_for_a_routes_model() -> None:
    parsed = parse({**BASE, "stream": True})
    assert RESPONSES.upstream_body(parsed, model=None, want_usage=True) is None
    assert orjson.loads(RESPONSES.upstream_body(parsed, model="cheap", want_usage=True) or b"") == {
        **BASE, "stream": True, "model": "cheap"
    }  # fmt: skip
