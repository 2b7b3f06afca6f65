"""OpenAI wire shapes: validation of the request bodies the proxy caches.

Only what the proxy relies on is checked (model, the prompt, stream flags and the types of
common parameters); every other field is forwarded as the caller sent it, for the upstream to judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from llmproxy.errors import InvalidRequestError
from llmproxy.jsontypes import JsonObject

EndpointKind = Literal["chat", "completion", "embedding"]

# orjson encodes at most 254 levels and the proxy re-encodes bodies (the cache key, a rewritten model) a few
# levels deeper; real schemas and conversations stay far below this.
MAX_JSON_DEPTH = 128

ENDPOINT_PATHS: dict[EndpointKind, str] = {
    "chat": "/v1/chat/completions",
    "completion": "/v1/completions",
    "embedding": "/v1/embeddings",
}


class _Body(BaseModel):
    # strict: "true" is not a boolean and "0.5" is not a number, as in OpenAI's own API.
    model_config = ConfigDict(strict=True, extra="allow")


class StreamOptions(_Body):
    include_usage: bool | None = None


class ChatMessage(_Body):
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


class _Generation(_Body):
    model: str = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=0)
    seed: int | None = None


class ChatRequest(_Generation):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=0)
    tools: list[JsonObject] | None = None


class CompletionRequest(_Generation):
    prompt: str | list[Any]


class EmbeddingRequest(_Body):
    model: str = Field(min_length=1)
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)


_MODELS: dict[EndpointKind, type[_Body]] = {
    "chat": ChatRequest,
    "completion": CompletionRequest,
    "embedding": EmbeddingRequest,
}


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A validated cacheable request: the raw body plus the few facts the pipeline needs."""

    kind: EndpointKind
    body: JsonObject
    model: str
    stream: bool
    include_usage: bool


def parse_request(kind: EndpointKind, raw: bytes) -> ParsedRequest:
    """Decode and validate a request body.

    Raises:
        InvalidRequestError: the body is not JSON, not an object, or a field is missing or mistyped.
    """
    body = decode_json_object(raw)
    try:
        validated = _MODELS[kind].model_validate(body)
    except ValidationError as exc:
        raise invalid_request_from(exc) from exc
    # Only generations stream: on embeddings, `stream` and `stream_options` are unknown fields of any type.
    generation = validated if isinstance(validated, _Generation) else None
    stream = bool(generation is not None and generation.stream)
    options = generation.stream_options if generation is not None else None
    include_usage = bool(stream and options is not None and options.include_usage)
    return ParsedRequest(kind=kind, body=body, model=body["model"], stream=stream, include_usage=include_usage)


def decode_json_object(raw: bytes) -> JsonObject:
    """Parse a JSON object body.

    Raises:
        InvalidRequestError: not valid JSON, or JSON that is not an object.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"We could not parse the JSON body of your request: {exc}.", code="invalid_json"
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    # Fewer brackets than the limit cannot nest deeper than it: most bodies skip the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and nested_deeper_than(body, MAX_JSON_DEPTH):
        raise InvalidRequestError(
            f"The JSON body of your request is nested more than {MAX_JSON_DEPTH} levels deep.", code="invalid_json"
        )
    return body


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays in value nest more than `limit` levels deep (without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def invalid_request_from(exc: ValidationError) -> InvalidRequestError:
    """Turn the first validation problem into an OpenAI-style 400 naming the parameter."""
    error = exc.errors()[0]
    param = ".".join(str(part) for part in error["loc"]) or None
    if error["type"] == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    return InvalidRequestError(f"Invalid value for '{param}': {error['msg']}.", param=param, code="invalid_value")


def is_complete_answer(kind: EndpointKind, response: JsonObject) -> bool:
    """True for a finished, successful answer: the only kind worth caching.

    Some OpenAI-compatible servers answer errors with status 200, and a generation without a
    finish_reason on every choice was cut short.
    """
    if "error" in response:
        return False
    if kind == "embedding":
        data = response.get("data")
        return isinstance(data, list) and bool(data)
    choices = response.get("choices")
    return (
        isinstance(choices, list)
        and bool(choices)
        and all(isinstance(choice, dict) and choice.get("finish_reason") for choice in choices)
    )


def fixed_answer(kind: EndpointKind, model: str, content: str, answer_id: str, created: int) -> JsonObject:
    """A complete OpenAI response carrying a fixed text (a route's `respond` action)."""
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    if kind == "completion":
        choice: JsonObject = {"index": 0, "text": content, "logprobs": None, "finish_reason": "stop"}
        return {"id": answer_id, "object": "text_completion", "created": created, "model": model,
                "choices": [choice], "usage": usage}  # fmt: skip
    message = {"role": "assistant", "content": content, "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    return {"id": answer_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [choice], "usage": usage}  # fmt: skip
