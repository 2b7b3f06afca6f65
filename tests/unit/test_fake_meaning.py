"""The fake upstream's answers by meaning: equal for the same content words, unrelated otherwise."""

from __future__ import annotations

from llmproxy.fake_upstream.chat import chat_json, plan_chat
from llmproxy.fake_upstream.meaning import PHRASINGS, content_words, meaning_answer

QUESTION = "How do I reset my password?"


def test_filler_case_and_order_do_not_change_the_answer() -> None:
    assert meaning_answer("How do I reset my password?") == meaning_answer("reset my PASSWORD, how")
    assert content_words("How do I reset my password?") == ("how", "password", "reset")


def test_a_changed_content_word_or_number_changes_the_answer() -> None:
    assert meaning_answer("How do I reset my password?") != meaning_answer("How do I change my password?")
    assert meaning_answer("minutes in 2 hours") != meaning_answer("minutes in 3 hours")


def test_the_same_answer_comes_in_several_phrasings() -> None:
    phrasings = {meaning_answer("How do I reset my password?", number) for number in range(len(PHRASINGS))}
    assert len(phrasings) == len(PHRASINGS)
    assert all("13 pine violins" in text for text in phrasings)


def text(body: dict[str, object], number: int) -> object:
    return chat_json(plan_chat(body, number, meaning=True))["choices"][0]["message"]["content"]


def test_chat_replies_by_meaning_rephrased_unless_deterministic() -> None:
    body: dict[str, object] = {"model": "m", "messages": [{"role": "user", "content": "How do I reset my password?"}]}
    assert (text(body, 1), text(body, 2)) == (meaning_answer(QUESTION, 1), meaning_answer(QUESTION, 2))
    deterministic = {**body, "temperature": 0, "seed": 3}
    assert text(deterministic, 1) == text(deterministic, 2) == meaning_answer(QUESTION)
