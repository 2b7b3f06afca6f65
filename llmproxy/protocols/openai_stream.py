"""OpenAI's chunk streams, shared by chat completions and completions: assembly into the answer, and replay (pure).

A stream is `data:` chunks that repeat the answer's envelope (id, created, model) around deltas of its `choices`,
optionally a usage-only tail chunk, and `data: [DONE]`. Assembly rebuilds the non-streaming answer, so a streamed
miss is cached exactly like a plain one; replay turns a stored answer back into chunks the official SDKs and their
stream helpers accumulate into it. Each protocol module supplies its choices (how one choice folds and replays).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest, StreamAssembler
from llmproxy.protocols.json_events import JsonEventStream
from llmproxy.protocols.openai import OpenAIProtocol, include_usage
from llmproxy.streaming.sse import SseEvent, done_event, encode_event

# Top-level keys a chunk repeats from the response; the optional ones are copied only when present.
REQUIRED_ENVELOPE_KEYS = ("id", "created", "model")
OPTIONAL_ENVELOPE_KEYS = ("system_fingerprint", "service_tier")
REPLAY_DELTAS = 16  # at most this many text deltas per replayed choice: several, as a real stream sends
_WORD_START = re.compile(r"(?<=\s)(?=\S)")


def index_of(item: JsonObject) -> int:
    """The `index` of a choice or tool-call fragment.

    Raises:
        TypeError: the index is not an integer (so the parts could not be ordered).
    """
    index = item.get("index", 0)
    if not isinstance(index, int):
        raise TypeError(f"index must be an integer, not {type(index).__name__}")
    return index


def is_usage_only_chunk(chunk: JsonObject) -> bool:
    """Whether this is the `include_usage` tail chunk: no choices, only usage."""
    return chunk.get("choices") == [] and chunk.get("usage") is not None


def text_pieces(text: str, most: int = REPLAY_DELTAS) -> list[str]:
    """`text` cut at word starts into at most `most` pieces that join back into it (one piece for one word)."""
    words = _WORD_START.split(text)
    size = -(-len(words) // most)  # words per piece, rounded up
    return ["".join(words[start : start + size]) for start in range(0, len(words), size)]


@dataclass(slots=True)
class Text:
    """A string field streamed in fragments; `seen` records whether the key ever appeared."""

    parts: list[str] | None = None
    seen: bool = False

    def add(self, source: JsonObject, key: str) -> None:
        if key not in source:
            return
        self.seen = True
        value = source[key]
        if isinstance(value, str):
            if self.parts is None:
                self.parts = []
            self.parts.append(value)

    def value(self) -> str | None:
        return None if self.parts is None else "".join(self.parts)


@dataclass(slots=True)
class Lists:
    """A logprobs object whose lists are streamed in pieces; None until one arrives."""

    keys: tuple[str, ...]
    lists: dict[str, list[Any]] | None = None

    def add(self, logprobs: JsonObject | None) -> None:
        if logprobs is None:
            return
        lists = self.lists if self.lists is not None else {}
        for key in self.keys:
            if isinstance(logprobs.get(key), list):
                lists.setdefault(key, []).extend(logprobs[key])
        self.lists = lists

    def value(self) -> JsonObject | None:
        if self.lists is None:
            return None
        return {key: self.lists.get(key) for key in self.keys}


class Choice(Protocol):
    """One choice being assembled from its deltas."""

    @property
    def finish_reason(self) -> str | None: ...

    def add(self, choice: JsonObject) -> None: ...

    def value(self) -> JsonObject: ...


class ChunkAssembler:
    """Accumulates the chunk objects of one stream and builds the equivalent non-streaming response."""

    __slots__ = ("_new_choice", "_object", "_envelope", "_choices", "_usage", "_failed")

    def __init__(self, new_choice: Callable[[int], Choice], response_object: str) -> None:
        self._new_choice = new_choice
        self._object = response_object
        self._envelope: JsonObject = {}
        self._choices: dict[int, Choice] = {}
        self._usage: JsonObject | None = None
        self._failed = False

    @property
    def usage(self) -> JsonObject | None:
        """The usage reported by the stream so far, if any."""
        return self._usage

    def add(self, chunk: JsonObject) -> None:
        """Fold one parsed chunk into the answer; an error or malformed chunk makes the stream incomplete."""
        if "error" in chunk:
            self._failed = True
            return
        try:
            self._fold(chunk)
        except (AttributeError, TypeError):
            # Upstream JSON is untrusted: a chunk of the wrong shape costs the cache copy, never the relay.
            self._failed = True

    def _fold(self, chunk: JsonObject) -> None:
        # The first non-null value wins; a null only records that the key exists.
        for key in (*REQUIRED_ENVELOPE_KEYS, *OPTIONAL_ENVELOPE_KEYS):
            if key in chunk and self._envelope.get(key) is None:
                self._envelope[key] = chunk[key]
        self._usage = chunk.get("usage") or self._usage
        for choice in chunk.get("choices") or []:
            index = index_of(choice)
            self._choices.setdefault(index, self._new_choice(index)).add(choice)

    def result(self) -> JsonObject | None:
        """The non-streaming response, or None unless the stream finished every choice it started."""
        if self._failed or not self._choices:
            return None
        if any(choice.finish_reason is None for choice in self._choices.values()):
            return None
        response = envelope_fields(self._envelope, self._object)
        response["choices"] = [self._choices[index].value() for index in sorted(self._choices)]
        if self._usage is not None:
            response["usage"] = self._usage
        return response


class ChunkStream(JsonEventStream):
    """The events of an OpenAI stream: chunks folded into the answer until `[DONE]`; the usage tail hidden when
    the proxy asked for it and the caller did not."""

    __slots__ = ("_chunks", "_hide_usage")

    def __init__(self, chunks: ChunkAssembler, hide_usage: bool) -> None:
        super().__init__()
        self._chunks = chunks
        self._hide_usage = hide_usage

    def fold(self, data: JsonObject, event: SseEvent) -> bool:
        if "error" in data:
            self._failed = True
            return True
        self._chunks.add(data)
        return not (self._hide_usage and is_usage_only_chunk(data))

    def result(self) -> JsonObject | None:
        if not self._ended or self._failed:
            return None
        return self._chunks.result()


class ChunkedProtocol(OpenAIProtocol):
    """An OpenAI endpoint whose answers hold `choices` and stream as chunks (chat completions, completions)."""

    response_object: ClassVar[str]  # the `object` of an answer
    chunk_object: ClassVar[str]  # the `object` of a chunk

    @abstractmethod
    def new_choice(self, index: int) -> Choice:
        """An empty choice to fold the deltas of choice `index` into."""

    @abstractmethod
    def choice_chunks(self, choice: JsonObject) -> list[JsonObject]:
        """The chunk choices that stream one stored choice, its finish last."""

    def chunk_assembler(self) -> ChunkAssembler:
        """A fresh assembler of this protocol's chunk objects."""
        return ChunkAssembler(self.new_choice, self.response_object)

    def assembler(self, parsed: ParsedRequest, *, want_usage: bool) -> StreamAssembler:
        return ChunkStream(self.chunk_assembler(), hide_usage=want_usage and not include_usage(parsed))

    def is_complete(self, answer: JsonObject) -> bool:
        # A generation without a finish_reason on every choice was cut short.
        if "error" in answer:
            return False
        choices = answer.get("choices")
        return (
            isinstance(choices, list)
            and bool(choices)
            and all(isinstance(choice, dict) and choice.get("finish_reason") for choice in choices)
        )

    def replay_chunks(self, answer: JsonObject, include_usage: bool) -> list[JsonObject]:
        """The chunk objects of a stream equivalent to `answer`, usage tail included when asked for."""
        envelope = envelope_fields(answer, self.chunk_object)
        usage_field: JsonObject = {"usage": None} if include_usage else {}
        chunks = [
            {**envelope, "choices": [choice_chunk], **usage_field}
            for choice in answer.get("choices") or []
            for choice_chunk in self.choice_chunks(choice)
        ]
        if include_usage and answer.get("usage") is not None:
            chunks.append({**envelope, "choices": [], "usage": answer["usage"]})
        return chunks

    def replay(self, answer: JsonObject, parsed: ParsedRequest) -> bytes:
        events = [encode_event(chunk) for chunk in self.replay_chunks(answer, include_usage(parsed))]
        return b"".join(events) + done_event()


def envelope_fields(source: JsonObject, object_name: str) -> JsonObject:
    """The fields a response and each of its chunks share: id, object, created, model and the optional ones present."""
    envelope: JsonObject = {
        "id": source.get("id"),
        "object": object_name,
        "created": source.get("created"),
        "model": source.get("model"),
    }
    envelope.update({key: source[key] for key in OPTIONAL_ENVELOPE_KEYS if key in source})
    return envelope
