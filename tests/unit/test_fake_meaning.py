"""The fake upstream's answers by meaning: equal for the same content words, unrelated otherwise."""

from __future__ import annotations

from llmproxy.fake_upstream.chat import chat_json, plan_chat
from llmproxy.fake_upstream.meaning import content_words, meaning_answer


def test_filler_case_and_order_do_not_change_the_answer() -> None:
    assert meaning_answer("How do I reset my password?") == meaning_answer("reset my PASSWORD, how")
    assert content_words("How do I reset my password?") == ("how", "password", "reset")


def test_a_changed_content_word_or_number_changes_the_answer() -> None:
    assert meaning_answer("How do I reset my password?") != meaning_answer("How do I change my password?")
    assert meaning_answer("minutes in 2 hours") != meaning_answer("minutes in 3 hours")


def test_chat_replies_by_meaning_on_request() -> None:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "How do I reset my password?"}]}
    first, second = (chat_json(plan_chat(body, number, meaning=True)) for number in (1, 2))
    assert first["choices"][0]["message"]["content"] == meaning_answer("How do I reset my password?")
    assert first["choices"] == second["choices"]  # unlike numbered replies
