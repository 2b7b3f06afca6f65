"""Slow clients cannot hold connections: a body read deadline (408) and a header deadline (issue 11, item 10).

Raw sockets against a real proxy started with short deadlines. Socket timeouts are many times the deadlines:
they only keep a broken build from hanging, the assertions are about what the server did.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack

import httpx
import orjson
import pytest

from tests.support.admin import ADMIN_TOKEN
from tests.support.keepalive import RawResponse, closed_by_server, connect, read_response

DEADLINE_S = 0.5
SOCKET_TIMEOUT_S = 20 * DEADLINE_S
SLOW_SETTINGS = {"server": {"header_timeout_s": DEADLINE_S, "body_read_timeout_s": DEADLINE_S}}
BODY_ROUTES = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/echo/upload", "/admin/invalidate"]
HEAD = b"host: proxy\r\ncontent-type: application/json\r\nauthorization: Bearer " + ADMIN_TOKEN.encode() + b"\r\n"


@pytest.fixture
def proxy(start_proxy: Callable[..., AbstractContextManager[str]]) -> Iterator[str]:
    with start_proxy(**SLOW_SETTINGS, admin={"token": ADMIN_TOKEN}) as url:
        yield url


def open_socket(url: str) -> socket.socket:
    return connect(url, SOCKET_TIMEOUT_S)


def trickle_until_answered(sock: socket.socket, byte: bytes) -> bytes:
    """Send one byte every fifth of the deadline until the proxy answers; the start of its answer."""
    sock.settimeout(DEADLINE_S / 5)
    started = time.monotonic()
    head = b""
    while time.monotonic() - started < SOCKET_TIMEOUT_S:
        sock.sendall(byte)
        try:
            head = sock.recv(65536)
            break
        except TimeoutError:
            continue
    sock.settimeout(SOCKET_TIMEOUT_S)
    return head


def assert_request_timeout(response: RawResponse) -> None:
    assert response.status == 408, (response.status, response.body[:300])
    assert response.headers["content-type"].startswith("application/json")
    error = orjson.loads(response.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "request_timeout" and error["type"] == "invalid_request_error"
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_body_shorter_than_its_content_length_is_a_408(proxy: str, path: str) -> None:
    with open_socket(proxy) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\n".encode() + HEAD + b'content-length: 1000\r\n\r\n{"model": ')
        assert_request_timeout(read_response(sock))
        assert closed_by_server(sock)


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_unterminated_chunked_body_is_a_408(proxy: str, path: str) -> None:
    with open_socket(proxy) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\n".encode() + HEAD + b'transfer-encoding: chunked\r\n\r\n9\r\n{"model":\r\n'
        )
        assert_request_timeout(read_response(sock))
        assert closed_by_server(sock)


def test_body_trickled_past_the_deadline_is_a_408(proxy: str) -> None:
    # Every byte arrives well within the deadline, but the whole body does not: the deadline is for all of it.
    with open_socket(proxy) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n" + HEAD + b"content-length: 1000\r\n\r\n")
        head = trickle_until_answered(sock, b" ")
        assert head.startswith(b"HTTP/1.1 408 ")


def test_slow_body_on_a_route_that_does_not_read_it_is_closed(proxy: str) -> None:
    # /healthz answers without reading the body; the rest of it may not keep the connection open forever.
    with open_socket(proxy) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: proxy\r\ncontent-length: 1000\r\n\r\n")
        assert read_response(sock).status == 200
        sock.settimeout(DEADLINE_S / 5)
        started = time.monotonic()
        closed = False
        while not closed and time.monotonic() - started < SOCKET_TIMEOUT_S:
            try:
                sock.sendall(b"x")
                closed = sock.recv(65536) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed


def test_half_a_header_line_is_closed_after_the_header_deadline(proxy: str) -> None:
    with open_socket(proxy) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: pro")
        assert_request_timeout(read_response(sock))
        assert closed_by_server(sock)


def test_connection_that_sends_nothing_is_closed(proxy: str) -> None:
    with open_socket(proxy) as sock:
        assert closed_by_server(sock)


def test_headers_trickled_past_the_deadline_are_a_408(proxy: str) -> None:
    # One byte at a time, each well within the deadline: the header deadline covers the whole header block.
    with open_socket(proxy) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        head = trickle_until_answered(sock, b"x")
        assert head.startswith(b"HTTP/1.1 408 ")


def test_half_a_header_on_a_kept_alive_connection_is_closed(proxy: str) -> None:
    with open_socket(proxy) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: proxy\r\n\r\n")
        assert read_response(sock).status == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\nho")
        assert_request_timeout(read_response(sock))
        assert closed_by_server(sock)


def test_a_hundred_slow_connections_do_not_stop_a_normal_request(proxy: str) -> None:
    with ExitStack() as slow:
        for _ in range(100):
            sock = slow.enter_context(open_socket(proxy))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: pro")
        with open_socket(proxy) as sock:
            body = orjson.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "Still there?"}]})
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\n" + HEAD + f"content-length: {len(body)}\r\n\r\n".encode()
            )
            sock.sendall(body)
            response = read_response(sock)
        assert response.status == 200, response.body[:300]
        assert "choices" in orjson.loads(response.body)


def test_a_request_the_parser_refuses_is_a_400_in_openai_shape(proxy: str) -> None:
    with open_socket(proxy) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: proxy\r\nbad header: 1\r\n\r\n")
        response = read_response(sock)
        assert response.status == 400
        error = orjson.loads(response.body)["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == "invalid_http"
        assert response.headers["connection"] == "close"
        assert closed_by_server(sock)


def test_stalled_passthrough_body_is_no_upstream_failure(
    start_proxy: Callable[..., AbstractContextManager[str]],
) -> None:
    # A client that stops sending is not the upstream's fault: its breaker (opening after one failure here) stays shut.
    with start_proxy(**SLOW_SETTINGS, upstream={"breaker_failure_threshold": 1}) as url, open_socket(url) as sock:
        sock.sendall(b"POST /v1/echo/upload HTTP/1.1\r\n" + HEAD + b"content-length: 100\r\n\r\n{")
        assert_request_timeout(read_response(sock))
        with open_socket(url) as again:
            again.sendall(b"GET /v1/models HTTP/1.1\r\n" + HEAD + b"\r\n")
            assert read_response(again).status == 200


def requests_counted(url: str, endpoint: str) -> float:
    metrics = httpx.get(url + "/metrics").text
    lines = [line for line in metrics.splitlines() if line.startswith("llmproxy_requests_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if f'endpoint="{endpoint}"' in line)


@pytest.mark.parametrize(
    ("path", "endpoint"), [("/v1/chat/completions", "/v1/chat/completions"), ("/v1/echo/upload", "passthrough")]
)
def test_client_leaving_mid_body_is_no_internal_error_nor_upstream_failure(
    start_proxy: Callable[..., AbstractContextManager[str]], caplog: pytest.LogCaptureFixture, path: str, endpoint: str
) -> None:
    with start_proxy(**SLOW_SETTINGS, upstream={"breaker_failure_threshold": 1}) as url:
        with open_socket(url) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\n".encode() + HEAD + b"content-length: 100\r\n\r\n{")
        deadline = time.monotonic() + SOCKET_TIMEOUT_S
        while requests_counted(url, endpoint) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # a poll for the request's end, which /metrics records
        assert requests_counted(url, endpoint) == 1
        assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
        assert httpx.get(url + "/v1/models", headers={"authorization": "Bearer sk-x"}).status_code == 200
