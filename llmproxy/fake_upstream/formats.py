"""The answer formats a request may ask for, and the fake's text answer in each.

`text` is the reply as is; `json_object` is `{"reply": <text>}`; `json_schema` is an instance of the schema
built around the reply text (see `schema_instances`). JSON answers keep the spaces after `,` and `:`, so a
stream still carries them in several deltas.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from llmproxy.fake_upstream.errors import RequestRejected
from llmproxy.fake_upstream.schema_instances import instance_of

FormatKind = Literal["text", "json_object", "json_schema"]


@dataclass(frozen=True, slots=True)
class AnswerFormat:
    """The shape of a text answer."""

    kind: FormatKind = "text"
    schema: Mapping[str, object] = field(default_factory=dict)


TEXT = AnswerFormat()


def read_format(spec: object, param: str) -> AnswerFormat:
    """The format a `response_format` (chat), `text.format` (Responses) or `output_config.format` (Anthropic) names.

    Chat nests the schema under `json_schema.schema`; the others carry `schema` directly.

    Raises:
        RequestRejected: the format is not one of the three, or a `json_schema` format has no schema object.
    """
    if spec is None:
        return TEXT
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if kind == "text":
        return TEXT
    if kind == "json_object":
        return AnswerFormat("json_object")
    if kind != "json_schema" or not isinstance(spec, Mapping):
        raise RequestRejected(400, f"{param}.type must be 'text', 'json_object' or 'json_schema'", param=param)
    nested = spec.get("json_schema")
    schema = nested.get("schema") if isinstance(nested, Mapping) else spec.get("schema")
    if not isinstance(schema, Mapping):
        raise RequestRejected(400, f"{param} of type json_schema needs a schema object", param=param)
    return AnswerFormat("json_schema", schema)


def formatted(reply: str, answer_format: AnswerFormat) -> str:
    """The answer text in the requested format."""
    if answer_format.kind == "json_object":
        return json.dumps({"reply": reply}, ensure_ascii=False)
    if answer_format.kind == "json_schema":
        return json.dumps(instance_of(answer_format.schema, reply), ensure_ascii=False)
    return reply
