"""The protocol seam: one interface for everything a wire protocol decides, so the request path stays protocol-free.

A protocol (chat completions, completions, embeddings, the Responses API today) answers, with pure code and no state:

    identity   name (the kind in cache keys, entries and the catalog), path (the route, and the upstream path),
               upstream_family (which upstream speaks it)
    request    parse (validation; errors raised as ProxyError), bypass_reason (a rule that forbids the cache)
    keys       key_fields (the answer-changing part of a body), KEY_HEADERS (request headers that change it too)
    L2         semantic_view (the text to embed, the params and the context that partition it; None: exact only)
    catalog    display_prompt (what an operator reads)
    upstream   upstream_body (the request as sent), answer_error (a 200 that carries an error, not an answer)
    streams    assembler (events in → the storable answer, and which events the client gets), replay (answer → SSE)
    answers    is_complete (what may be stored), answer_body (JSON), usage (tokens, for metrics and cost)
    router     fixed_answer (a `respond` route), refusal (a `block` route)
    errors     error_status, error_body (the proxy's own errors in the protocol's shape), stream_error (after the
               headers were sent)

The pipeline, forwarder, stream relay, write-back, catalog and API speak only to this interface. Adding an API is
one protocol module, its entry in `registry.py`, its twin in `fake_upstream/`, and tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import orjson

from llmproxy.errors import ProxyError
from llmproxy.jsontypes import JsonObject
from llmproxy.streaming.sse import SseEvent
from llmproxy.trace import TokenUsage

UpstreamFamily = Literal["openai", "anthropic"]  # which upstream a protocol's requests go to
RequestHeaders = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A validated request: its body as the caller sent it, and the few facts the request path needs."""

    body: JsonObject
    model: str
    stream: bool  # answered as an event stream (always False for a protocol that does not stream)
    key_headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, value) of the headers that change the answer


@dataclass(frozen=True, slots=True)
class SemanticView:
    """What the L2 cache compares: the text that is embedded, inside a partition of identical everything-else.

    `params` and `context` are hashed (numbers in one normal form) into the partition. Whatever could make two
    protocols' views coincide must be in them, so an answer is only ever found by requests of its own protocol.
    """

    prompt: str  # the latest user text
    params: JsonObject  # every answer-changing field except the model and the conversation
    context: Any  # the conversation before the prompt (system prompt, earlier turns, the turn's other fields)


class StreamAssembler(ABC):
    """Folds the events of one relayed stream into the answer to store, and says which events the client gets.

    OpenAI streams are `data:` chunks ending with `data: [DONE]`; typed streams (`event: <type>` lines) end with a
    final event instead. Either way the relay only asks `add`, `ended`, `failed` and `result`.
    """

    @abstractmethod
    def add(self, event: SseEvent) -> bool:
        """Account for one event; True when it is to be forwarded to the client.

        Raises:
            MalformedStreamError: an event the protocol cannot read (the relay ends the stream with an error).
        """

    @property
    @abstractmethod
    def ended(self) -> bool:
        """Whether the stream's own end arrived (`[DONE]`, or a final event)."""

    @property
    @abstractmethod
    def failed(self) -> bool:
        """Whether an error arrived in the stream: it is relayed to its end, and never stored."""

    @abstractmethod
    def result(self) -> JsonObject | None:
        """The non-streaming answer the stream amounts to, or None when it is not complete."""


class WireProtocol(ABC):
    """Everything protocol-specific about one cached endpoint; implementations are stateless singletons."""

    name: ClassVar[str]  # the kind in cache keys, entries, the catalog and the admin API
    path: ClassVar[str]  # the proxy's route and the upstream path (`/v1/...`)
    upstream_family: ClassVar[UpstreamFamily] = "openai"
    KEY_HEADERS: ClassVar[frozenset[str]] = frozenset()  # lower-case names of request headers in the key

    # --- the request ---

    @abstractmethod
    def parse(self, raw: bytes, headers: RequestHeaders) -> ParsedRequest:
        """Decode and validate a request body.

        Raises:
            ProxyError: the body is not a valid request (rendered in this protocol's error shape).
        """

    def headers_in_key(self, headers: RequestHeaders) -> tuple[tuple[str, str], ...]:
        """The request's KEY_HEADERS, for its ParsedRequest."""
        return picked_headers(headers, self.KEY_HEADERS)

    def bypass_reason(self, parsed: ParsedRequest) -> str | None:
        """Why this request may never be served from or stored in the cache (X-Cache-Bypass-Reason), or None."""
        return None

    @abstractmethod
    def key_fields(self, body: JsonObject) -> JsonObject:
        """The part of the body that can change the answer (cache/keys.py hashes it with the key headers)."""

    @abstractmethod
    def semantic_view(self, body: JsonObject) -> SemanticView | None:
        """The L2 view of a request, or None when only an exact match may answer it."""

    @abstractmethod
    def display_prompt(self, body: JsonObject, limit: int) -> str:
        """The prompt as an operator reads it in the admin API, at most `limit` characters."""

    # --- the upstream and its answer ---

    @abstractmethod
    def upstream_body(self, parsed: ParsedRequest, *, model: str | None, want_usage: bool) -> bytes | None:
        """The body to send upstream, or None to send the caller's bytes unchanged.

        `model` replaces the caller's (a route's), `want_usage` asks a stream for its token usage when the protocol
        only reports it on request.
        """

    @abstractmethod
    def answer_error(self, answer: JsonObject) -> str | None:
        """The message of an error a 200 body carries instead of an answer, or None when it is an answer."""

    @abstractmethod
    def assembler(self, parsed: ParsedRequest, *, want_usage: bool) -> StreamAssembler:
        """A fresh assembler for the stream answering `parsed` (`want_usage` as given to upstream_body).

        Only asked when `parsed.stream`: a protocol that never streams may raise TypeError.
        """

    @abstractmethod
    def is_complete(self, answer: JsonObject) -> bool:
        """Whether the answer is finished and successful: the only kind that may be stored."""

    @abstractmethod
    def replay(self, answer: JsonObject, parsed: ParsedRequest) -> bytes:
        """The whole SSE body that streams a stored answer to `parsed`, text in several deltas.

        Only asked when `parsed.stream`: a protocol that never streams may raise TypeError.
        """

    def answer_body(self, answer: JsonObject) -> bytes:
        """The JSON body of a stored answer."""
        return orjson.dumps(answer)

    @abstractmethod
    def usage(self, answer: JsonObject) -> TokenUsage | None:
        """The token counts the answer reports, or None when it reports none."""

    # --- the router ---

    @abstractmethod
    def fixed_answer(self, model: str, text: str, answer_id: str, created: int) -> JsonObject:
        """A complete answer carrying a fixed text (a route's `respond` action).

        Only asked for requests with a semantic view (only those are routed): others may raise TypeError.
        """

    @abstractmethod
    def refusal(self, status: int, message: str, code: str) -> JsonObject:
        """The error body of a route's `block` action, answered with `status`."""

    # --- the proxy's own errors ---

    def error_status(self, error: ProxyError) -> int:
        """The HTTP status this protocol answers the error with."""
        return error.status_code

    @abstractmethod
    def error_body(self, error: ProxyError) -> JsonObject:
        """The error in this protocol's shape."""

    @abstractmethod
    def stream_error(self, error: ProxyError) -> bytes:
        """The last event of a stream that failed after its headers were sent (the SDKs raise it)."""


def picked_headers(headers: RequestHeaders, names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The request's headers among `names` (lower-cased, in a stable order): the ones that take part in the key."""
    wanted = frozenset(names)
    return tuple(sorted((name.lower(), value) for name, value in headers if name.lower() in wanted))


def cut(text: str, limit: int) -> str:
    """`text`, ending in an ellipsis when it is longer than `limit` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
