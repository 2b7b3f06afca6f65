"""Whether a 200 from the upstream is an answer at all: a JSON object its protocol does not read as an error (pure).

Gateways and load balancers in front of an OpenAI-compatible API answer 200 with an HTML page, a body cut
short, or an error object. Relayed as a 200, the SDKs fail on it in confusing ways (or hand an error to the
caller as content); the proxy answers such a body with a 502 in the caller's protocol's shape instead, and never
caches it.
"""

from __future__ import annotations

import orjson

from llmproxy.errors import InvalidUpstreamAnswerError
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import WireProtocol

_MESSAGE_CHARS = 300  # of an upstream's error message quoted back


def checked_answer(
    body: bytes, content_type: str, parse_limit: int | None, protocol: WireProtocol
) -> JsonObject | None:
    """The parsed answer of a 200, or None when the body is over `parse_limit` and only its outline was checked.

    Parsing JSON holds the interpreter (orjson keeps the GIL, so a worker thread would not free the event
    loop): a body too large to be cached anyway is only checked to start with `{` and end with `}`.

    Raises:
        InvalidUpstreamAnswerError: the body is not a JSON object (truncated, HTML, ...) or is an error object.
    """
    if parse_limit is not None and len(body) > parse_limit:
        if body.lstrip()[:1] != b"{" or body.rstrip()[-1:] != b"}":
            raise _not_json(content_type)
        return None
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _not_json(content_type) from exc
    if not isinstance(answer, dict):
        raise _not_json(content_type)
    error = protocol.answer_error(answer)
    if error is not None:
        raise InvalidUpstreamAnswerError(f"The upstream API answered 200 with an error: {error[:_MESSAGE_CHARS]}")
    return answer


def _not_json(content_type: str) -> InvalidUpstreamAnswerError:
    kind = content_type.partition(";")[0].strip() or "no content type"
    return InvalidUpstreamAnswerError(f"The upstream API answered 200 with a body that is not a JSON answer ({kind}).")
