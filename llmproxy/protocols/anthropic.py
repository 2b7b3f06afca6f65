"""What the Anthropic protocols share: the fields left out of the key (`cache_control` markers among them), the
key headers, the error shape and its types, the body sent upstream, and the helpers that read messages (pure).

Anthropic's errors are `{"type": "error", "error": {"type", "message"}}`, the type following the status; the SDKs
choose their exception class by the status and read the message from the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from llmproxy.errors import ProxyError
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest, WireProtocol, cut, shown_content
from llmproxy.streaming.sse import encode_event

# Delivery and attribution hints; none of them changes what the model answers.
NON_ANSWER_FIELDS = frozenset({"stream", "metadata", "service_tier"})
# Provider prompt-caching breakpoints: where Anthropic may cache the prompt, not what it answers.
CACHE_CONTROL = "cache_control"
# The API's version and beta features change what a body means and what is answered.
ANTHROPIC_VERSION_HEADER = "anthropic-version"
ANTHROPIC_KEY_HEADERS = frozenset({ANTHROPIC_VERSION_HEADER, "anthropic-beta"})

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status_code: int) -> str:
    """The Anthropic error `type` for an HTTP status (other 5xx: api_error, other 4xx: invalid_request_error)."""
    default = "api_error" if status_code >= 500 else "invalid_request_error"
    return ERROR_TYPES.get(status_code, default)


def anthropic_error_body(message: str, error_type: str) -> JsonObject:
    """The Anthropic error envelope."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def without_cache_control(body: JsonObject) -> JsonObject:
    """The body with every `cache_control` marker removed where the API accepts one: the top level, tools,
    system blocks, message content blocks and the blocks inside a tool result.

    Only those places: a tool's input schema may well have a property named `cache_control`, and that one changes
    the answer.
    """
    stripped = {key: value for key, value in body.items() if key != CACHE_CONTROL}
    if isinstance(body.get("tools"), list):
        stripped["tools"] = [_unmarked(tool) for tool in body["tools"]]
    if isinstance(body.get("system"), list):
        stripped["system"] = _unmarked_blocks(body["system"])
    if isinstance(body.get("messages"), list):
        stripped["messages"] = [_unmarked_message(message) for message in body["messages"]]
    return stripped


def _unmarked(item: Any) -> Any:
    if not isinstance(item, dict) or CACHE_CONTROL not in item:
        return item
    return {key: value for key, value in item.items() if key != CACHE_CONTROL}


def _unmarked_blocks(blocks: list[Any]) -> list[Any]:
    unmarked = []
    for block in blocks:
        block = _unmarked(block)
        if isinstance(block, dict) and isinstance(block.get("content"), list):  # a tool_result's own blocks
            block = {**block, "content": _unmarked_blocks(block["content"])}
        unmarked.append(block)
    return unmarked


def _unmarked_message(message: Any) -> Any:
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    return {**message, "content": _unmarked_blocks(message["content"])}


def plain_text(content: Any) -> str | None:
    """The text of a message's content (a string, or text blocks only), or None when it holds anything else."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts = []
    for block in content:
        # A text block with citations or other fields is more than its text.
        if not isinstance(block, dict) or block.get("type") != "text" or set(block) - {"type", "text"}:
            return None
        if not isinstance(block.get("text"), str):
            return None
        texts.append(block["text"])
    return "\n".join(texts)


def latest_user_content(body: JsonObject) -> Any:
    """The content of the latest user message (None when there is none)."""
    messages = body.get("messages")
    turns = [message for message in messages if isinstance(message, dict)] if isinstance(messages, list) else []
    users = [message for message in turns if message.get("role") == "user"]
    return users[-1].get("content") if users else None


class AnthropicProtocol(WireProtocol):
    """The rules every Anthropic endpoint follows; subclasses add parsing, views and answers."""

    upstream_family = "anthropic"
    KEY_HEADERS = ANTHROPIC_KEY_HEADERS

    def key_fields(self, body: JsonObject) -> JsonObject:
        # Unknown fields are kept: an unknown parameter may change the answer, and a needless miss is cheaper
        # than a wrong hit.
        fields = without_cache_control(body)
        return {key: value for key, value in fields.items() if key not in NON_ANSWER_FIELDS}

    def upstream_body(self, parsed: ParsedRequest, *, model: str | None, want_usage: bool) -> bytes | None:
        # Anthropic reports usage on every answer and stream: only a route's model changes the body.
        if model is None:
            return None
        return orjson.dumps({**parsed.body, "model": model})

    def display_prompt(self, body: JsonObject, limit: int) -> str:
        # The latest user message; a request without one still shows its system prompt.
        content = latest_user_content(body)
        return cut(shown_content(body.get("system") if content is None else content), limit)

    def answer_error(self, answer: JsonObject) -> str | None:
        if answer.get("type") != "error":
            return None
        error = answer.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return str(message) if message else "(no message)"

    def refusal(self, status: int, message: str, code: str) -> JsonObject:
        return anthropic_error_body(message, anthropic_error_type(status))

    def error_body(self, error: ProxyError) -> JsonObject:
        return anthropic_error_body(error.message, anthropic_error_type(self.error_status(error)))

    def stream_error(self, error: ProxyError) -> bytes:
        return encode_event(self.error_body(error), event="error")
