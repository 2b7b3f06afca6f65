"""JSON request bodies, for every protocol: decoding within a nesting limit, strict validation of the checked
fields, and validation errors as 400s (pure)."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from llmproxy.errors import InvalidRequestError
from llmproxy.jsontypes import JsonObject

# orjson encodes at most 254 levels and the proxy re-encodes bodies (the cache key, a rewritten model) a few
# levels deeper; real schemas and conversations stay far below this.
MAX_JSON_DEPTH = 128


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


class StrictBody(BaseModel):
    """The checked fields of a request body; every other field is kept for the upstream to judge."""

    # strict: "true" is not a boolean and "0.5" is not a number, as in OpenAI's and Anthropic's own APIs.
    model_config = ConfigDict(strict=True, extra="allow")


Validated = TypeVar("Validated", bound=StrictBody)


def validated(model: type[Validated], raw: bytes) -> tuple[JsonObject, Validated]:
    """The decoded body and its validated view.

    Raises:
        InvalidRequestError: the body is not JSON, not an object, or a field is missing or mistyped.
    """
    body = decode_json_object(raw)
    try:
        return body, model.model_validate(body)
    except ValidationError as exc:
        raise invalid_request_from(exc) from exc


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
    """Turn the first validation problem into a 400 naming the parameter."""
    error = exc.errors()[0]
    param = ".".join(str(part) for part in error["loc"]) or None
    if error["type"] == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    return InvalidRequestError(f"Invalid value for '{param}': {error['msg']}.", param=param, code="invalid_value")
