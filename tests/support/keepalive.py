"""HTTP helpers for tests of bad input: one keep-alive connection that can tell whether the server kept it."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import httpx

from tests.support.upstream import FakeUpstream

RawHeaders = Sequence[tuple[bytes, bytes]]
ERROR_FIELDS = {"message", "type", "param", "code"}


class OneConnection:
    """An httpx client held to a single TCP connection, so a request can be checked to leave it usable."""

    def __init__(self, base_url: str, api_key: str, fake: FakeUpstream, timeout_s: float = 30.0) -> None:
        self._api_key = api_key
        self._client = httpx.Client(
            base_url=base_url,
            headers=fake.headers,  # its upstream calls count in the test's recorder
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=timeout_s,
        )
        self._local_address: object = None

    def send(self, method: str, path: str, content: bytes = b"", headers: RawHeaders = ()) -> httpx.Response:
        """One request with the test's API key (unless `headers` carry an Authorization) and a JSON content type."""
        names = {name.lower() for name, _ in headers}
        extra = [] if b"authorization" in names else [(b"authorization", f"Bearer {self._api_key}".encode())]
        if b"content-type" not in names:
            extra.append((b"content-type", b"application/json"))
        response = self._client.request(method, path, content=content, headers=[*headers, *extra])
        self._local_address = _local_address(response)
        return response

    def still_usable(self) -> bool:
        """Whether the next request (GET /healthz) is answered over the same connection as the last one."""
        before = self._local_address
        response = self._client.get("/healthz")
        return response.status_code == 200 and _local_address(response) == before

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OneConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _local_address(response: httpx.Response) -> object:
    # The client side's (host, port): a new connection has a new port.
    return response.extensions["network_stream"].get_extra_info("client_addr")


def assert_error_shape(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """The response is a 4xx (or the given status) in OpenAI's error JSON shape; returns its error object."""
    if status is None:
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    else:
        assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == ERROR_FIELDS
    assert isinstance(error["message"], str) and error["message"]
    return error


class RawResponse:
    """A response read off a raw socket: status, lower-cased headers and the body (Content-Length framed)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def read_response(sock: socket.socket) -> RawResponse:
    """Read one Content-Length-framed HTTP/1.1 response from sock.

    Raises:
        ConnectionError: the server closed the connection before a whole response arrived.
    """
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += _receive(sock)
    head, _, body = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        body += _receive(sock)
    return RawResponse(int(status_line.split()[1]), headers, body[:length])


def _receive(sock: socket.socket) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("the server closed the connection")
    return data


def connect(base_url: str, timeout_s: float = 30.0) -> socket.socket:
    """A TCP connection to the server of an http://host:port URL."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    return socket.create_connection((host, int(port)), timeout=timeout_s)


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (a read returns end-of-file or a reset)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
