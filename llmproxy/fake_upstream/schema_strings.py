"""String instances of a JSON Schema: the seed text or a format's example, fitted to length and pattern."""

import re
from collections.abc import Mapping

# Values pydantic, jsonschema's format checker and the Anthropic structured-output formats all accept.
FORMAT_EXAMPLES: Mapping[str, str] = {
    "date-time": "2024-01-01T12:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00Z",
    "duration": "P1D",
    "email": "fake@example.com",
    "idn-email": "fake@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/fake",
    "iri": "https://example.com/fake",
    "uri-reference": "https://example.com/fake",
    "iri-reference": "https://example.com/fake",
    "url": "https://example.com/fake",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",  # a version 4 UUID, for pydantic's UUID4 too
    "json-pointer": "/fake",
    "regex": "fake",
}
# Tried in turn when neither the seed nor a format example matches a `pattern`.
STOCK_STRINGS = ("fake", "a", "A", "0", "abc", "ABC", "123", "a1", "fake_1", "fake-1", "2024-01-01", "+10000000000")


def string_instance(schema: Mapping[str, object], seed: str, variant: int) -> str:
    """The seed (with the variant's number), a format example, or a stock string, within the schema's bounds."""
    format_name = schema.get("format")
    example = FORMAT_EXAMPLES.get(format_name) if isinstance(format_name, str) else None
    base = example or (seed if variant == 0 else f"{seed} {variant + 1}")
    pattern = schema.get("pattern")
    candidates = (base, *STOCK_STRINGS) if isinstance(pattern, str) else (base,)
    fitted = [_fit(candidate, schema) for candidate in candidates]
    return next((value for value in fitted if _matches(pattern, value)), fitted[0])


def _fit(value: str, schema: Mapping[str, object]) -> str:
    """The value padded with copies of itself up to `minLength` and cut at `maxLength`."""
    shortest, longest = _length(schema, "minLength"), _length(schema, "maxLength")
    filler = value or "x"
    while shortest is not None and len(value) < shortest:
        value = f"{value} {filler}" if value else filler
    if longest is None or len(value) <= longest:
        return value
    cut = value[:longest]
    # A cut that ends in a space reads as a mistake; drop it when the lower bound allows.
    return cut.rstrip() if len(cut.rstrip()) >= (shortest or 0) else cut


def _matches(pattern: object, value: str) -> bool:
    if not isinstance(pattern, str):
        return True
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # a pattern Python cannot read (ECMA-only syntax) is not ours to judge


def _length(schema: Mapping[str, object], key: str) -> int | None:
    value = schema.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
