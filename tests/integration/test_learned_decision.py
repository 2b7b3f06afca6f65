"""The learned L2 decision through the proxy: real model, real Redis Stack, official SDK."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from openai import OpenAI

from tests.support.clients import openai_sdk
from tests.support.upstream import FakeUpstream

# Stored first, then asked: a paraphrase both decisions serve, a negation the learned vetoes refuse, and a
# question-focus change the rules serve.
PARAPHRASE = ("What causes airline delays?", "What are the top causes of flight delays?")
FOCUS_CHANGE = ("When will game of thrones end?", "How will Game of Thrones end?")
NEGATION = ("Is coffee bad for you?", "Is coffee not bad for you?")


def ask(client: OpenAI, text: str) -> str:
    messages: list[Any] = [{"role": "user", "content": text}]
    raw = client.chat.completions.with_raw_response.create(model="fake-model", messages=messages)
    return str(raw.headers["x-cache"])


def replay(url: str, api_key: str, pair: tuple[str, str], fake: FakeUpstream) -> tuple[str, str]:
    with openai_sdk(url, api_key, fake) as client:
        return ask(client, pair[0]), ask(client, pair[1])


def test_learned_proxy_serves_a_paraphrase_and_refuses_a_negation(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream, key_prefix: str
) -> None:
    with start_proxy(semantic={"decision": "learned"}, redis={"key_prefix": key_prefix}) as url:
        assert replay(url, api_key, PARAPHRASE, upstream) == ("MISS", "HIT-L2")
        assert replay(url, api_key, NEGATION, upstream) == ("MISS", "MISS")
    assert upstream.calls() == 3


def test_rules_proxy_serves_the_focus_change(
    start_proxy: Callable[..., AbstractContextManager[str]], api_key: str, upstream: FakeUpstream, key_prefix: str
) -> None:
    with start_proxy(semantic={"decision": "rules"}, redis={"key_prefix": key_prefix}) as url:
        assert replay(url, api_key, FOCUS_CHANGE, upstream) == ("MISS", "HIT-L2")
    assert upstream.calls() == 1
