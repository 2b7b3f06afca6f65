"""The L1 key: what changes it and what does not (the OpenAI key fields, numbers, scope, protocol, key headers)."""

from __future__ import annotations

from typing import Any

import pytest

from llmproxy.cache.keys import canonical, request_key, semantic_key
from llmproxy.protocols.chat import CHAT
from llmproxy.protocols.completions import COMPLETIONS

BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}


def key(body: dict[str, Any], scope: str = "tenant") -> str:
    return request_key(CHAT, scope, body)


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
    assert request_key(COMPLETIONS, "tenant", BODY) != key(BODY)


def test_canonical_body_keeps_nested_non_integral_floats() -> None:
    assert canonical(CHAT.key_fields({"logit_bias": {"1": 2.5, "2": 3.0}})) == {"logit_bias": {"1": 2.5, "2": 3}}


@pytest.mark.parametrize("number", [1e20, -1e19, 2.0**64, 1.2345678901234568e29])
def test_integral_floats_beyond_64_bits_stay_floats_in_the_key(number: float) -> None:
    body = {"model": "m", "tools": [{"parameters": {"maximum": number}}]}
    assert canonical(CHAT.key_fields(body))["tools"][0]["parameters"]["maximum"] == number
    assert len(request_key(CHAT, "scope", body)) == 64


def test_integral_floats_within_64_bits_key_like_their_integers() -> None:
    as_float = {"model": "m", "seed": float(2**63)}
    assert request_key(CHAT, "s", as_float) == request_key(CHAT, "s", {"model": "m", "seed": 2**63})


def test_key_headers_change_the_key_and_the_partition() -> None:
    version = [("anthropic-version", "2023-06-01")]
    assert request_key(CHAT, "s", BODY, version) != key(BODY, "s")
    assert request_key(CHAT, "s", BODY, version) != request_key(CHAT, "s", BODY, [("anthropic-version", "2024")])
    plain, versioned = semantic_key(CHAT, BODY), semantic_key(CHAT, BODY, version)
    assert plain is not None and versioned is not None
    assert plain.params_hash != versioned.params_hash and plain.context_hash == versioned.context_hash


def test_keys_without_key_headers_are_those_of_earlier_releases() -> None:
    # An upgrade keeps the cache: these digests are what the release before the protocol seam computed.
    assert key(BODY, "tenant") == "ff8e98a9905d722eed80383178b11acadd028fb436bfcc7f65a6bcefd08b7393"
    chat_view = semantic_key(CHAT, BODY)
    assert chat_view is not None
    assert (chat_view.params_hash, chat_view.context_hash) == (
        "ef6fd868675eeb00944f6c7e6a9b6ddc",
        "597125caa8073a4dd534c8b2388a6113",
    )
    completion_view = semantic_key(COMPLETIONS, {"model": "m", "prompt": "Once upon a time", "temperature": 1.0})
    assert completion_view is not None
    assert (completion_view.params_hash, completion_view.context_hash) == (
        "54c01160639bb997dd59b27815e2350d",
        "4f53cda18c2baa0c0354bb5f9a3ecbe5",
    )
