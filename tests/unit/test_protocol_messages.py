"""Anthropic Messages and count_tokens as protocols: the key, the L2 view, the stream's assembly and replay, what is
stored, and the errors in Anthropic's shape (pure)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmproxy.cache.keys import request_key, semantic_key
from llmproxy.errors import (
    InvalidRequestError,
    ProxyError,
    RateLimitError,
    RequestTimeoutError,
    RequestTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest
from llmproxy.protocols.chat import CHAT
from llmproxy.protocols.count_tokens import COUNT_TOKENS
from llmproxy.protocols.messages import MESSAGES
from llmproxy.protocols.registry import passthrough_protocol
from llmproxy.streaming import SseDecoder
from llmproxy.streaming.sse import SseEvent, encode_event
from llmproxy.trace import TokenUsage

BODY: JsonObject = {"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": "What is Redis?"}]}
STREAMED = ParsedRequest(body={**BODY, "stream": True}, model="claude", stream=True)
MESSAGE: JsonObject = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude",
    "content": [
        {"type": "thinking", "thinking": "The user asks about Redis, a data store.", "signature": "c2ln"},
        {"type": "text", "text": "Redis is an in-memory data store, used as a cache and a database."},
        {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"query": "redis", "limit": 3}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "cache_read_input_tokens": 4, "output_tokens": 30},
}


def parse(body: JsonObject, headers: list[tuple[str, str]] | None = None) -> ParsedRequest:
    return MESSAGES.parse(orjson.dumps(body), headers or [])


def key(body: JsonObject, headers: list[tuple[str, str]] | None = None) -> str:
    parsed = parse(body, headers)
    return request_key(MESSAGES, "tenant", parsed.body, parsed.key_headers)


def events(raw: bytes) -> list[SseEvent]:
    return SseDecoder().feed(raw)


def assembled(stream: list[SseEvent]) -> JsonObject | None:
    assembler = MESSAGES.assembler(STREAMED, want_usage=True)
    assert all(assembler.add(event) for event in stream)  # every event goes to the client
    assert assembler.ended
    return assembler.result()


# --- the key ---


def test_delivery_fields_are_left_out_of_the_key_and_unknown_fields_kept() -> None:
    assert key({**BODY, "stream": True, "metadata": {"user_id": "u1"}, "service_tier": "auto"}) == key(BODY)
    assert key({**BODY, "brand_new_option": 1}) != key(BODY)
    for field, value in [("temperature", 0.5), ("top_p", 0.9), ("top_k", 5), ("stop_sequences", ["END"]),
                         ("system", "be brief"), ("tools", [{"name": "t", "input_schema": {}}]),
                         ("tool_choice", {"type": "any"}), ("thinking", {"type": "enabled", "budget_tokens": 1024}),
                         ("max_tokens", 99), ("model", "other")]:  # fmt: skip
        assert key({**BODY, field: value}) != key(BODY), field


def test_cache_control_markers_are_left_out_of_the_key_wherever_they_may_be() -> None:
    tool = {"name": "t", "input_schema": {"type": "object"}}
    tool_result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "42"}]}
    plain = {
        **BODY,
        "system": [{"type": "text", "text": "be brief"}],
        "tools": [tool],
        "messages": [{"role": "user", "content": [tool_result, {"type": "text", "text": "and?"}]}],
    }
    ephemeral = {"type": "ephemeral", "ttl": "1h"}
    marked = {
        **plain,
        "cache_control": ephemeral,
        "system": [{"type": "text", "text": "be brief", "cache_control": ephemeral}],
        "tools": [{**tool, "cache_control": ephemeral}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {**tool_result, "content": [{"type": "text", "text": "42", "cache_control": ephemeral}]},
                    {"type": "text", "text": "and?", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
    }
    assert key(marked) == key(plain)
    assert MESSAGES.key_fields(marked) == MESSAGES.key_fields(plain)


def test_a_schema_property_named_cache_control_is_part_of_the_key() -> None:
    def with_property(name: str) -> JsonObject:
        schema = {"type": "object", "properties": {name: {"type": "string"}}}
        return {**BODY, "tools": [{"name": "t", "input_schema": schema}]}

    assert key(with_property("cache_control")) != key(with_property("other"))


def test_anthropic_version_and_beta_headers_are_in_the_key() -> None:
    version = [("Anthropic-Version", "2023-06-01")]
    assert parse(BODY, [*version, ("x-api-key", "secret"), ("anthropic-beta", "b1")]).key_headers == (
        ("anthropic-beta", "b1"),
        ("anthropic-version", "2023-06-01"),
    )
    assert key(BODY, version) != key(BODY, [("anthropic-version", "2024-01-01")])
    assert key(BODY, version) != key(BODY, [*version, ("anthropic-beta", "b1")])
    assert key(BODY, version) == key(BODY, [*version, ("x-api-key", "another key")])  # credentials: the scope's


def test_messages_and_count_tokens_never_share_a_key() -> None:
    body = {key: value for key, value in BODY.items() if key != "max_tokens"}
    assert request_key(MESSAGES, "t", body) != request_key(COUNT_TOKENS, "t", body)


# --- validation ---


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "claude", "messages": BODY["messages"]}, "max_tokens"),
        ({**BODY, "max_tokens": "100"}, "max_tokens"),
        ({**BODY, "max_tokens": 0}, "max_tokens"),
        ({**BODY, "messages": []}, "messages"),
        ({**BODY, "messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({**BODY, "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "messages.0.content"),
        ({**BODY, "temperature": 1.5}, "temperature"),
        ({**BODY, "stream": "yes"}, "stream"),
        ({**BODY, "stop_sequences": "END"}, "stop_sequences"),
        ({**BODY, "model": ""}, "model"),
    ],
)
def test_invalid_requests_are_400s_naming_the_parameter(body: JsonObject, param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse(body)
    assert raised.value.param is not None and raised.value.param.startswith(param)


def test_a_valid_request_keeps_its_body_model_and_stream_flag() -> None:
    parsed = parse({**BODY, "stream": True, "anything": [1]})
    assert (parsed.model, parsed.stream, parsed.body["anything"]) == ("claude", True, [1])
    assert not parse(BODY).stream


# --- errors in Anthropic's shape ---


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidRequestError("bad"), 400, "invalid_request_error"),
        (RequestTimeoutError("slow"), 408, "invalid_request_error"),
        (RequestTooLargeError("big"), 413, "request_too_large"),
        (RateLimitError("many"), 429, "rate_limit_error"),
        (ProxyError("oops"), 500, "api_error"),
        (UpstreamError("gone"), 502, "api_error"),
        (UpstreamUnavailableError("open", retry_after_s=3), 503, "api_error"),
        (UpstreamTimeoutError("late"), 504, "timeout_error"),
    ],
)
def test_the_proxys_errors_are_in_anthropics_shape(error: ProxyError, status: int, kind: str) -> None:
    for protocol in (MESSAGES, COUNT_TOKENS):
        assert protocol.error_status(error) == status
        assert protocol.error_body(error) == {"type": "error", "error": {"type": kind, "message": error.message}}


def test_a_stream_error_is_an_anthropic_error_event() -> None:
    (event,) = events(MESSAGES.stream_error(UpstreamError("gone")))
    assert event.event == "error"
    assert orjson.loads(event.data or "") == {"type": "error", "error": {"type": "api_error", "message": "gone"}}


def test_a_route_refusal_is_an_anthropic_error_of_its_status() -> None:
    assert MESSAGES.refusal(403, "not here", "blocked_by_route") == {
        "type": "error",
        "error": {"type": "permission_error", "message": "not here"},
    }


def test_an_error_object_in_a_200_is_an_error() -> None:
    assert MESSAGES.answer_error(MESSAGE) is None
    assert MESSAGES.answer_error({"type": "error", "error": {"type": "api_error", "message": "boom"}}) == "boom"
    assert COUNT_TOKENS.answer_error({"type": "error", "error": {}}) == "(no message)"


def test_uncached_requests_with_anthropic_version_take_anthropics_upstream_and_shape() -> None:
    assert passthrough_protocol([("Anthropic-Version", "2023-06-01")]).upstream_family == "anthropic"
    assert passthrough_protocol([("authorization", "Bearer k")]) is CHAT


# --- the L2 view ---


def test_the_latest_user_text_is_embedded_and_the_rest_is_context() -> None:
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    blocks = [{"type": "text", "text": "What is"}, {"type": "text", "text": "Redis?", "cache_control": {"type": "x"}}]
    body = {**BODY, "system": "be brief", "messages": [*history, {"role": "user", "content": blocks}]}
    view = MESSAGES.semantic_view(body)
    assert view is not None
    assert view.prompt == "What is\nRedis?"
    assert view.context == {"system": "be brief", "turns": [*history, {"role": "user"}]}
    assert view.params == {"max_tokens": 100}


def test_system_prompt_and_history_partition_the_l2_cache() -> None:
    base = semantic_key(MESSAGES, BODY)
    assert base is not None
    other_system = semantic_key(MESSAGES, {**BODY, "system": "answer like a pirate"})
    assert other_system is not None and other_system.context_hash != base.context_hash
    other_params = semantic_key(MESSAGES, {**BODY, "temperature": 0})
    assert other_params is not None and other_params.params_hash != base.params_hash
    versioned = semantic_key(MESSAGES, BODY, [("anthropic-version", "2023-06-01")])
    assert versioned is not None and versioned.params_hash != base.params_hash


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}],
        [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, {"type": "text", "text": "What?"}],
        [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}],
        [{"type": "text", "text": "cited", "citations": [{"type": "char_location"}]}],
        [],
    ],
    ids=["tool-result", "image", "document", "citations", "empty"],
)  # fmt: skip
def test_turns_whose_meaning_is_not_their_text_are_exact_only(content: list[Any]) -> None:
    assert MESSAGES.semantic_view({**BODY, "messages": [{"role": "user", "content": content}]}) is None


def test_a_conversation_ending_in_an_assistant_turn_is_exact_only() -> None:
    prefill = [*BODY["messages"], {"role": "assistant", "content": "Redis is"}]
    assert MESSAGES.semantic_view({**BODY, "messages": prefill}) is None


def test_count_tokens_is_exact_only_and_never_streamed() -> None:
    parsed = COUNT_TOKENS.parse(orjson.dumps({"model": "claude", "messages": BODY["messages"], "stream": True}), [])
    assert parsed.stream is False
    assert COUNT_TOKENS.semantic_view(parsed.body) is None
    assert COUNT_TOKENS.is_complete({"input_tokens": 14})
    assert not COUNT_TOKENS.is_complete({"input_tokens": "14"})
    assert COUNT_TOKENS.usage({"input_tokens": 14}) is None
    with pytest.raises(InvalidRequestError):
        COUNT_TOKENS.parse(orjson.dumps({"model": "claude"}), [])


def test_the_prompt_shown_is_the_latest_user_message() -> None:
    content = [{"type": "image", "source": {}}, {"type": "text", "text": "What is this?"}]
    turns = [*BODY["messages"], {"role": "assistant", "content": "A"}, {"role": "user", "content": content}]
    body = {**BODY, "messages": turns}
    assert MESSAGES.display_prompt(body, 100) == "[image]\nWhat is this?"
    assert MESSAGES.display_prompt({"system": "only a system prompt"}, 100) == "only a system prompt"
    assert COUNT_TOKENS.display_prompt(BODY, 7) == "What i…"


# --- what is stored ---


@pytest.mark.parametrize(
    ("stop_reason", "stored"),
    [("end_turn", True), ("stop_sequence", True), ("tool_use", True), ("max_tokens", True),
     ("pause_turn", False), ("refusal", False), ("model_context_window_exceeded", False), (None, False)],
)  # fmt: skip
def test_only_finished_answers_are_stored(stop_reason: str | None, stored: bool) -> None:
    assert MESSAGES.is_complete({**MESSAGE, "stop_reason": stop_reason}) is stored


def test_errors_and_odd_bodies_are_never_stored() -> None:
    assert not MESSAGES.is_complete({"type": "error", "error": {"type": "overloaded_error", "message": "x"}})
    assert not MESSAGES.is_complete({**MESSAGE, "content": None})
    assert not MESSAGES.is_complete({**MESSAGE, "type": "completion"})


def test_usage_counts_every_input_token() -> None:
    assert MESSAGES.usage(MESSAGE) == TokenUsage(prompt_tokens=16, completion_tokens=30)
    assert MESSAGES.usage({"usage": {"input_tokens": "12"}}) is None
    assert MESSAGES.usage({}) is None


# --- streams ---


def event(kind: str, **fields: Any) -> bytes:
    return encode_event({"type": kind, **fields}, event=kind)


OPENING_USAGE = {"input_tokens": 12, "cache_read_input_tokens": 4, "output_tokens": 1}
# As the API streams a thinking block, a text block and a tool call (docs.anthropic.com, "Streaming Messages").
RECORDED = b"".join(
    [
        event("message_start", message={**MESSAGE, "content": [], "stop_reason": None, "usage": OPENING_USAGE}),
        event("content_block_start", index=0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
        event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "The user asks about "}),
        event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Redis, a data store."}),
        event("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "c2ln"}),
        event("content_block_stop", index=0),
        event("ping"),
        event("content_block_start", index=1, content_block={"type": "text", "text": ""}),
        event("content_block_delta", index=1, delta={"type": "text_delta", "text": "Redis is an in-memory "}),
        event("content_block_delta", index=1, delta={"type": "text_delta", "text": "data store, "}),
        event("content_block_delta", index=1, delta={"type": "text_delta", "text": "used as a cache and a database."}),
        event("content_block_stop", index=1),
        event("content_block_start", index=2,
              content_block={"type": "tool_use", "id": "toolu_1", "name": "search", "input": {}}),
        event("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": ""}),
        event("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": '{"query": "re'}),
        event("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": 'dis", "limit": 3}'}),
        event("content_block_stop", index=2),
        event("message_delta", delta={"stop_reason": "tool_use", "stop_sequence": None}, usage={"output_tokens": 30}),
        event("message_stop"),
    ]
)  # fmt: skip


def test_a_recorded_stream_assembles_into_the_message() -> None:
    assert assembled(events(RECORDED)) == MESSAGE


def test_a_stored_message_replays_as_a_stream_that_assembles_back_into_it() -> None:
    replayed = events(MESSAGES.replay(MESSAGE, STREAMED))
    kinds = [orjson.loads(item.data or "")["type"] for item in replayed]
    assert [item.event for item in replayed] == kinds  # typed events: `event:` names the data's type
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    text_deltas = [item for item in replayed if b'"text_delta"' in item.raw]
    assert len(text_deltas) > 1  # several deltas, as a real stream sends
    assert assembled(replayed) == MESSAGE


def test_a_fixed_answer_replays_and_assembles_into_itself() -> None:
    answer = MESSAGES.fixed_answer("claude", "A fixed answer of several words.", "llmproxy-1", 1_700_000_000)
    assert MESSAGES.is_complete(answer)
    assert assembled(events(MESSAGES.replay(answer, STREAMED))) == answer


def test_a_stream_with_an_error_event_is_relayed_but_never_stored() -> None:
    broken = RECORDED.split(b"event: message_delta")[0]
    error = event("error", error={"type": "overloaded_error", "message": "Overloaded"})
    assembler = MESSAGES.assembler(STREAMED, want_usage=False)
    assert all(assembler.add(item) for item in events(broken + error))
    assert (assembler.failed, assembler.ended, assembler.result()) == (True, False, None)


def test_a_stream_cut_before_message_stop_is_not_stored() -> None:
    assembler = MESSAGES.assembler(STREAMED, want_usage=False)
    for item in events(RECORDED.split(b"event: message_stop")[0]):
        assembler.add(item)
    assert (assembler.ended, assembler.result()) == (False, None)


@pytest.mark.parametrize(
    "odd",
    [
        RECORDED.replace(b'"index":1', b'"index":"one"'),
        RECORDED.replace(b'event: ping\ndata: {"type":"ping"}', b"event: ping\ndata: [1]"),
        RECORDED.replace(b'dis\\", \\"limit\\": 3}', b"dis"),
        RECORDED[RECORDED.index(b"event: content_block_start") :],
    ],
    ids=["index-not-int", "data-not-object", "tool-input-not-json", "no-message-start"],
)
def test_events_of_the_wrong_shape_are_relayed_but_not_stored(odd: bytes) -> None:
    assert odd != RECORDED
    assembler = MESSAGES.assembler(STREAMED, want_usage=False)
    assert all(assembler.add(item) for item in events(odd))
    assert assembler.ended and not assembler.failed
    assert assembler.result() is None


def test_unknown_events_and_deltas_are_relayed_and_ignored() -> None:
    extra = event("content_block_delta", index=0, delta={"type": "future_delta", "x": 1}) + event("future_event")
    stream = RECORDED.replace(b"event: content_block_stop", extra + b"event: content_block_stop", 1)
    assert assembled(events(stream)) == MESSAGE
