"""Chat completions (`POST /v1/chat/completions`): validation, the L2 view, the prompt shown, the stream's choices.

L2 compares the text of the final user turn; everything before it is the context. A conversation ending in a tool
result or an assistant turn, or a turn with images or audio, is exact-match only: its meaning is not in its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest, RequestHeaders, SemanticView, cut, shown_content
from llmproxy.protocols.json_body import StrictBody, validated
from llmproxy.protocols.openai import GenerationRequest
from llmproxy.protocols.openai_stream import Choice, ChunkedProtocol, Lists, Text, index_of
from llmproxy.protocols.text_pieces import text_pieces

_LOGPROB_KEYS = ("content", "refusal")


class ChatMessage(StrictBody):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[Any] | None = None

    @field_validator("content")
    @classmethod
    def _text_parts_have_text(cls, content: str | list[Any] | None) -> str | list[Any] | None:
        # The prompt the cache embeds and lists is read from text parts; other parts are the upstream's to judge.
        for index, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") == "text" and not isinstance(part.get("text"), str):
                message = "content part {index} of type 'text' needs a string 'text'"
                raise PydanticCustomError("text_part", message, {"index": index})
        return content


class ChatRequest(GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=0)
    tools: list[JsonObject] | None = None


class ChatProtocol(ChunkedProtocol):
    name = "chat"
    path = "/v1/chat/completions"
    response_object = "chat.completion"
    chunk_object = "chat.completion.chunk"

    def parse(self, raw: bytes, headers: RequestHeaders) -> ParsedRequest:
        body, request = validated(ChatRequest, raw)
        stream = bool(request.stream)
        return ParsedRequest(body, request.model, stream, self.headers_in_key(headers))

    def semantic_view(self, body: JsonObject) -> SemanticView | None:
        params = self.key_fields(body)
        params.pop("model", None)
        messages = params.pop("messages", None)
        if not isinstance(messages, list) or not messages:
            return None
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "user":
            return None
        text = _plain_text(last.get("content"))
        if text is None:
            return None
        # Fields of the final turn besides its text (e.g. `name`) belong to the context.
        rest_of_turn = {key: value for key, value in last.items() if key != "content"}
        return SemanticView(prompt=text, params=params, context=[*messages[:-1], rest_of_turn])

    def display_prompt(self, body: JsonObject, limit: int) -> str:
        # The latest user turn; a conversation without one (system prompt only) still shows something.
        messages = body.get("messages")
        turns = [message for message in messages if isinstance(message, dict)] if isinstance(messages, list) else []
        users = [message for message in turns if message.get("role") == "user"]
        chosen = users[-1] if users else (turns[-1] if turns else {})
        return cut(shown_content(chosen.get("content")), limit)

    def fixed_answer(self, model: str, text: str, answer_id: str, created: int) -> JsonObject:
        message = {"role": "assistant", "content": text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        return {"id": answer_id, "object": "chat.completion", "created": created, "model": model,
                "choices": [choice], "usage": usage}  # fmt: skip

    def new_choice(self, index: int) -> Choice:
        return _ChatChoice(index)

    def choice_chunks(self, choice: JsonObject) -> list[JsonObject]:
        # The order of OpenAI's own streams: role first, then content, then tool calls, then the finish reason.
        index = choice.get("index", 0)
        chunks = [_choice_chunk(index, delta, logprobs, None) for delta, logprobs in _deltas(choice)]
        chunks.append(_choice_chunk(index, {}, None, choice.get("finish_reason")))
        return chunks


CHAT = ChatProtocol()


def _plain_text(content: Any) -> str | None:
    """The text of a message, or None when it carries anything but text parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") == "text"]
    strings = [text for text in texts if isinstance(text, str)]
    return "\n".join(strings) if len(strings) == len(content) else None


# --- the stream's choices ------------------------------------------------------------------------


@dataclass(slots=True)
class _Fields:
    """An object whose string fields are streamed in fragments, like a function call's name and arguments."""

    texts: dict[str, Text] = field(default_factory=dict)

    def add(self, fragment: JsonObject) -> None:
        for name in fragment:
            self.texts.setdefault(name, Text()).add(fragment, name)

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


@dataclass(slots=True)
class _ChatChoice:
    index: int
    finish_reason: str | None = None
    role: str | None = None
    content: Text = field(default_factory=Text)
    refusal: Text = field(default_factory=Text)
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    function_call: _Fields | None = None
    annotations: list[Any] | None = None
    logprobs: Lists = field(default_factory=lambda: Lists(_LOGPROB_KEYS))

    def add(self, choice: JsonObject) -> None:
        delta: JsonObject = choice.get("delta") or {}
        self.role = self.role or delta.get("role")
        self.content.add(delta, "content")
        self.refusal.add(delta, "refusal")
        for fragment in delta.get("tool_calls") or []:
            self.tool_calls.setdefault(index_of(fragment), _ToolCall()).add(fragment)
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


Delta = tuple[JsonObject, JsonObject | None]  # a chunk's delta and its logprobs


def _deltas(choice: JsonObject) -> list[Delta]:
    """The (delta, logprobs) pairs that stream one choice's message, before its finish chunk."""
    message: JsonObject = choice.get("message") or {}
    logprobs: JsonObject = choice.get("logprobs") or {}
    # OpenAI opens with an empty string only when content follows; a tool-call answer keeps null.
    opening_content = None if message.get("content") is None else ""
    deltas: list[Delta] = [
        ({"role": message.get("role") or "assistant", "content": opening_content, "refusal": None}, None)
    ]
    if message.get("content"):
        deltas += _text_deltas("content", message["content"], _logprobs_of(logprobs, "content"))
    if message.get("refusal") is not None:
        deltas += _text_deltas("refusal", message["refusal"], _logprobs_of(logprobs, "refusal"))
    if message.get("annotations"):
        deltas.append(({"annotations": message["annotations"]}, None))
    for index, call in enumerate(message.get("tool_calls") or []):
        deltas.append(({"tool_calls": [{"index": index, **call}]}, None))
    if message.get("function_call") is not None:
        deltas.append(({"function_call": message["function_call"]}, None))
    return deltas


def _text_deltas(key: str, text: str, logprobs: JsonObject | None) -> list[Delta]:
    # The logprobs go with the first piece: assembly concatenates them whatever the pieces.
    pieces = text_pieces(text)
    return [({key: piece}, logprobs if number == 0 else None) for number, piece in enumerate(pieces)]


def _choice_chunk(index: int, delta: JsonObject, logprobs: JsonObject | None, finish: str | None) -> JsonObject:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


def _logprobs_of(logprobs: JsonObject, key: str) -> JsonObject | None:
    """The logprobs for one part of the message (content or refusal), in a chunk's shape."""
    if logprobs.get(key) is None:
        return None
    return {"content": None, "refusal": None, key: logprobs[key]}
