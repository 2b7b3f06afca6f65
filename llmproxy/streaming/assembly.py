"""Stream assembly: rebuild the non-streaming response from the chunks of one streamed answer.

The result has OpenAI's non-streaming shape, so a streamed miss is cached exactly like a plain one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmproxy.jsontypes import JsonObject
from llmproxy.streaming.chunks import (
    OPTIONAL_ENVELOPE_KEYS,
    REQUIRED_ENVELOPE_KEYS,
    RESPONSE_OBJECT,
    StreamKind,
)

_CHAT_LOGPROB_KEYS = ("content", "refusal")
_COMPLETION_LOGPROB_KEYS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")


def _index_of(item: JsonObject) -> int:
    """The `index` of a choice or tool-call fragment.

    Raises:
        TypeError: the index is not an integer (so the parts could not be ordered).
    """
    index = item.get("index", 0)
    if not isinstance(index, int):
        raise TypeError(f"index must be an integer, not {type(index).__name__}")
    return index


@dataclass(slots=True)
class _Text:
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
class _Lists:
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


@dataclass(slots=True)
class _Fields:
    """An object whose string fields are streamed in fragments, like a function call's name and arguments."""

    texts: dict[str, _Text] = field(default_factory=dict)

    def add(self, fragment: JsonObject) -> None:
        for name in fragment:
            self.texts.setdefault(name, _Text()).add(fragment, name)

    def value(self) -> JsonObject:
        return {name: text.value() for name, text in self.texts.items()}


@dataclass(slots=True)
class _ToolCall:
    """One tool call: scalars (id, type) keep their first value; nested objects (function) merge fragments."""

    scalars: JsonObject = field(default_factory=dict)
    nested: dict[str, _Fields] = field(default_factory=dict)

    def add(self, fragment: JsonObject) -> None:
        for key, value in fragment.items():
            if isinstance(value, dict):
                self.nested.setdefault(key, _Fields()).add(value)
            elif key != "index" and value is not None:
                self.scalars.setdefault(key, value)

    def value(self) -> JsonObject:
        return {**self.scalars, **{key: fields.value() for key, fields in self.nested.items()}}


class _Choice(Protocol):
    @property
    def finish_reason(self) -> str | None: ...

    def add(self, choice: JsonObject) -> None: ...

    def value(self) -> JsonObject: ...


@dataclass(slots=True)
class _ChatChoice:
    index: int
    finish_reason: str | None = None
    role: str | None = None
    content: _Text = field(default_factory=_Text)
    refusal: _Text = field(default_factory=_Text)
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    function_call: _Fields | None = None
    annotations: list[Any] | None = None
    logprobs: _Lists = field(default_factory=lambda: _Lists(_CHAT_LOGPROB_KEYS))

    def add(self, choice: JsonObject) -> None:
        delta: JsonObject = choice.get("delta") or {}
        self.role = self.role or delta.get("role")
        self.content.add(delta, "content")
        self.refusal.add(delta, "refusal")
        for fragment in delta.get("tool_calls") or []:
            self.tool_calls.setdefault(_index_of(fragment), _ToolCall()).add(fragment)
        if delta.get("function_call") is not None:
            self.function_call = self.function_call or _Fields()
            self.function_call.add(delta["function_call"])
        if delta.get("annotations") is not None:
            self.annotations = self.annotations if self.annotations is not None else []
            self.annotations.extend(delta["annotations"])
        self.logprobs.add(choice.get("logprobs"))
        self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def value(self) -> JsonObject:
        return {
            "index": self.index,
            "message": self._message(),
            "logprobs": self.logprobs.value(),
            "finish_reason": self.finish_reason,
        }

    def _message(self) -> JsonObject:
        message: JsonObject = {"role": self.role or "assistant", "content": self.content.value()}
        if self.refusal.seen:
            message["refusal"] = self.refusal.value()
        if self.annotations is not None:
            message["annotations"] = self.annotations
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[index].value() for index in sorted(self.tool_calls)]
        if self.function_call is not None:
            message["function_call"] = self.function_call.value()
        return message


@dataclass(slots=True)
class _TextChoice:
    index: int
    finish_reason: str | None = None
    text: _Text = field(default_factory=_Text)
    logprobs: _Lists = field(default_factory=lambda: _Lists(_COMPLETION_LOGPROB_KEYS))

    def add(self, choice: JsonObject) -> None:
        self.text.add(choice, "text")
        self.logprobs.add(choice.get("logprobs"))
        self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def value(self) -> JsonObject:
        text = self.text.value() or ""
        return {
            "text": text,
            "index": self.index,
            "logprobs": self.logprobs.value(),
            "finish_reason": self.finish_reason,
        }


_CHOICE_TYPES: dict[StreamKind, Callable[[int], _Choice]] = {"chat": _ChatChoice, "completion": _TextChoice}


class StreamAssembler:
    """Accumulates chunk objects of one stream and builds the equivalent non-streaming response."""

    __slots__ = ("_kind", "_envelope", "_choices", "_usage", "_failed")

    def __init__(self, kind: StreamKind) -> None:
        self._kind: StreamKind = kind
        self._envelope: JsonObject = {}
        self._choices: dict[int, _Choice] = {}
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
        self._add_envelope(chunk)
        self._usage = chunk.get("usage") or self._usage
        for choice in chunk.get("choices") or []:
            index = _index_of(choice)
            self._choices.setdefault(index, _CHOICE_TYPES[self._kind](index)).add(choice)

    def result(self) -> JsonObject | None:
        """The non-streaming response, or None unless the stream finished every choice it started."""
        if self._failed or not self._choices:
            return None
        if any(choice.finish_reason is None for choice in self._choices.values()):
            return None
        envelope = self._envelope
        response: JsonObject = {
            "id": envelope.get("id"),
            "object": RESPONSE_OBJECT[self._kind],
            "created": envelope.get("created"),
            "model": envelope.get("model"),
        }
        response.update({key: envelope[key] for key in OPTIONAL_ENVELOPE_KEYS if key in envelope})
        response["choices"] = [self._choices[index].value() for index in sorted(self._choices)]
        if self._usage is not None:
            response["usage"] = self._usage
        return response

    def _add_envelope(self, chunk: JsonObject) -> None:
        # The first non-null value wins; a null only records that the key exists.
        for key in (*REQUIRED_ENVELOPE_KEYS, *OPTIONAL_ENVELOPE_KEYS):
            if key in chunk and self._envelope.get(key) is None:
                self._envelope[key] = chunk[key]
