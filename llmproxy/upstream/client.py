"""Pooled HTTP client for the upstream API: retries and circuit breaker (see attempts), ProxyErrors at this edge."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx

from llmproxy.settings import UpstreamSettings
from llmproxy.upstream.aiohttp_transport import PreciseAiohttpTransport
from llmproxy.upstream.attempts import Answer, Attempts, UpstreamHooks
from llmproxy.upstream.failures import timeout_error, upstream_error

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

    def __init__(self, response: httpx.Response, origin: str, attempts: int = 1) -> None:
        self._response = response
        self._origin = origin
        self.attempts = attempts

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Headers:
        return list(self._response.headers.multi_items())

    @property
    def content_type(self) -> str:
        content_type: str = self._response.headers.get("content-type", "")
        return content_type

    async def chunks(self, *, decoded: bool) -> AsyncGenerator[bytes, None]:
        """Body bytes as they arrive: decoded for the proxy to read, raw to relay untouched.

        Raises:
            UpstreamError: the connection broke mid-body.
            UpstreamTimeoutError: the upstream went silent for longer than the read timeout.
        """
        iterator = self._response.aiter_bytes() if decoded else self._response.aiter_raw()
        try:
            async for chunk in iterator:
                yield chunk
        except httpx.HTTPError as exc:
            raise upstream_error(exc, self._origin) from exc

    async def read(self) -> bytes:
        """The whole (decoded) body.

        Raises:
            UpstreamError: the connection broke mid-body.
        """
        try:
            return await self._response.aread()
        except httpx.HTTPError as exc:
            raise upstream_error(exc, self._origin) from exc


class UpstreamClient:
    """Sends requests to one configured base URL (OpenAI-compatible, or Anthropic's) over one connection pool."""

    def __init__(
        self,
        settings: UpstreamSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        hooks: UpstreamHooks | None = None,
        style: ApiStyle = OPENAI_STYLE,
    ) -> None:
        self._base_url = settings.base_url
        self._style = style
        self._origin = urlsplit(settings.base_url).netloc
        self._api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self._dropped: dict[frozenset[str], frozenset[str]] = {}
        self.stream_limits = StreamLimits(settings.read_timeout_s, settings.max_event_bytes)
        limits = httpx.Limits(max_connections=settings.max_connections, max_keepalive_connections=64)
        self._http = httpx.AsyncClient(
            transport=transport or PreciseAiohttpTransport(limits=limits, trust_env=False),
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.write_timeout_s,
                pool=settings.pool_timeout_s,
            ),
            limits=limits,
            follow_redirects=False,
        )
        self._attempts = Attempts(self._http, settings, self._origin, hooks or UpstreamHooks())

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

        def build() -> httpx.Request:
            return self._http.build_request(method, self.url_for(path), headers=wire_headers(headers), content=content)

        answer = await self._attempts.answer(build, replayable=True)
        try:
            body = await self._read_body(answer)
        finally:
            await answer.response.aclose()
        response = answer.response
        return UpstreamReply(response.status_code, list(response.headers.multi_items()), body, answer.attempts)

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
        def build() -> httpx.Request:
            return self._http.build_request(method, url, headers=wire_headers(headers), content=content)

        answer = await self._attempts.answer(build, replayable=isinstance(content, bytes))
        try:
            yield UpstreamStream(answer.response, self._origin, answer.attempts)
        finally:
            await answer.response.aclose()

    async def _read_body(self, answer: Answer) -> bytes:
        try:
            with anyio.fail_after(answer.remaining_s()):
                return await answer.response.aread()
        except TimeoutError as exc:
            raise timeout_error(self._origin) from exc
        except httpx.HTTPError as exc:
            raise upstream_error(exc, self._origin) from exc


def wire_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Header values as the bytes sent upstream.

    Values arrive decoded as ISO-8859-1 (ASCII in practice; httpx refuses anything else in a str). A value whose
    bytes are UTF-8 is sent unchanged; other bytes are read as ISO-8859-1 text, HTTP's historical charset, and sent
    as its UTF-8, the only encoding the aiohttp transport writes header text in.
    """
    return [(name.encode("ascii"), _wire_value(value)) for name, value in headers]


def _wire_value(value: str) -> bytes:
    if value.isascii():
        return value.encode("ascii")
    try:
        raw = value.encode("latin-1")
        raw.decode("utf-8")
    except UnicodeError:  # not UTF-8 bytes, or text of our own beyond ISO-8859-1 (a configured key)
        return value.encode("utf-8")
    return raw


def relayable_headers(headers: Iterable[tuple[str, str]], *, decoded: bool) -> Headers:
    """Upstream response headers safe to send on: no hop-by-hop, and no encoding/length of a body we decoded.

    `date` and `server` are left out too: the proxy's own HTTP server sets them.
    """
    dropped = _DROPPED_DECODED if decoded else _DROPPED_RAW
    return [(name, value) for name, value in headers if name.lower() not in dropped]
