"""Parses raw JSON request bodies and reads typed fields, rejecting what OpenAI would reject."""

import orjson

from llmproxy.fake_upstream.errors import RequestRejected

Body = dict[str, object]


def parse_body(raw: bytes) -> Body:
    """The request body as a JSON object.

    Raises:
        RequestRejected: the body is not a JSON object.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestRejected(400, f"We could not parse the JSON body of your request: {exc}") from exc
    if not isinstance(body, dict):
        raise RequestRejected(400, "The request body must be a JSON object.")
    return body


def model_of(body: Body) -> str:
    """The required `model` field.

    Raises:
        RequestRejected: it is missing or not a string.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestRejected(400, "you must provide a model parameter", param="model")
    return model


def optional_int(body: Body, name: str, minimum: int = 0) -> int | None:
    """An optional integer field, at least `minimum`.

    Raises:
        RequestRejected: it is present but not such an integer.
    """
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int or value < minimum:
        raise RequestRejected(400, f"{name} must be an integer >= {minimum}", param=name)
    return value


def include_usage(body: Body) -> bool:
    """Whether `stream_options.include_usage` asks for a final usage chunk."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True
