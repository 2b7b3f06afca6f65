"""LangChain's ChatOpenAI pointed at the proxy: plain answers, `with_structured_output` (JSON schema and function
calling) and the Responses API, each cached (the fake upstream answers once; the repeat is a hit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.support.upstream import FakeUpstream


class Capital(BaseModel):
    """The capital city of a country."""

    country: str = Field(description="the country asked about")
    city: str = Field(description="its capital")


@pytest.fixture
def chat_model(proxy_url: str, api_key: str, upstream: FakeUpstream) -> Iterator[ChatOpenAI]:
    yield chat_model_of(proxy_url, api_key, upstream)


def chat_model_of(proxy_url: str, api_key: str, upstream: FakeUpstream, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="fake-model",
        base_url=proxy_url + "/v1",
        api_key=api_key,  # type: ignore[arg-type]  # a str is accepted and wrapped in a SecretStr
        default_headers=upstream.headers,
        max_retries=0,
        timeout=30,
        include_response_headers=True,
        **options,
    )


def x_cache(message: AIMessage) -> str:
    headers: dict[str, str] = message.response_metadata["headers"]
    return headers["x-cache"]


def test_a_repeated_question_is_answered_from_the_cache(chat_model: ChatOpenAI, upstream: FakeUpstream) -> None:
    first, second = (chat_model.invoke("What is the capital of France?") for _ in range(2))
    assert isinstance(first, AIMessage) and isinstance(second, AIMessage)
    assert (x_cache(first), x_cache(second)) == ("MISS", "HIT-L1")
    assert second.content == first.content and "capital of France" in str(first.content)
    assert upstream.calls() == 1


def test_a_paraphrase_is_a_semantic_hit(chat_model: ChatOpenAI, upstream: FakeUpstream) -> None:
    first = chat_model.invoke("How do I reverse a list in Python?")
    paraphrase = chat_model.invoke("How can I reverse a list in Python?")
    assert isinstance(first, AIMessage) and isinstance(paraphrase, AIMessage)
    assert (x_cache(first), x_cache(paraphrase)) == ("MISS", "HIT-L2")
    assert paraphrase.content == first.content
    assert upstream.calls() == 1


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_is_parsed_and_cached(chat_model: ChatOpenAI, upstream: FakeUpstream, method: str) -> None:
    structured = chat_model.with_structured_output(Capital, method=method)  # type: ignore[arg-type]
    answers = [structured.invoke("What is the capital of France?") for _ in range(2)]
    assert all(isinstance(answer, Capital) for answer in answers)
    assert answers[0] == answers[1]  # the second is the cached answer, parsed again
    assert upstream.calls() == 1


def test_the_responses_api_through_langchain_is_cached(proxy_url: str, api_key: str, upstream: FakeUpstream) -> None:
    model = chat_model_of(proxy_url, api_key, upstream, use_responses_api=True)
    first, second = (model.invoke("What is the capital of Spain?") for _ in range(2))
    assert isinstance(first, AIMessage) and isinstance(second, AIMessage)
    assert (x_cache(first), x_cache(second)) == ("MISS", "HIT-L1")
    assert second.text == first.text and "capital of Spain" in first.text
    assert upstream.calls("/v1/responses") == 1
