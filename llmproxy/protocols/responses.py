"""The OpenAI Responses API (`POST /v1/responses`): validation, the bypass rule, the L2 view, the prompt shown,
completeness and the fixed answer. Its typed event streams are `responses_stream.py`'s.

Never cached (X-Cache: BYPASS, X-Cache-Bypass-Reason says which): a request in a `conversation` (server-side state
that changes with every turn), a `background: true` request (answered by polling, not by this response), and a
reusable `prompt` without a pinned `version` (its text can change under the same id). `previous_response_id`
names an immutable stored response, so it is context, not a reason to bypass.

L2 compares the text of the latest user input (a string input, or a last item that is a user message of text
parts); `instructions`, the earlier items and `previous_response_id` are its context. An input ending in a tool
output, or carrying images or files, is exact-match only: its meaning is not in its text.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field

from llmproxy.errors import InvalidRequestError, ProxyError
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest, RequestHeaders, SemanticView, StreamAssembler, cut
from llmproxy.protocols.openai import OpenAIProtocol, StrictBody, validated
from llmproxy.protocols.responses_stream import ResponseEvents, error_event, replay_response
from llmproxy.trace import TokenUsage

# Reasons a request never uses the cache (X-Cache-Bypass-Reason).
CONVERSATION_REASON = "conversation"
BACKGROUND_REASON = "background"
UNPINNED_PROMPT_REASON = "unpinned-prompt"

# What the L2 view keeps apart from `params`: the prompt's turn and what came before it.
_CONTEXT_FIELDS = ("input", "instructions", "previous_response_id")
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


class PromptReference(StrictBody):
    id: str = Field(min_length=1)
    version: str | None = None
    variables: JsonObject | None = None


class ResponsesRequest(StrictBody):
    # The model may come from a reusable prompt instead.
    model: str | None = Field(None, min_length=1)
    input: str | list[JsonObject] | None = None
    instructions: str | list[Any] | None = None
    stream: bool | None = None
    background: bool | None = None
    conversation: str | JsonObject | None = None
    previous_response_id: str | None = None
    prompt: PromptReference | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_output_tokens: int | None = Field(None, ge=0)
    tools: list[JsonObject] | None = None


class ResponsesProtocol(OpenAIProtocol):
    name = "responses"
    path = "/v1/responses"

    def parse(self, raw: bytes, headers: RequestHeaders) -> ParsedRequest:
        body, request = validated(ResponsesRequest, raw)
        if request.model is None and request.prompt is None:
            raise InvalidRequestError(
                "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
            )
        model = request.model or ""  # a reusable prompt's model is the upstream's to resolve
        return ParsedRequest(body, model, bool(request.stream), self.headers_in_key(headers))

    def bypass_reason(self, parsed: ParsedRequest) -> str | None:
        body = parsed.body
        if body.get("conversation") is not None:
            return CONVERSATION_REASON
        if body.get("background") is True:
            return BACKGROUND_REASON
        prompt = body.get("prompt")
        if isinstance(prompt, dict) and not prompt.get("version"):
            return UNPINNED_PROMPT_REASON
        return None

    def semantic_view(self, body: JsonObject) -> SemanticView | None:
        params = self.key_fields(body)
        params.pop("model", None)
        context = {name: params.pop(name, None) for name in _CONTEXT_FIELDS}
        items = _items(context.pop("input"))
        if not items:
            return None
        last = items[-1]
        text = _plain_text(last.get("content")) if _is_user_message(last) else None
        if text is None:
            return None
        # The turn's other fields (role, type, ...) stay in the context, as chat's do; a string input and the
        # equivalent one-message list share a partition.
        rest_of_turn = {key: value for key, value in last.items() if key not in ("content", "type")}
        context.update(earlier=items[:-1], turn=rest_of_turn)
        return SemanticView(prompt=text, params=params, context=context)

    def display_prompt(self, body: JsonObject, limit: int) -> str:
        # The latest user text; else the instructions, the reusable prompt, or the input as JSON.
        users = [item for item in _items(body.get("input")) if _is_user_message(item)]
        if users:
            return cut(_shown_content(users[-1].get("content")), limit)
        prompt = body.get("prompt")
        if isinstance(body.get("instructions"), str):
            shown = str(body["instructions"])
        elif isinstance(prompt, dict):
            shown = f"[prompt {prompt.get('id')} v{prompt.get('version')}]"
        else:
            shown = orjson.dumps(body.get("input")).decode()[: limit + 1]
        return cut(shown, limit)

    def upstream_body(self, parsed: ParsedRequest, *, model: str | None, want_usage: bool) -> bytes | None:
        # A Responses stream always reports its usage (in `response.completed`): only a route's model changes it.
        if model is None:
            return None
        return orjson.dumps({**parsed.body, "model": model})

    def answer_error(self, answer: JsonObject) -> str | None:
        # A Response carries `error` (null, or why it failed): a failed Response is an answer, just not storable.
        if answer.get("object") == "response":
            return None
        return super().answer_error(answer)

    def assembler(self, parsed: ParsedRequest, *, want_usage: bool) -> StreamAssembler:
        return ResponseEvents()

    def is_complete(self, answer: JsonObject) -> bool:
        # `incomplete` (cut by max_output_tokens or a filter), `failed`, `in_progress` and `queued` are not answers.
        return answer.get("status") == "completed" and answer.get("error") is None and "output" in answer

    def replay(self, answer: JsonObject, parsed: ParsedRequest) -> bytes:
        return replay_response(answer)

    def usage(self, answer: JsonObject) -> TokenUsage | None:
        usage: Any = answer.get("usage")
        if not isinstance(usage, dict):
            return None
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens", 0)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        return TokenUsage(prompt_tokens=prompt, completion_tokens=completion)

    def fixed_answer(self, model: str, text: str, answer_id: str, created: int) -> JsonObject:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message = {"id": f"msg_{answer_id}", "type": "message", "status": "completed", "role": "assistant",
                   "content": [part]}  # fmt: skip
        usage = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                 "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}  # fmt: skip
        return {"id": answer_id, "object": "response", "created_at": created, "status": "completed",
                "completed_at": created, "error": None, "incomplete_details": None, "instructions": None,
                "metadata": {}, "model": model, "output": [message], "parallel_tool_calls": True,
                "temperature": None, "tool_choice": "auto", "tools": [], "top_p": None, "usage": usage}  # fmt: skip

    def stream_error(self, error: ProxyError) -> bytes:
        return error_event(error.body())


RESPONSES = ResponsesProtocol()


def _items(value: Any) -> list[JsonObject]:
    """The input as items: a string is one user message."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _is_user_message(item: JsonObject) -> bool:
    return item.get("type", "message") == "message" and item.get("role") == "user"


def _plain_text(content: Any) -> str | None:
    """The text of a message, or None when it carries anything but text parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") in _TEXT_PARTS]
    strings = [text for text in texts if isinstance(text, str)]
    return "\n".join(strings) if len(strings) == len(content) else None


def _shown_content(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [part for part in content if isinstance(part, dict)] if isinstance(content, list) else []
    # Images and files are named by type, so an entry with only an image is not shown as empty.
    return "\n".join(
        str(part.get("text")) if part.get("type") in _TEXT_PARTS else f"[{part.get('type')}]" for part in parts
    )
