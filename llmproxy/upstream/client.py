"""Pooled HTTP client for the upstream API: retries and circuit breaker (see attempts), ProxyErrors at this edge.

It speaks aiohttp directly (session.py): the response headers are decoded once, and body chunks are handed on
as aiohttp read them (no re-slicing, no copies), decoded only when the proxy reads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from llmproxy.settings import UpstreamSettings
from llmproxy.upstream.attempts import Answer, Attempts, UpstreamHooks
from llmproxy.upstream.decoding import BodyDecoder
from llmproxy.upstream.failures import TRANSPORT_ERRORS, timeout_error, upstream_error
from llmproxy.upstream.session import UpstreamSession, close

Headers = list[tuple[str, str]]

# RFC 9110 §7.6.1 hop-by-hop headers, plus the ones the HTTP layer recomputes itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Response headers not relayed, as two sets built once (raw relay, or a body the proxy decoded).
_DROPPED_RAW = HOP_BY_HOP | {"date", "server"}
_DROPPED_DECODED = _DROPPED_RAW | {"content-encoding"}


@dataclass(frozen=True, slots=True)
class ApiStyle:
    """How an upstream family addresses its paths and carries the operator's key."""

    path_root: str  # the start of `/v1/...` paths that its base URLs already end with
    key_header: str
    key_prefix: str  # written before the key in `key_header`
    replaced: frozenset[str]  # the caller's credential headers not forwarded when the operator's key is sent


OPENAI_STYLE = ApiStyle("/v1", "authorization", "Bearer ", frozenset({"authorization"}))
# Anthropic base URLs are the server root (`https://api.anthropic.com`), and the key travels as x-api-key; the
# SDK's `auth_token` (Authorization: Bearer) is a credential too, so the operator's key replaces both.
ANTHROPIC_STYLE = ApiStyle("", "x-api-key", "", frozenset({"x-api-key", "authorization"}))


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """A complete upstream response (body already decoded from any content-encoding)."""

    status: int
    headers: Headers
    body: bytes
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Bounds on a relayed event stream of one upstream (its settings)."""

    idle_timeout_s: float  # longest wait for the next data event (keep-alive comments do not count)
    max_event_bytes: int


class UpstreamStream:
    """An upstream response whose body is read as it arrives."""

    def __init__(self, response: aiohttp.ClientResponse, origin: str, attempts: int = 1) -> None:
        self._response = response
        self._origin = origin
        self.attempts = attempts
        self.headers: Headers = text_headers(response.raw_headers)

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def content_type(self) -> str:
        return header_value(self.headers, "content-type")

    async def chunks(self, *, decoded: bool) -> AsyncGenerator[bytes, None]:
        """Body bytes as they arrive: decoded for the proxy to read, raw to relay untouched.

        Raises:
            UpstreamError: the connection broke mid-body.
            UpstreamTimeoutError: the upstream went silent for longer than the read timeout.
        """
        decoder = BodyDecoder(header_value(self.headers, "content-encoding")) if decoded else None
        content = self._response.content
        try:
            if decoder is None or decoder.identity:
                async for chunk in content.iter_any():  # each chunk as the socket delivered it
                    yield chunk
                return
            async for chunk in content.iter_any():
                data = decoder.decode(chunk)
                if data:
                    yield data
            rest = decoder.flush()
            if rest:
                yield rest
        except TRANSPORT_ERRORS as exc:
            raise upstream_error(exc, self._origin) from exc

    async def read(self) -> bytes:
        """The whole (decoded) body.

        Raises:
            UpstreamError: the connection broke mid-body.
        """
        try:
            return decoded_body(self.headers, await self._response.read())
        except TRANSPORT_ERRORS as exc:
            raise upstream_error(exc, self._origin) from exc


class UpstreamClient:
    """Sends requests to one configured base URL (OpenAI-compatible, or Anthropic's) over one connection pool."""

    def __init__(
        self,
        settings: UpstreamSettings,
        hooks: UpstreamHooks | None = None,
        style: ApiStyle = OPENAI_STYLE,
    ) -> None:
        self._base_url = settings.base_url
        self._style = style
        self._origin = urlsplit(settings.base_url).netloc
        self._api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self._dropped: dict[frozenset[str], frozenset[str]] = {}
        self.stream_limits = StreamLimits(settings.read_timeout_s, settings.max_event_bytes)
        self._http = UpstreamSession(settings)
        self._attempts = Attempts(settings, self._origin, hooks or UpstreamHooks())

    async def aclose(self) -> None:
        await self._http.aclose()

    def url_for(self, path: str, query: str = "") -> str:
        """Upstream URL of a `/v1/...` path: `/v1/models` → `<base_url>/models` (Anthropic: `<base_url>/v1/models`)."""
        suffix = path.removeprefix(self._style.path_root)
        return f"{self._base_url}{suffix}" + (f"?{query}" if query else "")

    def outgoing_headers(self, incoming: Iterable[tuple[str, str]], *, drop: frozenset[str]) -> Headers:
        """Client headers minus hop-by-hop and `drop`, with the configured key if there is one."""
        dropped = self._dropped.get(drop)
        if dropped is None:  # one set per caller's `drop`, built once: not a union per header per request
            replaced = self._style.replaced if self._api_key else frozenset()
            dropped = self._dropped[drop] = HOP_BY_HOP | drop | replaced
        headers = [(name, value) for name, value in incoming if name.lower() not in dropped]
        if self._api_key is not None:
            headers.append((self._style.key_header, self._style.key_prefix + self._api_key))
        return headers

    async def send(self, method: str, path: str, headers: Headers, content: bytes) -> UpstreamReply:
        """One request, retried where safe, body read completely.

        Raises:
            UpstreamUnavailableError: the upstream's circuit breaker is open (503); it was not called.
            UpstreamError: the upstream could not be reached or broke the connection.
            UpstreamTimeoutError: it did not answer within total_timeout_s (or went silent for read_timeout_s).
        """

        url = self.url_for(path)
        sent = wire_headers(headers)

        def send() -> Awaitable[aiohttp.ClientResponse]:
            return self._http.request(method, url, sent, content)

        answer = await self._attempts.answer(send, replayable=True)
        try:
            received = text_headers(answer.response.raw_headers)
            body = decoded_body(received, await self._read_body(answer))
        except TRANSPORT_ERRORS as exc:
            raise upstream_error(exc, self._origin) from exc
        finally:
            await close(answer.response)
        return UpstreamReply(answer.response.status, received, body, answer.attempts)

    def open(
        self, method: str, path: str, query: str, headers: Headers, content: bytes | AsyncIterator[bytes]
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        """A request whose response body is streamed; closing the context releases the connection.

        Retried (where safe, and only when `content` is bytes: a streamed body cannot be sent twice) until
        the response headers; the body is then the caller's, bounded by read_timeout_s between bytes.

        Raises (on entering the context):
            UpstreamUnavailableError: the upstream's circuit breaker is open (503); it was not called.
            UpstreamError: the upstream could not be reached.
            UpstreamTimeoutError: no response headers within total_timeout_s.
        """
        return self._open(method, self.url_for(path, query), headers, content)

    @asynccontextmanager
    async def _open(
        self, method: str, url: str, headers: Headers, content: bytes | AsyncIterator[bytes]
    ) -> AsyncIterator[UpstreamStream]:
        sent = wire_headers(headers)

        def send() -> Awaitable[aiohttp.ClientResponse]:
            return self._http.request(method, url, sent, content)

        answer = await self._attempts.answer(send, replayable=isinstance(content, bytes))
        try:
            yield UpstreamStream(answer.response, self._origin, answer.attempts)
        finally:
            await close(answer.response)

    async def _read_body(self, answer: Answer) -> bytes:
        # aiohttp's socket timeouts are TimeoutErrors too: they are the caller's to map (a read timeout, 504).
        try:
            async with asyncio.timeout(answer.remaining_s()):
                return await answer.response.read()
        except TRANSPORT_ERRORS:
            raise
        except TimeoutError as exc:
            raise timeout_error(self._origin) from exc


def wire_headers(headers: Headers) -> Headers:
    """Header values as the text aiohttp sends upstream (it writes header text as UTF-8).

    Values arrive decoded as ISO-8859-1 (ASCII in practice). A value whose bytes are UTF-8 is sent unchanged;
    other bytes are read as ISO-8859-1 text, HTTP's historical charset, and sent as its UTF-8.
    """
    return [(name, value if value.isascii() else _wire_value(value)) for name, value in headers]


def _wire_value(value: str) -> str:
    try:
        return value.encode("latin-1").decode("utf-8")  # the bytes the client sent, which are UTF-8
    except UnicodeError:  # not UTF-8 bytes, or text of our own beyond ISO-8859-1 (a configured key)
        return value


def text_headers(raw: tuple[tuple[bytes, bytes], ...]) -> Headers:
    """Response headers as lower-case names and text: ASCII, else UTF-8, else ISO-8859-1 (as httpx read them)."""
    for encoding in ("ascii", "utf-8"):
        try:
            return [(name.decode(encoding).lower(), value.decode(encoding)) for name, value in raw]
        except UnicodeDecodeError:
            continue
    return [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in raw]


def header_value(headers: Headers, name: str) -> str:
    """The values of a (lower-case) header name, joined by ", "; "" when absent."""
    return ", ".join(value for key, value in headers if key == name)


def decoded_body(headers: Headers, body: bytes) -> bytes:
    """A whole body decoded from its Content-Encoding.

    Raises:
        DecodingError: the body is not valid in that encoding.
    """
    decoder = BodyDecoder(header_value(headers, "content-encoding"))
    if decoder.identity:
        return body
    return decoder.decode(body) + decoder.flush()


def relayable_headers(headers: Iterable[tuple[str, str]], *, decoded: bool) -> Headers:
    """Upstream response headers safe to send on: no hop-by-hop, and no encoding/length of a body we decoded.

    `date` and `server` are left out too: the proxy's own HTTP server sets them.
    """
    dropped = _DROPPED_DECODED if decoded else _DROPPED_RAW
    return [(name, value) for name, value in headers if name.lower() not in dropped]
