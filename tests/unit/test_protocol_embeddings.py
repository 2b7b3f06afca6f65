"""Embeddings as a protocol: never streamed, exact-match only, the input shown (pure)."""

from __future__ import annotations

import orjson
import pytest

from llmproxy.cache.keys import semantic_key
from llmproxy.protocols.embeddings import EMBEDDINGS
from llmproxy.protocols.openai import include_usage


def test_unknown_fields_are_kept_for_the_upstream() -> None:
    raw = orjson.dumps({"model": "m", "input": "x", "brand_new_option": {"a": 1}})
    assert EMBEDDINGS.parse(raw, []).body["brand_new_option"] == {"a": 1}


@pytest.mark.parametrize("options", [1.5, True, "yes", [1], {"include_usage": True}])
def test_embeddings_are_never_streamed_whatever_stream_fields_they_carry(options: object) -> None:
    # Embeddings have no stream parameter: such fields are unknown ones, forwarded for the upstream to judge.
    raw = orjson.dumps({"model": "m", "input": "x", "stream": True, "stream_options": options})
    parsed = EMBEDDINGS.parse(raw, [])
    assert (parsed.stream, include_usage(parsed)) == (False, False)
    assert parsed.body["stream_options"] == options


def test_embeddings_are_exact_match_only() -> None:
    assert semantic_key(EMBEDDINGS, {"model": "m", "input": "x"}) is None


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ({"input": "some text"}, "some text"),
        ({"input": ["a", "b"]}, "a\nb"),
        ({"input": [[1, 2, 3]]}, "[[1,2,3]]"),
        ({}, ""),
    ],
)
def test_display_prompt_of_embeddings(body: dict[str, object], shown: str) -> None:
    assert EMBEDDINGS.display_prompt(body, 2_000) == shown


def test_display_prompt_is_cut_to_the_limit() -> None:
    shown = EMBEDDINGS.display_prompt({"input": ["x" * 30] * 10_000}, 100)
    assert len(shown) == 100 and shown.endswith("…")
