"""Malformed or unusual input is a 4xx in OpenAI's error shape (or, when valid, a normal answer), never a 500,
and the keep-alive connection it came on answers the next request.

Each case was a 500 with a dropped connection before its fix (issue 11, item 9).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.support.admin import AdminProxy
from tests.support.keepalive import (
    OneConnection,
    RawHeaders,
    assert_error_shape,
    closed_by_server,
    connect,
    read_response,
)
from tests.support.upstream import FakeUpstream

CHAT = "/v1/chat/completions"


@pytest.fixture
def connection(proxy_url: str, api_key: str, upstream: FakeUpstream) -> Iterator[OneConnection]:
    with OneConnection(proxy_url, api_key, upstream) as held:
        yield held


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def chat_body(**fields: Any) -> dict[str, Any]:
    # A question of its own, so every case is a miss that reaches the upstream.
    messages = [{"role": "user", "content": f"Question {uuid.uuid4().hex}?"}]
    return {"model": "fake-model", "messages": messages, **fields}


def with_tool_schema(schema: bytes) -> bytes:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": "@SCHEMA@"}}
    return orjson.dumps(chat_body(tools=[tool])).replace(b'"@SCHEMA@"', schema)


def huge_number_schema(number: bytes) -> bytes:
    return b'{"type": "object", "properties": {"n": {"type": "integer", "maximum": ' + number + b"}}}"


@pytest.mark.parametrize(
    "number",
    [b"18446744073709551616", b"-9223372036854775809", b"1e20", b"123456789012345678901234567890"],
    ids=["2^64", "below-int64", "1e20", "30-digits"],
)
def test_huge_numbers_in_a_tool_schema_are_answered(
    connection: OneConnection, upstream: FakeUpstream, number: bytes
) -> None:
    response = connection.send("POST", CHAT, with_tool_schema(huge_number_schema(number)))
    assert response.status_code == 200, response.text
    assert upstream.calls() == 1
    assert number in upstream.requests()[-1]["body"].encode(), "the body is forwarded as the caller wrote it"
    assert connection.still_usable()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", b'{"model": "fake-model", "prompt": "count", "logit_bias": {"42": 1e20}}'),
        ("/v1/embeddings", b'{"model": "fake-embed", "input": "count", "extra": [18446744073709551616]}'),
    ],
    ids=["completions", "embeddings"],
)
def test_huge_numbers_anywhere_in_other_bodies_are_answered(
    connection: OneConnection, upstream: FakeUpstream, path: str, body: bytes
) -> None:
    response = connection.send("POST", path, body)
    assert response.status_code == 200, response.text
    assert upstream.calls(path) == 1
    assert connection.still_usable()


VALID_BODIES = {
    CHAT: b'{"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], ',
    "/v1/completions": b'{"model": "fake-model", "prompt": "p", ',
    "/v1/embeddings": b'{"model": "fake-embed", "input": "i", ',
}


def test_embeddings_with_stream_fields_of_any_type_are_answered(
    connection: OneConnection, upstream: FakeUpstream
) -> None:
    # Found by the long fuzz run: `stream_options` is no parameter of embeddings, so it may be anything.
    body = b'{"model": "fake-embed", "input": "x", "stream": true, "stream_options": 1.5}'
    response = connection.send("POST", "/v1/embeddings", body)
    assert response.status_code == 200, response.text
    assert connection.still_usable()


@pytest.mark.parametrize("depth", [300, 1000], ids=["300-levels", "1000-levels"])
@pytest.mark.parametrize("path", list(VALID_BODIES))
def test_deeply_nested_json_is_a_400(connection: OneConnection, upstream: FakeUpstream, path: str, depth: int) -> None:
    body = VALID_BODIES[path] + b'"extra": ' + nested(depth) + b"}"
    error = assert_error_shape(connection.send("POST", path, body), 400)
    assert error["code"] == "invalid_json" and "nested" in error["message"]
    assert upstream.calls(path) == 0
    assert connection.still_usable()


def test_deep_nesting_within_the_limit_is_answered(connection: OneConnection, upstream: FakeUpstream) -> None:
    response = connection.send("POST", CHAT, with_tool_schema(b'{"x": ' + nested(100) + b"}"))
    assert response.status_code == 200, response.text
    assert connection.still_usable()


@pytest.mark.parametrize(
    "part",
    [{"type": "text"}, {"type": "text", "text": 5}, {"type": "text", "text": None}],
    ids=["no-text", "number", "null"],
)
def test_text_part_without_a_text_string_is_a_400(
    connection: OneConnection, upstream: FakeUpstream, part: dict[str, Any]
) -> None:
    body = orjson.dumps({"model": "fake-model", "messages": [{"role": "user", "content": [part]}]})
    error = assert_error_shape(connection.send("POST", CHAT, body), 400)
    assert error["param"] == "messages.0.content" and "part 0" in error["message"]
    assert upstream.calls() == 0
    assert connection.still_usable()


@pytest.mark.parametrize("ttl", [b"\xb2", b"\xb9", b"1\xb3", "²".encode()], ids=["sup2", "sup1", "1sup3", "utf8-sup2"])
def test_ttl_with_a_unicode_digit_is_a_400(connection: OneConnection, ttl: bytes) -> None:
    response = connection.send("POST", CHAT, orjson.dumps(chat_body()), headers=[(b"x-llmproxy-ttl", ttl)])
    error = assert_error_shape(response, 400)
    assert error["param"] == "X-LLMProxy-TTL"
    assert connection.still_usable()


def test_ttl_of_thousands_of_digits_is_clamped_not_refused(connection: OneConnection) -> None:
    response = connection.send("POST", CHAT, orjson.dumps(chat_body()), headers=[(b"x-llmproxy-ttl", b"9" * 5000)])
    assert response.status_code == 200, response.text
    assert connection.still_usable()


@pytest.mark.parametrize(
    ("sent", "received"),
    [(b"caf\xc3\xa9", b"caf\xc3\xa9"), (b"caf\xe9", b"caf\xc3\xa9"), (b"\x80\xff", b"\xc2\x80\xc3\xbf")],
    ids=["utf8", "latin1", "high-bytes"],
)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, orjson.dumps(chat_body())),
        (CHAT, orjson.dumps(chat_body(stream=True))),
        ("/v1/completions", orjson.dumps({"model": "fake-model", "prompt": f"Say {uuid.uuid4().hex}"})),
        ("/v1/embeddings", orjson.dumps({"model": "fake-embed", "input": f"Embed {uuid.uuid4().hex}"})),
        ("/v1/echo/files", b"{}"),
    ],
    ids=["chat", "chat-stream", "completions", "embeddings", "passthrough"],
)
def test_non_ascii_header_bytes_are_forwarded_as_utf8(
    connection: OneConnection, upstream: FakeUpstream, path: str, body: bytes, sent: bytes, received: bytes
) -> None:
    # UTF-8 passes unchanged; other bytes are read as ISO-8859-1 (HTTP's historical charset) and sent as UTF-8.
    response = connection.send("POST", path, body, headers=[(b"x-title", sent)])
    assert response.status_code == 200, response.text
    forwarded = upstream.requests()[-1]["headers"]["x-title"]
    assert forwarded.encode("latin-1") == received  # the fake decodes header bytes as ISO-8859-1
    assert connection.still_usable()


def test_non_ascii_byte_in_the_api_key_reaches_the_upstream(connection: OneConnection, upstream: FakeUpstream) -> None:
    headers: RawHeaders = [(b"authorization", b"Bearer sk-caf\xe9")]
    response = connection.send("POST", CHAT, orjson.dumps(chat_body()), headers=headers)
    assert response.status_code == 200, response.text
    assert connection.still_usable()


def test_passthrough_with_a_non_ascii_header_is_answered(connection: OneConnection, upstream: FakeUpstream) -> None:
    response = connection.send("GET", "/v1/models", headers=[(b"x-title", b"caf\xe9")])
    assert response.status_code == 200, response.text
    assert connection.still_usable()


def test_passthrough_forwards_the_path_as_sent(connection: OneConnection, upstream: FakeUpstream) -> None:
    # Percent-escapes stay escaped: %00 and %2F are the upstream's to interpret, not turned into bytes here.
    response = connection.send("GET", "/v1/echo/files/a%2Fb%00c")
    assert response.status_code == 200, response.text
    assert upstream.requests()[-1]["path"] == "/v1/echo/files/a/b\x00c"
    assert connection.still_usable()


@pytest.mark.parametrize(
    "target",
    [b"/v1/files/%2e%2e/%2e%2e/_stats", b"/v1/../_stats", b"/v1/files/./../../_reset", b"/v1/%2E%2e/_stats"],
    ids=["encoded", "literal", "mixed", "upper"],
)
def test_passthrough_refuses_dot_segments(proxy_url: str, upstream: FakeUpstream, target: bytes) -> None:
    # The upstream URL would otherwise resolve outside its /v1 base (here: the fake's own control endpoints).
    recorder = b"".join(f"{name}: {value}\r\n".encode() for name, value in upstream.headers.items())
    with connect(proxy_url) as sock:
        for _ in range(2):  # the second request proves the connection was kept
            sock.sendall(
                b"GET " + target + b" HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer sk-x\r\n" + recorder + b"\r\n"
            )
            response = read_response(sock)
            assert response.status == 400
            error = orjson.loads(response.body)["error"]
            assert error["code"] == "invalid_path" and error["type"] == "invalid_request_error"
    assert upstream.requests() == []


def test_stats_bucket_beyond_any_window_is_a_400(admin_proxy: AdminProxy) -> None:
    with OneConnection(admin_proxy.url, admin_proxy.token, admin_proxy.fake) as held:
        error = assert_error_shape(held.send("GET", "/admin/stats?bucket=999999999999w"), 400)
        assert error["param"] == "bucket"
        assert held.still_usable()


@pytest.mark.parametrize("path", ["/admin/invalidate", "/admin/flush"])
def test_admin_body_nested_too_deeply_is_a_400(admin_proxy: AdminProxy, path: str) -> None:
    with OneConnection(admin_proxy.url, admin_proxy.token, admin_proxy.fake) as held:
        error = assert_error_shape(held.send("POST", path, b'{"model": ' + nested(300) + b"}"), 400)
        assert error["code"] == "invalid_json"
        assert held.still_usable()


@pytest.mark.parametrize("byte", [0x00, 0x01, 0x08, 0x0B, 0x0C, 0x1F, 0x7F])
def test_control_byte_in_a_header_is_a_400_in_openai_shape(
    proxy_url: str, api_key: str, upstream: FakeUpstream, byte: int
) -> None:
    # The parser refuses it; framing is lost, so the connection closes, and the server keeps answering others.
    with connect(proxy_url) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nhost: proxy\r\nx-title: a" + bytes([byte]) + b"b\r\n\r\n")
        response = read_response(sock)
        assert response.status == 400 and response.headers["connection"] == "close"
        error = orjson.loads(response.body)["error"]
        assert error["code"] == "invalid_http" and error["type"] == "invalid_request_error"
        assert closed_by_server(sock)
    with OneConnection(proxy_url, api_key, upstream) as fresh:
        assert fresh.send("GET", "/v1/models").status_code == 200
