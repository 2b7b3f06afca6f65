"""Pieces shared by chat and completion replies: the envelope every body and chunk carries, and usage."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

SYSTEM_FINGERPRINT = "fp_fake"

Json = dict[str, object]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one reply (words stand in for tokens)."""

    prompt_tokens: int
    completion_tokens: int

    def to_json(self) -> Json:
        """The OpenAI `usage` object."""
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}


@dataclass(frozen=True, slots=True)
class Envelope:
    """The fields every body and chunk of one reply repeats."""

    id: str
    object: str
    created: int
    model: str

    def wrap(self, choices: list[Json], object_name: str | None = None) -> Json:
        """A body or chunk holding these choices."""
        return {
            "id": self.id,
            "object": object_name or self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }


def with_usage(chunks: Iterator[Json], usage: Usage, usage_chunk: Json) -> Iterator[Json]:
    """Chunks as sent under `include_usage`: `usage: null` on each, then one usage chunk without choices."""
    for chunk in chunks:
        yield {**chunk, "usage": None}
    yield {**usage_chunk, "choices": [], "usage": usage.to_json()}


ChoiceT = TypeVar("ChoiceT")


@dataclass(frozen=True, slots=True)
class ChoicesReply(Generic[ChoiceT]):
    """Everything needed to render one chat or text completion, as JSON or as a stream."""

    envelope: Envelope
    choices: tuple[ChoiceT, ...]
    usage: Usage
