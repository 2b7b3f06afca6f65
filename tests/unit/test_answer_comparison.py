"""Comparing a fresh answer with a served one: the texts of each protocol's answers, and when to compare exactly."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from llmproxy.cache.shadow.comparison import answer_text, compare, is_deterministic
from llmproxy.jsontypes import JsonObject
from llmproxy.lifespan import audit_ledger
from llmproxy.settings import load_settings

pytestmark = pytest.mark.anyio

CHAT = {"id": "chatcmpl-1", "created": 1, "choices": [{"message": {"role": "assistant", "content": "Paris."}}]}
MESSAGES = {"id": "msg_1", "role": "assistant", "content": [{"type": "text", "text": "Paris."}], "usage": {}}
RESPONSES = {"id": "resp_1", "output": [{"type": "message", "content": [{"type": "output_text", "text": "Paris."}]}]}
COMPLETION = {"id": "cmpl-1", "choices": [{"text": "Paris."}]}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    "answer", [CHAT, MESSAGES, RESPONSES, COMPLETION], ids=["chat", "messages", "responses", "text"]
)
def test_answer_text_is_the_text_whatever_the_protocol(answer: JsonObject) -> None:
    assert answer_text(answer) == "Paris."


def test_answer_text_includes_tool_call_arguments_but_not_ids() -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"city": "Paris"}'}}
    answer = {"choices": [{"message": {"content": None, "tool_calls": [call]}}]}
    assert answer_text(answer) == '{"city": "Paris"}'


@pytest.mark.parametrize(
    ("body", "deterministic"),
    [({"temperature": 0, "seed": 1}, True), ({"temperature": 0}, False), ({"seed": 1}, False), ({}, False)],
)
def test_only_temperature_zero_with_a_seed_is_deterministic(body: JsonObject, deterministic: bool) -> None:
    assert is_deterministic(body) is deterministic


def unit(*values: float) -> NDArray[np.float32]:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


async def test_similar_answers_agree_by_embedding_and_exact_comparison_refuses_them() -> None:
    vectors = {"Paris.": unit(1, 0), "It is Paris.": unit(0.96, 0.28)}  # cosine 0.96

    async def embed(text: str) -> NDArray[np.float32] | None:
        return vectors[text]

    other = {"choices": [{"message": {"content": "It is Paris."}}]}
    loose = await compare(other, CHAT, exact=False, embed=embed, agree_at=0.9)
    assert (loose.agree, loose.exact, round(loose.similarity, 2)) == (True, False, 0.96)
    strict = await compare(other, CHAT, exact=True, embed=embed, agree_at=0.9)
    assert (strict.agree, strict.exact) == (False, True)
    assert not (await compare(other, CHAT, exact=False, embed=embed, agree_at=0.97)).agree


def test_shadow_verification_is_off_by_default() -> None:
    assert audit_ledger(load_settings(None, {"redis": {"url": "redis://127.0.0.1:1"}}), redis=None) is None  # type: ignore[arg-type]
