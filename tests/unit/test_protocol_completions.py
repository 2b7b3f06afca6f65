"""Legacy completions as a protocol: validation, the L2 view, the prompt shown, fixed answers, replay (pure)."""

from __future__ import annotations

import orjson
import pytest

from llmproxy.cache.keys import semantic_key
from llmproxy.protocols.completions import COMPLETIONS
from llmproxy.protocols.openai import include_usage
from llmproxy.streaming import SseDecoder

LIMIT = 2_000


def test_include_usage_needs_stream() -> None:
    raw = orjson.dumps({"model": "m", "prompt": "p", "stream_options": {"include_usage": True}})
    assert include_usage(COMPLETIONS.parse(raw, [])) is False


def test_a_single_string_prompt_is_embedded() -> None:
    completion = semantic_key(COMPLETIONS, {"model": "m", "prompt": "Once upon a time"})
    assert completion is not None and completion.prompt == "Once upon a time"


@pytest.mark.parametrize("prompt", [["a", "b"], [1, 2, 3], "   "], ids=["batched-prompts", "tokens", "blank"])
def test_prompts_that_are_not_one_text_are_exact_only(prompt: object) -> None:
    assert semantic_key(COMPLETIONS, {"model": "m", "prompt": prompt}) is None


def test_params_leave_out_the_model_and_the_prompt() -> None:
    view = COMPLETIONS.semantic_view({"model": "m", "prompt": "p", "max_tokens": 5, "user": "u"})
    assert view is not None and (view.params, view.context) == ({"max_tokens": 5}, [])


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ({"prompt": "Once upon a time"}, "Once upon a time"),
        ({"prompt": ["one", "two"]}, "one\ntwo"),
    ],
)
def test_display_prompt_of_completions(body: dict[str, object], shown: str) -> None:
    assert COMPLETIONS.display_prompt(body, LIMIT) == shown


def test_display_prompt_is_cut_to_the_limit() -> None:
    assert COMPLETIONS.display_prompt({"prompt": "short"}, 100) == "short"


def test_a_fixed_answer_replays_in_several_text_deltas() -> None:
    answer = COMPLETIONS.fixed_answer("m", "Once upon a time there was a proxy.", "llmproxy-1", 1)
    request = COMPLETIONS.parse(orjson.dumps({"model": "m", "prompt": "Tell me", "stream": True}), [])

    events = SseDecoder().feed(COMPLETIONS.replay(answer, request))

    texts = [orjson.loads(event.data or "")["choices"][0]["text"] for event in events[:-1]]
    assert COMPLETIONS.is_complete(answer) and answer["object"] == "text_completion"
    assert len([text for text in texts if text]) > 1 and "".join(texts) == answer["choices"][0]["text"]
    assert events[-1].is_done
