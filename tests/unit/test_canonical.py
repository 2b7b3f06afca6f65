"""The L1 key: what changes it and what does not."""

from __future__ import annotations

from typing import Any

import pytest

from llmproxy.cache.keys import canonical_body, request_key, semantic_key

BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}


def key(body: dict[str, Any], scope: str = "tenant") -> str:
    return request_key("chat", scope, body)


@pytest.mark.parametrize(
    "extra",
    [
        {"stream": True},
        {"stream_options": {"include_usage": True}},
        {"user": "alice"},
        {"metadata": {"trace": "1"}},
        {"store": True},
        {"service_tier": "flex"},
    ],
)
def test_delivery_and_attribution_fields_do_not_change_the_key(extra: dict[str, Any]) -> None:
    assert key({**BODY, **extra}) == key(BODY)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.6},
        {"top_p": 0.9},
        {"max_tokens": 10},
        {"seed": 1},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"response_format": {"type": "json_object"}},
        {"n": 2},
        {"some_future_parameter": True},
        {"model": "other"},
        {"messages": [{"role": "user", "content": "hi!"}]},
    ],
)
def test_answer_changing_fields_change_the_key(change: dict[str, Any]) -> None:
    assert key({**BODY, **change}) != key(BODY)


def test_key_ignores_field_order_and_integral_float_spelling() -> None:
    reordered = {"temperature": 1.0, "messages": BODY["messages"], "model": "m"}
    assert key(reordered) == key({**BODY, "temperature": 1})


def test_scope_and_endpoint_are_part_of_the_key() -> None:
    assert key(BODY, "a") != key(BODY, "b")
    assert request_key("completion", "tenant", BODY) != key(BODY)


def test_canonical_body_keeps_nested_non_integral_floats() -> None:
    assert canonical_body({"logit_bias": {"1": 2.5, "2": 3.0}}) == {"logit_bias": {"1": 2.5, "2": 3}}


def chat(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages), **params}


USER = {"role": "user", "content": "What is the capital of France?"}


def test_semantic_key_embeds_the_latest_user_turn_only() -> None:
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    key_ = semantic_key("chat", chat(*earlier, USER))
    assert key_ is not None and key_.prompt == USER["content"]


def test_context_covers_system_prompt_and_earlier_turns() -> None:
    plain = semantic_key("chat", chat(USER))
    with_system = semantic_key("chat", chat({"role": "system", "content": "Answer in French."}, USER))
    with_turns = semantic_key("chat", chat({"role": "user", "content": "Hi"}, USER))
    assert plain and with_system and with_turns
    assert len({plain.context_hash, with_system.context_hash, with_turns.context_hash}) == 3
    assert plain.params_hash == with_system.params_hash


def test_params_cover_answer_changing_fields_but_not_model_or_delivery() -> None:
    base = semantic_key("chat", chat(USER, temperature=0.2))
    assert base is not None
    assert semantic_key("chat", {**chat(USER, temperature=0.2), "model": "other"}) == base
    assert semantic_key("chat", chat(USER, temperature=0.2, stream=True, user="u")) == base
    tools = semantic_key("chat", chat(USER, temperature=0.2, tools=[{"type": "function"}]))
    assert tools is not None and tools.params_hash != base.params_hash


@pytest.mark.parametrize(
    "body",
    [
        chat({"role": "user", "content": "Weather?"}, {"role": "assistant", "content": None, "tool_calls": []}),
        chat(USER, {"role": "tool", "tool_call_id": "1", "content": "sunny"}),
        chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]}),
        chat({"role": "user", "content": "   "}),
        {"model": "m", "prompt": ["a", "b"]},
    ],
    ids=["assistant-last", "tool-last", "image", "blank", "batched-prompts"],
)
def test_requests_whose_meaning_is_not_plain_text_are_exact_only(body: dict[str, Any]) -> None:
    kind = "completion" if "prompt" in body else "chat"
    assert semantic_key(kind, body) is None


def test_text_parts_are_joined_and_completion_prompts_are_embedded() -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]}
    joined = semantic_key("chat", chat(parts))
    assert joined is not None and joined.prompt == "Hello\nthere"
    completion = semantic_key("completion", {"model": "m", "prompt": "Once upon a time"})
    assert completion is not None and completion.prompt == "Once upon a time"
    assert semantic_key("embedding", {"model": "m", "input": "x"}) is None


@pytest.mark.parametrize("number", [1e20, -1e19, 2.0**64, 1.2345678901234568e29])
def test_integral_floats_beyond_64_bits_stay_floats_in_the_key(number: float) -> None:
    body = {"model": "m", "tools": [{"parameters": {"maximum": number}}]}
    assert canonical_body(body)["tools"][0]["parameters"]["maximum"] == number
    assert len(request_key("chat", "scope", body)) == 64


def test_integral_floats_within_64_bits_key_like_their_integers() -> None:
    as_float = {"model": "m", "seed": float(2**63)}
    assert request_key("chat", "s", as_float) == request_key("chat", "s", {"model": "m", "seed": 2**63})
