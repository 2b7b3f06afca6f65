"""Legacy completion replies of the fake: one numbered text per prompt, as one body or as chunks."""

import time
from collections.abc import Iterator
from dataclasses import dataclass

from llmproxy.fake_upstream.bodies import Body, model_of, optional_int
from llmproxy.fake_upstream.errors import RequestRejected
from llmproxy.fake_upstream.prompts import count_words, input_texts, pad, pieces, truncate
from llmproxy.fake_upstream.replies import ChoicesReply, Envelope, Json, Usage, with_usage


@dataclass(frozen=True, slots=True)
class CompletionChoice:
    """The completion of one prompt."""

    index: int
    text: str
    finish_reason: str


CompletionReply = ChoicesReply[CompletionChoice]


def plan_completion(body: Body, number: int, content_bytes: int | None = None) -> CompletionReply:
    """The reply to a completion request, the `number`-th one the fake answers (texts padded to `content_bytes`).

    Raises:
        RequestRejected: the body lacks a model or a usable prompt.
    """
    model = model_of(body)
    prompts = input_texts(body.get("prompt"))
    if prompts is None:
        raise RequestRejected(400, "prompt must be a string, strings, or token arrays", param="prompt")
    limit = optional_int(body, "max_tokens")
    texts = (pad(f"Fake completion #{number} for: {prompt}", content_bytes) for prompt in prompts)
    choices = tuple(_choice(i, text, limit) for i, text in enumerate(texts))
    usage = Usage(sum(map(count_words, prompts)), sum(count_words(choice.text) for choice in choices))
    return ChoicesReply(Envelope(f"cmpl-fake-{number}", "text_completion", int(time.time()), model), choices, usage)


def completion_json(reply: CompletionReply) -> Json:
    """The `text_completion` body."""
    choices = [_choice_json(choice.index, choice.text, choice.finish_reason) for choice in reply.choices]
    return {**reply.envelope.wrap(choices), "usage": reply.usage.to_json()}


def completion_chunks(reply: CompletionReply, include_usage: bool) -> Iterator[Json]:
    """The streamed `text_completion` chunks: one per word, then each choice's finish."""
    chunks = (reply.envelope.wrap([choice]) for completion in reply.choices for choice in _choice_parts(completion))
    if not include_usage:
        return chunks
    return with_usage(chunks, reply.usage, reply.envelope.wrap([]))


def _choice(index: int, text: str, limit: int | None) -> CompletionChoice:
    content, cut = truncate(text, limit)
    return CompletionChoice(index, content, "length" if cut else "stop")


def _choice_json(index: int, text: str, finish_reason: str | None) -> Json:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}


def _choice_parts(choice: CompletionChoice) -> Iterator[Json]:
    for piece in pieces(choice.text):
        yield _choice_json(choice.index, piece, None)
    yield _choice_json(choice.index, "", choice.finish_reason)
