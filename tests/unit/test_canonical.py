"""The L1 key: what changes it and what does not."""

from __future__ import annotations

from typing import Any

import pytest

from llmproxy.canonical import canonical_body, request_key

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
