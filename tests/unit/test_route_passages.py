"""How long prompts are cut for routing, and how the decisions of their passages combine (pure, no model)."""

from __future__ import annotations

import re

import pytest

from llmproxy.routing import DEFAULT_ROUTE, BlockAction, CachePolicy, ForwardAction, RespondAction, RouteDecision
from llmproxy.routing.passages import Span, cut_passages, sentence_bounds
from llmproxy.routing.router import strictest


def word_spans(text: str) -> list[Span]:
    """A stand-in tokenizer: one token per word or punctuation mark."""
    return [match.span() for match in re.finditer(r"\w+|[^\w\s]", text)]


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_bounds(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi there. How are you?", ["Hi there.", " How are you?"]),
        ("Is it?Yes!No", ["Is it?", "Yes!", "No"]),  # ? and ! end a sentence even glued to the next word
        ("Pi is 3.14 and example.com is a site", ["Pi is 3.14 and example.com is a site"]),
        ("line one\nline two", ["line one\n", "line two"]),
        ("Wait... what; really", ["Wait...", " what;", " really"]),
    ],
)
def test_sentences_end_at_terminators_and_line_breaks(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_leading_window_is_the_first_limit_tokens() -> None:
    text = "one two three four five six seven eight"
    assert cut_passages(text, word_spans(text), limit=3).leading == "one two three"


def test_each_distinct_sentence_is_a_passage_once() -> None:
    text = "Filler words here. " * 20 + "How do I build a bomb?"
    passages = cut_passages(text, word_spans(text), limit=10)
    assert passages.others == ("Filler words here.", "How do I build a bomb?")


def test_sentence_longer_than_a_window_is_cut_into_consecutive_windows() -> None:
    text = "a b c d e f g h i j"
    passages = cut_passages(text, word_spans(text), limit=4)
    assert passages.leading == "a b c d"
    assert passages.others == ("e f g h", "i j")  # "a b c d" is the leading window already


def test_every_token_of_the_prompt_is_in_some_passage() -> None:
    text = "Alpha beta gamma. " * 5 + "delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron. The end"
    passages = cut_passages(text, word_spans(text), limit=5)
    covered = " ".join([passages.leading, *passages.others])
    assert set(re.findall(r"\w+", text)) <= set(re.findall(r"\w+", covered))


def decision(name: str, action: object = None, no_cache: bool = False, distance: float = 0.2) -> RouteDecision:
    chosen = action if action is not None else ForwardAction(None, None)
    assert isinstance(chosen, ForwardAction | RespondAction | BlockAction)
    return RouteDecision(name, chosen, CachePolicy(no_cache=no_cache), distance)


CHEAP = ForwardAction("cheap", "small-model")
BLOCK = BlockAction(403, "no")


def test_a_block_route_anywhere_wins_the_nearest_one() -> None:
    far, near = decision("far", BLOCK, distance=0.3), decision("near", BLOCK, distance=0.1)
    assert strictest(decision("small-talk", CHEAP), [DEFAULT_ROUTE, far, near]) == near


def test_no_cache_past_the_leading_window_keeps_the_leading_forward_target() -> None:
    combined = strictest(decision("small-talk", CHEAP), [decision("time-sensitive", no_cache=True, distance=0.25)])
    assert combined == RouteDecision("time-sensitive", CHEAP, CachePolicy(no_cache=True), 0.25)


def test_fixed_answer_and_forward_routes_count_only_on_the_leading_window() -> None:
    assert strictest(DEFAULT_ROUTE, [decision("identity", RespondAction("hi")), decision("small-talk", CHEAP)]) == (
        DEFAULT_ROUTE
    )
    identity = decision("identity", RespondAction("hi"))
    assert strictest(identity, [decision("time-sensitive", no_cache=True)]) == identity  # never cached anyway
