"""The pacer that sizes deletion batches from how long the last call took."""

from __future__ import annotations

from llmproxy.cache.catalog.answer_keys import FIRST_BATCH, MAX_BATCH, TARGET_S, Pacer


def test_a_slow_call_halves_the_batch_down_to_one() -> None:
    pacer = Pacer()
    pacer.observe(TARGET_S * 2)
    assert pacer.size == FIRST_BATCH // 2
    for _ in range(10):
        pacer.observe(1.0)
    assert pacer.size == 1


def test_a_fast_call_doubles_the_batch_up_to_the_maximum() -> None:
    pacer = Pacer()
    pacer.observe(TARGET_S / 10)
    assert pacer.size == FIRST_BATCH * 2
    for _ in range(20):
        pacer.observe(0.0)
    assert pacer.size == MAX_BATCH


def test_a_call_near_the_target_keeps_the_batch() -> None:
    pacer = Pacer()
    pacer.observe(TARGET_S / 2)
    assert pacer.size == FIRST_BATCH
