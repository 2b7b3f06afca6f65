"""Anthropic Messages (`POST /v1/messages`): validation, the L2 view, the prompt shown, what is stored.

L2 compares the text of the final user message (a string or text blocks); the system prompt and the earlier
turns are the context. A conversation ending in tool results, images, documents or any other block is exact-match
only: its meaning is not in its text.

Stored: answers whose `stop_reason` is `end_turn`, `stop_sequence`, `tool_use` or `max_tokens` (cut at the
caller's own limit, as chat completions store `finish_reason: length`: the same request is cut the same way).
Never stored: `pause_turn` (a server tool's turn the caller must continue), `refusal` (a safety classifier's
verdict, which the upstream may revise, and which a cache would repeat for the whole TTL), any other or missing
stop reason, and errors.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.anthropic import AnthropicProtocol, plain_text
from llmproxy.protocols.base import ParsedRequest, RequestHeaders, SemanticView, StreamAssembler
from llmproxy.protocols.json_body import StrictBody, validated
from llmproxy.protocols.messages_stream import MessageStream, message_events
from llmproxy.trace import TokenUsage

STORED_STOP_REASONS = frozenset({"end_turn", "stop_sequence", "tool_use", "max_tokens"})
_INPUT_TOKEN_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class AnthropicMessage(StrictBody):
    role: Literal["user", "assistant"]
    content: str | list[JsonObject]

    @field_validator("content")
    @classmethod
    def _text_blocks_have_text(cls, content: str | list[JsonObject]) -> str | list[JsonObject]:
        # The prompt the cache embeds and lists is read from text blocks; other blocks are the upstream's to judge.
        for index, block in enumerate(content if isinstance(content, list) else ()):
            if block.get("type") == "text" and not isinstance(block.get("text"), str):
                message = "content block {index} of type 'text' needs a string 'text'"
                raise PydanticCustomError("text_block", message, {"index": index})
        return content


class ConversationRequest(StrictBody):
    """The fields Messages and count_tokens share."""

    model: str = Field(min_length=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[JsonObject] | None = None
    tools: list[JsonObject] | None = None
    tool_choice: JsonObject | None = None
    thinking: JsonObject | None = None


class MessagesRequest(ConversationRequest):
    max_tokens: int = Field(ge=1)
    stream: bool | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    stop_sequences: list[str] | None = None
    metadata: JsonObject | None = None


class MessagesProtocol(AnthropicProtocol):
    name = "messages"
    path = "/v1/messages"

    def parse(self, raw: bytes, headers: RequestHeaders) -> ParsedRequest:
        body, request = validated(MessagesRequest, raw)
        return ParsedRequest(body, request.model, bool(request.stream), self.headers_in_key(headers))

    def semantic_view(self, body: JsonObject) -> SemanticView | None:
        params = self.key_fields(body)
        params.pop("model", None)
        messages = params.pop("messages", None)
        system = params.pop("system", None)
        if not isinstance(messages, list) or not messages:
            return None
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "user":
            return None
        text = plain_text(last.get("content"))
        if text is None:
            return None
        rest_of_turn = {key: value for key, value in last.items() if key != "content"}
        # A mapping, where chat's context is a list: the two protocols' views can never coincide.
        return SemanticView(
            prompt=text, params=params, context={"system": system, "turns": [*messages[:-1], rest_of_turn]}
        )

    def assembler(self, parsed: ParsedRequest, *, want_usage: bool) -> StreamAssembler:
        return MessageStream()

    def is_complete(self, answer: JsonObject) -> bool:
        return (
            answer.get("type") == "message"
            and isinstance(answer.get("content"), list)
            and answer.get("stop_reason") in STORED_STOP_REASONS
        )

    def replay(self, answer: JsonObject, parsed: ParsedRequest) -> bytes:
        return message_events(answer)

    def usage(self, answer: JsonObject) -> TokenUsage | None:
        usage: Any = answer.get("usage")
        if not isinstance(usage, dict):
            return None
        counts = [usage.get(field) for field in _INPUT_TOKEN_FIELDS]
        output = usage.get("output_tokens", 0)
        if not isinstance(counts[0], int) or not isinstance(output, int):
            return None
        # Prompt-cache reads and writes are input tokens too (priced differently by Anthropic).
        prompt = sum(count for count in counts if isinstance(count, int))
        return TokenUsage(prompt_tokens=prompt, completion_tokens=output)

    def fixed_answer(self, model: str, text: str, answer_id: str, created: int) -> JsonObject:
        return {
            "id": answer_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }


MESSAGES = MessagesProtocol()
