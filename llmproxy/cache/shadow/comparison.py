"""Does a fresh upstream answer agree with the cached one that was served? Exactly, for a deterministic request;
otherwise by the cosine similarity of the two answers' embeddings (the same model as the prompts')."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from llmproxy.jsontypes import JsonObject

Embed = Callable[[str], Awaitable[NDArray[np.float32] | None]]

# Where the four protocols put an answer's text: chat `message.content`, completions `text`, Messages and Responses
# `content[].text`, tool calls `function.arguments`; ids, timestamps and usage differ between any two calls.
_TEXT_FIELDS = frozenset({"content", "text", "arguments", "refusal"})
_VOLATILE_FIELDS = frozenset({"id", "created", "created_at", "usage", "system_fingerprint", "model"})
ANSWER_CHARS = 1_000  # of each answer, embedded: its opening says what it is about (and fits the model's window)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Whether the answers agree, and their similarity (1.0 or 0.0 for an exact comparison)."""

    agree: bool
    similarity: float
    exact: bool


def answer_text(answer: JsonObject) -> str:
    """Every text of an answer, in order, whatever its protocol."""
    pieces: list[str] = []
    _collect(answer, pieces, within_text=False)
    return "\n".join(pieces)


def is_deterministic(body: JsonObject) -> bool:
    """Temperature 0 and a seed: the upstream is asked for the same answer each time, so only equal text agrees."""
    return body.get("temperature") == 0 and body.get("seed") is not None


async def compare(fresh: JsonObject, served: JsonObject, *, exact: bool, embed: Embed, agree_at: float) -> Comparison:
    """Compare the answers' texts: equal (exact), or embeddings at least `agree_at` similar."""
    fresh_text, served_text = answer_text(fresh).strip(), answer_text(served).strip()
    if exact or fresh_text == served_text:
        same = fresh_text == served_text
        return Comparison(same, 1.0 if same else 0.0, exact=True)
    fresh_vector = await embed(fresh_text[:ANSWER_CHARS])
    served_vector = await embed(served_text[:ANSWER_CHARS])
    if fresh_vector is None or served_vector is None:  # still past the window: only equal text can agree
        return Comparison(False, 0.0, exact=True)
    similarity = float(np.dot(fresh_vector, served_vector))  # unit vectors
    return Comparison(similarity >= agree_at, similarity, exact=False)


def _collect(value: object, pieces: list[str], *, within_text: bool) -> None:
    if isinstance(value, str):
        if within_text and value:
            pieces.append(value)
    elif isinstance(value, dict):
        for name, item in value.items():
            if name not in _VOLATILE_FIELDS:
                _collect(item, pieces, within_text=name in _TEXT_FIELDS or (within_text and name != "type"))
    elif isinstance(value, list):
        for item in value:
            _collect(item, pieces, within_text=within_text)
