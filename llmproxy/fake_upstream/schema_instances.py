"""A deterministic instance of a JSON Schema: what the fake answers for tool arguments and structured outputs.

Covers what pydantic, the OpenAI strict-schema helper and the Anthropic SDK emit: `type` (or a list of types),
`properties`/`required`/`additionalProperties`, `enum`, `const`, `anyOf`/`oneOf`/`allOf`, `$ref` into `$defs`
or `definitions` (recursion included), arrays (`items`, `prefixItems`, `minItems`/`maxItems`), string formats and
`minLength`/`maxLength`, number bounds and `multipleOf`, `nullable`. The choices:

- objects get their required properties only; an object left empty that allows undeclared properties carries
  the seed as `input` (the fake's old tool arguments `{"input": <prompt>}`, still valid for such schemas);
- strings are the seed (an example value for a known `format`), fitted to the length bounds; a `pattern` is
  honoured when the seed or one of a few stock strings matches it (best effort, no regex solver);
- numbers are 1 when the bounds allow it, else the nearest valid value; booleans are true;
- a union takes its first non-null branch; deep in a recursive schema, null branches and minimal arrays win.

The Anthropic SDK moves constraints it does not send (`minimum`, `maxLength`, ...) into a `{key: value, ...}`
suffix of the description; those hints are read back as constraints, as the real model would heed them.
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llmproxy.fake_upstream.schema_strings import string_instance

Schema = Mapping[str, object]

SHALLOW_DEPTH = 6  # below this nesting, prefer null branches and minimal arrays: recursion must end
MAX_DEPTH = 32
NUMERIC_HINTS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength")
HINT_KEYS = (*NUMERIC_HINTS, "minItems", "maxItems", "minProperties", "pattern")
_HINTS = re.compile(r"\{(.*)\}\s*$", re.DOTALL)
_HINT_SPLIT = re.compile(r"(?:^|, )(" + "|".join(HINT_KEYS) + r"): ")
_TYPE_HINTS = (
    ("object", ("properties", "required", "additionalProperties")),
    ("array", ("items", "prefixItems", "minItems", "maxItems")),
    ("string", ("minLength", "maxLength", "pattern", "format")),
    ("number", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")),
)


@dataclass(frozen=True, slots=True)
class _Context:
    root: Schema
    seed: str
    depth: int = 0

    def deeper(self) -> "_Context":
        return _Context(self.root, self.seed, self.depth + 1)


def instance_of(schema: object, seed: str) -> object:
    """A JSON value valid under `schema` (a JSON Schema document), built around the `seed` text."""
    root = schema if isinstance(schema, Mapping) else {}
    return _instance(schema, _Context(root, seed or "fake"), variant=0)


def _instance(schema: object, context: _Context, variant: int) -> object:
    if not isinstance(schema, Mapping) or context.depth > MAX_DEPTH:
        return context.seed if schema is not False else None
    schema = _resolved(schema, context)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[variant % len(enum)]
    branches = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(branches, list) and branches:
        rest = {key: value for key, value in schema.items() if key not in ("anyOf", "oneOf")}
        return _instance(_merged(rest, _branch(branches, context)), context.deeper(), variant)
    kind = _kind(schema, context)
    if kind == "null":
        return None
    if kind == "object":
        return _object(schema, context.deeper())
    if kind == "array":
        return _array(schema, context.deeper())
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer", variant)
    if kind == "boolean":
        return variant % 2 == 0
    return string_instance(schema, context.seed, variant)


def _resolved(schema: Schema, context: _Context) -> Schema:
    """The schema with its `$ref` and `allOf` parts folded in and description hints read."""
    schema = _with_hints(schema)
    ref = schema.get("$ref")
    if isinstance(ref, str):
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        return _merged(_resolved(_target(ref, context.root), context), rest)
    parts = schema.get("allOf")
    if isinstance(parts, list) and parts:
        merged: Schema = {key: value for key, value in schema.items() if key != "allOf"}
        for part in parts:
            if isinstance(part, Mapping):
                merged = _merged(merged, _resolved(part, context))
        return merged
    return schema


def _target(ref: str, root: Schema) -> Schema:
    """The schema a local `#/...` reference points at (an empty schema for anything else)."""
    if not ref.startswith("#"):
        return {}
    node: object = root
    for token in filter(None, ref[1:].split("/")):
        step = token.replace("~1", "/").replace("~0", "~")
        node = node.get(step) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _merged(base: Schema, extra: Schema) -> Schema:
    """Both schemas' constraints: properties and required lists are united, other keys of `extra` win."""
    merged = {**base, **extra}
    base_props, extra_props = base.get("properties"), extra.get("properties")
    if isinstance(base_props, Mapping) and isinstance(extra_props, Mapping):
        merged["properties"] = {**base_props, **extra_props}
    base_required, extra_required = base.get("required"), extra.get("required")
    if isinstance(base_required, list) and isinstance(extra_required, list):
        merged["required"] = list(dict.fromkeys([*base_required, *extra_required]))
    return merged


def _branch(branches: Sequence[object], context: _Context) -> Schema:
    """The union branch to follow: the first non-null one, or the null one once deep in a recursive schema."""
    schemas = [_resolved(branch, context) for branch in branches if isinstance(branch, Mapping)]
    nulls = [schema for schema in schemas if schema.get("type") == "null"]
    others = [schema for schema in schemas if schema.get("type") != "null"]
    if context.depth >= SHALLOW_DEPTH and nulls:
        return nulls[0]
    return (others or nulls or [{}])[0]


def _kind(schema: Schema, context: _Context) -> str | None:
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list):
        kinds = [kind for kind in declared if isinstance(kind, str)]
        real = [kind for kind in kinds if kind != "null"]
        if context.depth >= SHALLOW_DEPTH and "null" in kinds:
            return "null"
        return next(iter(real or kinds), None)
    return next((kind for kind, keys in _TYPE_HINTS if any(key in schema for key in keys)), None)


def _object(schema: Schema, context: _Context) -> dict[str, object]:
    properties = _mapping(schema.get("properties"))
    extra = schema.get("additionalProperties", True)
    open_to_extra = extra is not False and "propertyNames" not in schema and "patternProperties" not in schema
    required = [name for name in _strings(schema.get("required")) if name in properties or open_to_extra]
    value = {name: _instance(properties.get(name, extra), context, 0) for name in required}
    wanted = _int(schema, "minProperties") or 0
    for name, property_schema in properties.items():
        if len(value) >= wanted:
            break
        value.setdefault(name, _instance(property_schema, context, 0))
    if not value and open_to_extra and context.depth < SHALLOW_DEPTH:
        value["input"] = _instance(properties.get("input", extra), context, 0)
    return value


def _array(schema: Schema, context: _Context) -> list[object]:
    prefix = schema.get("prefixItems", schema.get("items") if isinstance(schema.get("items"), list) else None)
    prefix = prefix if isinstance(prefix, list) else []
    items = schema.get("items") if isinstance(schema.get("items"), Mapping) else schema.get("additionalItems", {})
    count = max(_int(schema, "minItems") or 0, len(prefix), 0 if context.depth >= SHALLOW_DEPTH else 1)
    limit = _int(schema, "maxItems")
    if items is False:
        limit = len(prefix) if limit is None else min(limit, len(prefix))
    count = count if limit is None else min(count, limit)
    return [_instance(prefix[i] if i < len(prefix) else items, context, i) for i in range(count)]


def _number(schema: Schema, integer: bool, variant: int) -> int | float:
    """1 (plus the variant) when the bounds allow it, else the nearest value inside them."""
    step = _float(schema, "multipleOf")
    if integer or step is not None:
        unit = step if step is not None and step > 0 else 1.0
        low, high = _bounds(schema, unit)
        k = max(low, min(high, math.ceil((1 + variant) / unit)))
        value = k * unit
        return int(value) if integer or value.is_integer() else round(value, 12)
    return _real(schema, 1.0 + variant)


def _bounds(schema: Schema, unit: float) -> tuple[float, float]:
    """The smallest and largest multiplier k such that k * unit satisfies the bounds."""
    low, high = -math.inf, math.inf
    minimum, maximum = _float(schema, "minimum"), _float(schema, "maximum")
    above, below = _exclusive(schema, "exclusiveMinimum", minimum), _exclusive(schema, "exclusiveMaximum", maximum)
    if minimum is not None:
        low = math.ceil(minimum / unit)
    if above is not None:
        low = max(low, math.floor(above / unit) + 1)
    if maximum is not None:
        high = math.floor(maximum / unit)
    if below is not None:
        high = min(high, math.ceil(below / unit) - 1)
    return low, max(low, high)


def _real(schema: Schema, preferred: float) -> float:
    minimum, maximum = _float(schema, "minimum"), _float(schema, "maximum")
    above, below = _exclusive(schema, "exclusiveMinimum", minimum), _exclusive(schema, "exclusiveMaximum", maximum)
    low = max((value for value in (minimum, above) if value is not None), default=-math.inf)
    high = min((value for value in (maximum, below) if value is not None), default=math.inf)
    fits = (preferred > low if above is not None else preferred >= low) and (
        preferred < high if below is not None else preferred <= high
    )
    if fits:
        return preferred
    if math.isfinite(low) and math.isfinite(high):
        return (low + high) / 2
    return low + 1 if math.isfinite(low) else high - 1


def _exclusive(schema: Schema, key: str, inclusive: float | None) -> float | None:
    """An exclusive bound: a number (draft 6+) or `true` beside the inclusive one (draft 4)."""
    if schema.get(key) is True:
        return inclusive
    return _float(schema, key)


def _with_hints(schema: Schema) -> Schema:
    description = schema.get("description")
    found = _HINTS.search(description) if isinstance(description, str) else None
    if found is None:
        return schema
    parts = _HINT_SPLIT.split(found.group(1))
    hints: dict[str, object] = {}
    for key, raw in zip(parts[1::2], parts[2::2], strict=True):
        # Other keys the SDK moved (a discriminator, a default) stay in the last value: cut them off.
        raw = raw if key == "pattern" else raw.partition(",")[0].strip()
        if key in schema:
            continue
        if key == "pattern":
            hints[key] = raw
        elif _is_number(raw):
            hints[key] = float(raw) if "." in raw or "e" in raw.lower() else int(raw)
    return {**schema, **hints} if hints else schema


def _is_number(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _int(schema: Schema, key: str) -> int | None:
    value = schema.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(schema: Schema, key: str) -> float | None:
    value = schema.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
