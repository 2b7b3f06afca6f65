"""Chat completions as a protocol: validation and its 400s, the L2 view, the prompt shown, fixed answers, replay
in several deltas (pure)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmproxy.cache.keys import semantic_key
from llmproxy.errors import InvalidRequestError
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest
from llmproxy.protocols.chat import CHAT
from llmproxy.protocols.openai import include_usage
from llmproxy.streaming import SseDecoder

LIMIT = 2_000


def parse(body: JsonObject) -> ParsedRequest:
    return CHAT.parse(orjson.dumps(body), [])


# --- Validation -----------------------------------------------------------------------------------


def test_chat_request_facts() -> None:
    parsed = parse(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert (parsed.model, parsed.stream, include_usage(parsed)) == ("m", True, True)
    assert parsed.body["messages"][0]["content"] == "hi"
    assert parsed.key_headers == ()


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
        parse(body)
    assert (raised.value.param, raised.value.instance_code) == (param, code)


@pytest.mark.parametrize("raw", [b"", b"{", b"null", b'"text"', b"[]"])
def test_non_object_bodies_are_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        CHAT.parse(raw, [])
    assert raised.value.instance_code == "invalid_json"


@pytest.mark.parametrize("part", [{"type": "text"}, {"type": "text", "text": 5}, {"type": "text", "text": None}])
def test_text_part_needs_a_text_string(part: JsonObject) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "ok"}, part]}]})
    assert raised.value.param == "messages.0.content" and "part 1" in raised.value.message


def test_other_content_parts_are_left_to_the_upstream() -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}, {"type": "input_audio"}]
    assert (
        parse({"model": "m", "messages": [{"role": "user", "content": content}]}).body["messages"][0]["content"]
        == content
    )


# --- The L2 view ----------------------------------------------------------------------------------


def chat(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages), **params}


USER = {"role": "user", "content": "What is the capital of France?"}


def test_semantic_key_embeds_the_latest_user_turn_only() -> None:
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    key_ = semantic_key(CHAT, chat(*earlier, USER))
    assert key_ is not None and key_.prompt == USER["content"]


def test_context_covers_system_prompt_and_earlier_turns() -> None:
    plain = semantic_key(CHAT, chat(USER))
    with_system = semantic_key(CHAT, chat({"role": "system", "content": "Answer in French."}, USER))
    with_turns = semantic_key(CHAT, chat({"role": "user", "content": "Hi"}, USER))
    assert plain and with_system and with_turns
    assert len({plain.context_hash, with_system.context_hash, with_turns.context_hash}) == 3
    assert plain.params_hash == with_system.params_hash


def test_params_cover_answer_changing_fields_but_not_model_or_delivery() -> None:
    base = semantic_key(CHAT, chat(USER, temperature=0.2))
    assert base is not None
    assert semantic_key(CHAT, {**chat(USER, temperature=0.2), "model": "other"}) == base
    assert semantic_key(CHAT, chat(USER, temperature=0.2, stream=True, user="u")) == base
    tools = semantic_key(CHAT, chat(USER, temperature=0.2, tools=[{"type": "function"}]))
    assert tools is not None and tools.params_hash != base.params_hash


@pytest.mark.parametrize(
    "body",
    [
        chat({"role": "user", "content": "Weather?"}, {"role": "assistant", "content": None, "tool_calls": []}),
        chat(USER, {"role": "tool", "tool_call_id": "1", "content": "sunny"}),
        chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]}),
        chat({"role": "user", "content": "   "}),
    ],
    ids=["assistant-last", "tool-last", "image", "blank"],
)
def test_chats_whose_meaning_is_not_plain_text_are_exact_only(body: dict[str, Any]) -> None:
    assert semantic_key(CHAT, body) is None


def test_text_parts_are_joined() -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]}
    joined = semantic_key(CHAT, chat(parts))
    assert joined is not None and joined.prompt == "Hello\nthere"


def test_the_view_keeps_the_final_turns_other_fields_in_the_context() -> None:
    view = CHAT.semantic_view(chat({"role": "user", "content": "hi", "name": "alice"}, temperature=1))
    assert view is not None
    assert (view.prompt, view.params, view.context) == ("hi", {"temperature": 1}, [{"role": "user", "name": "alice"}])


# --- The prompt shown -----------------------------------------------------------------------------


def test_display_prompt_of_a_chat_is_the_latest_user_turn() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "what is in"}, {"type": "image_url", "image_url": {}}]},
        {"role": "tool", "content": "result"},
    ]
    assert CHAT.display_prompt({"messages": messages}, LIMIT) == "what is in\n[image_url]"
    assert CHAT.display_prompt({"messages": [{"role": "system", "content": "only a system prompt"}]}, LIMIT) == (
        "only a system prompt"
    )
    assert CHAT.display_prompt({"messages": "not a list"}, LIMIT) == ""


# --- Answers ----------------------------------------------------------------------------------------


def test_a_fixed_answer_is_a_complete_chat_completion() -> None:
    answer = CHAT.fixed_answer("m", "Closed on Sundays.", "llmproxy-1", 1_700_000_000)

    assert CHAT.is_complete(answer)
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"] == "Closed on Sundays."
    assert CHAT.usage(answer) is not None


def test_a_replayed_answer_carries_its_text_in_several_deltas() -> None:
    text = "The capital of France is Paris, on the Seine."
    answer = CHAT.fixed_answer("m", text, "llmproxy-1", 1)
    request = parse({"model": "m", "messages": [USER], "stream": True})

    events = SseDecoder().feed(CHAT.replay(answer, request))

    chunks = [orjson.loads(event.data or "") for event in events[:-1]]
    contents = [chunk["choices"][0]["delta"].get("content") for chunk in chunks]
    pieces = [content for content in contents if content]
    assert len(pieces) > 1 and "".join(pieces) == text
    assert events[-1].is_done
