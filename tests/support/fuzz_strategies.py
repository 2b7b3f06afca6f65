"""Hypothesis strategies for fuzzing the proxy: request bodies (valid, mutated, arbitrary) and header bytes."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import strategies as st

# Numbers that broke the cache key or JSON encoders: past 64 bits, integral floats, the edges of both.
ODD_NUMBERS: list[Any] = [2**64, 2**64 - 1, -(2**63) - 1, -(2**63), 2**53 + 1, 10**30, 1e20, -1e19, 1e308, 5e-324]
ODD_LITERALS = [b"1e400", b"-1e400", b"NaN", b"Infinity", b"-0", b"1" * 400, b"0." + b"0" * 400 + b"1", b"1E+2"]
ODD_TEXT = ["", "\x00", "\ud800", "\udfff\ud800", "é", "²", "١٢", "\u202e", "\ufeff", "💥💥💥"]

# Fields each endpoint reads, with a valid value; mutations replace, retype or drop them.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "model": "fake-model",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
        "temperature": 0.5,
        "max_tokens": 16,
    },
    "/v1/completions": {"model": "fake-model", "prompt": "Say hello", "max_tokens": 8},
    "/v1/embeddings": {"model": "fake-embed", "input": ["one", "two"]},
    "/v1/responses": {
        "model": "fake-model",
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "What is 2+2?"}]}],
        "max_output_tokens": 16,
    },
}
KNOWN_FIELDS = [
    "model", "messages", "prompt", "input", "stream", "stream_options", "n", "temperature", "top_p", "max_tokens",
    "max_completion_tokens", "seed", "tools", "tool_choice", "response_format", "logit_bias", "stop", "user",
    "encoding_format", "dimensions", "metadata", "store", "instructions", "max_output_tokens", "background",
    "conversation", "previous_response_id",
]  # fmt: skip
ROLES = ["system", "developer", "user", "assistant", "tool", "function", "robot", ""]
PART_TYPES = ["text", "image_url", "input_audio", "file", "refusal", ""]

# Header names the fuzz leaves alone: they frame the request (the test is about the proxy, not the parser),
# or are the fake upstream's fault switches (X-Fake-Status would make it answer a 5xx on purpose).
FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te"})
CONTROL_HEADERS = ["x-llmproxy-ttl", "x-llmproxy-namespace", "x-llmproxy-threshold", "cache-control"]
CONTROL_WORDS = [b"no-cache", b"no-store", b"max-age=0", b"0", b"1", b"60", b"0.1", b"-1", b"1e9", b"nan", b"\xb2"]
_DEEP = re.compile(rb'"@@DEEP:(\d+)@@"')
TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"


def _leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**200), 2**200),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(ODD_NUMBERS),
        st.text(max_size=40),
        st.sampled_from(ODD_TEXT),
        st.integers(1_000, 5_000).map(_long_text),
    )


def _long_text(size: int) -> str:
    return "a" * size


def json_values(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """Any JSON value: odd numbers, odd text, nested arrays and objects."""
    return st.recursive(
        _leaves(),
        lambda children: st.one_of(
            st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)
        ),
        max_leaves=max_leaves,
    )


def _content_parts() -> st.SearchStrategy[Any]:
    part = st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(PART_TYPES), json_values(3))},
        optional={"text": st.one_of(st.text(max_size=30), json_values(3)), "image_url": json_values(3)},
    )
    return st.lists(st.one_of(part, json_values(3)), max_size=4)


def _messages() -> st.SearchStrategy[Any]:
    message = st.fixed_dictionaries(
        {},
        optional={
            "role": st.one_of(st.sampled_from(ROLES), json_values(2)),
            "content": st.one_of(st.text(max_size=60), st.sampled_from(ODD_TEXT), _content_parts(), json_values(4)),
            "name": json_values(2),
            "tool_calls": json_values(6),
        },
    )
    return st.one_of(st.lists(message, max_size=4), json_values(6))


def _nested(depth: int) -> str:
    # A marker that `encoded` turns into `depth` nested arrays (json.dumps itself stops near 1,000 levels).
    return f"@@DEEP:{depth}@@"


@st.composite
def mutated_bodies(draw: st.DrawFn, path: str) -> Any:
    """A valid body of the endpoint with some fields replaced, retyped, nested deeply or dropped."""
    body = dict(VALID_BODIES[path])
    for _ in range(draw(st.integers(1, 4))):
        field = draw(st.sampled_from(KNOWN_FIELDS + ["extra", "tools"]))
        action = draw(st.sampled_from(["value", "odd", "messages", "deep", "drop"]))
        if action == "drop":
            body.pop(field, None)
        elif action == "messages":
            body["messages"] = draw(_messages())
        elif action == "deep":
            body[field] = _nested(draw(st.sampled_from([60, 126, 127, 128, 200, 260, 600, 1100])))
        elif action == "odd":
            body[field] = draw(st.one_of(st.sampled_from(ODD_NUMBERS), st.sampled_from(ODD_TEXT)))
        else:
            body[field] = draw(json_values())
    return body


def encoded(value: Any) -> bytes:
    """JSON bytes of value (lone surrogates escaped as \\uXXXX, as a careless client would send them)."""
    return _DEEP.sub(lambda m: b"[" * int(m[1]) + b"0" + b"]" * int(m[1]), json.dumps(value).encode())


@st.composite
def raw_bodies(draw: st.DrawFn, path: str) -> bytes:
    """Body bytes: an arbitrary or mutated JSON value, or bytes cut, spliced or made of odd number literals."""
    kind = draw(st.sampled_from(["arbitrary", "mutated", "mutated", "cut", "literal", "bytes"]))
    if kind == "arbitrary":
        return encoded(draw(json_values()))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    body = encoded(draw(mutated_bodies(path)))
    if kind == "cut":
        return body[: draw(st.integers(0, len(body)))]
    if kind == "literal":
        # An odd literal in place of a number orjson or the key would have to handle.
        return body[:-1] + b', "n": ' + draw(st.sampled_from(ODD_LITERALS)) + b"}"
    return body


def header_values() -> st.SearchStrategy[bytes]:
    """Valid HTTP field values: visible ASCII and any byte 0x80-0xFF (obs-text), inner spaces and tabs."""
    visible = st.sampled_from([bytes([b]) for b in [*range(0x21, 0x7F), *range(0x80, 0x100)]])
    word = st.lists(visible, min_size=1, max_size=12).map(b"".join)
    words = st.lists(word, min_size=0, max_size=4).map(b" ".join)
    return st.one_of(words, st.sampled_from(CONTROL_WORDS))


def header_names() -> st.SearchStrategy[bytes]:
    name = st.text(TOKEN_CHARS, min_size=1, max_size=20)
    wanted = st.one_of(name, st.sampled_from(CONTROL_HEADERS + ["authorization", "accept-encoding", "user-agent"]))
    return wanted.filter(lambda n: n not in FRAMING_HEADERS and not n.startswith("x-fake-")).map(str.encode)


def headers() -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """Up to six request headers, the proxy's control headers among them, with arbitrary valid bytes."""
    return st.lists(st.tuples(header_names(), header_values()), max_size=6, unique_by=lambda pair: pair[0])
