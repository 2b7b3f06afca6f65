"""What the OpenAI protocols share: strict validation of the few checked fields, the fields left out of the key,
the error shape, token usage, and the body sent upstream (pure).

Only what the proxy relies on is checked (model, the prompt, stream flags and the types of common parameters);
every other field is forwarded as the caller sent it, for the upstream to judge.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field

from llmproxy.errors import ProxyError, error_body
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest, WireProtocol
from llmproxy.protocols.json_body import StrictBody
from llmproxy.streaming.sse import encode_event
from llmproxy.trace import TokenUsage

# Delivery, attribution and storage hints; none of them changes what the model answers.
NON_ANSWER_FIELDS = frozenset(
    {"stream", "stream_options", "user", "safety_identifier", "metadata", "store", "service_tier", "prompt_cache_key"}
)


class StreamOptions(StrictBody):
    include_usage: bool | None = None


class GenerationRequest(StrictBody):
    """The fields chat completions and completions share."""

    model: str = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=0)
    seed: int | None = None


def include_usage(parsed: ParsedRequest) -> bool:
    """Whether the caller asked its stream for the usage chunk (`stream_options.include_usage`)."""
    options = parsed.body.get("stream_options")
    return parsed.stream and isinstance(options, dict) and options.get("include_usage") is True


class OpenAIProtocol(WireProtocol):
    """The OpenAI rules every OpenAI endpoint follows; subclasses add parsing, views and answers."""

    def key_fields(self, body: JsonObject) -> JsonObject:
        # Unknown fields are kept: an unknown parameter may change the answer, and a needless miss is cheaper
        # than a wrong hit.
        return {key: value for key, value in body.items() if key not in NON_ANSWER_FIELDS}

    def upstream_body(self, parsed: ParsedRequest, *, model: str | None, want_usage: bool) -> bytes | None:
        ask_usage = parsed.stream and want_usage and not include_usage(parsed)
        if model is None and not ask_usage:
            return None
        changed = dict(parsed.body)
        if model is not None:
            changed["model"] = model
        if ask_usage:
            options = parsed.body.get("stream_options") or {}
            changed["stream_options"] = {**options, "include_usage": True}
        return orjson.dumps(changed)

    def answer_error(self, answer: JsonObject) -> str | None:
        # Some OpenAI-compatible servers answer errors with status 200.
        error = answer.get("error")
        if error is None:
            return None
        message = error.get("message") if isinstance(error, dict) else error
        return str(message) if message else "(no message)"

    def usage(self, answer: JsonObject) -> TokenUsage | None:
        usage: Any = answer.get("usage")
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens", 0)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        return TokenUsage(prompt_tokens=prompt, completion_tokens=completion)

    def refusal(self, status: int, message: str, code: str) -> JsonObject:
        return error_body(message, "invalid_request_error", code=code)

    def error_body(self, error: ProxyError) -> JsonObject:
        return error.body()

    def stream_error(self, error: ProxyError) -> bytes:
        return encode_event(error.body())


def shown_texts(value: Any, limit: int) -> str:
    """A prompt or input for display: a string, strings joined by lines (stopping past `limit`), else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        joined: list[str] = []
        size = 0
        for item in value:  # stop early: an embedding batch may hold thousands of inputs
            joined.append(item)
            size += len(item) + 1
            if size > limit:
                break
        return "\n".join(joined)
    if value is None:
        return ""
    return orjson.dumps(value).decode()[: limit + 1]  # token arrays: shown as JSON
