"""Per-request faults, chosen by `X-Fake-*` request headers.

`X-Fake-Status: N` answers every such request with status N. With `X-Fake-Fail-Times: K` it does so only for the
first K attempts of the request named by `X-Fake-Request-Id` (503 by default), then answers normally: the way to
test a client's retries. `X-Fake-Retry-After` sets the error's Retry-After header (a 429 has "1" by default).

Hostile answers: `X-Fake-Bad-Body: truncated | html` answers 200 with half a JSON body or an HTML page;
`X-Fake-Error-Event: typed | bare | data` ends a complete stream with an error event before `[DONE]`
(`event: error` with an error object, `event: error` with a plain message, or an untyped error object);
`X-Fake-Keepalive-Ms: N` sends `: ping` comments for N ms before the first chunk; `X-Fake-Content-Bytes: N`
pads the reply text to N bytes with one long word (one huge event in a stream).
"""

from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

from starlette.datastructures import Headers

from llmproxy.fake_upstream.config import FakeUpstreamConfig
from llmproxy.fake_upstream.errors import RequestRejected

Number = TypeVar("Number", int, float)
Choice = TypeVar("Choice", bound=str)
BadBody = Literal["truncated", "html"]
ErrorEvent = Literal["typed", "bare", "data"]


@dataclass(frozen=True, slots=True)
class Faults:
    """What to do to one request: delays, an error status, or a broken stream."""

    latency_ms: float
    chunk_delay_ms: float
    status: int | None = None
    fail_times: int | None = None  # fail only the first attempts of the request with this id
    request_id: str = ""
    retry_after: str | None = None
    drop_after: int | None = None
    stream_error_after: int | None = None
    malformed_sse: bool = False
    bad_body: BadBody | None = None
    error_event: ErrorEvent | None = None
    keepalive_ms: float = 0.0
    content_bytes: int | None = None


def read_faults(headers: Headers, config: FakeUpstreamConfig) -> Faults:
    """Read the fault headers, falling back to the configured delays.

    Raises:
        RequestRejected: a fault header is not a valid number.
    """
    status = _number(headers, "x-fake-status", int)
    # 200 answers an error body with a success status, as some OpenAI-compatible gateways do.
    if status is not None and not (status == 200 or 400 <= status <= 599):
        raise RequestRejected(400, "X-Fake-Status must be 200 or an error status (400-599)")
    fail_times = _number(headers, "x-fake-fail-times", int)
    request_id = headers.get("x-fake-request-id", "")
    if fail_times is not None and not request_id:
        raise RequestRejected(400, "X-Fake-Fail-Times needs an X-Fake-Request-Id to count attempts by")
    latency = _number(headers, "x-fake-latency-ms", float)
    chunk_delay = _number(headers, "x-fake-chunk-delay-ms", float)
    return Faults(
        latency_ms=config.latency_ms if latency is None else latency,
        chunk_delay_ms=config.chunk_delay_ms if chunk_delay is None else chunk_delay,
        status=status,
        fail_times=fail_times,
        request_id=request_id,
        retry_after=headers.get("x-fake-retry-after"),
        drop_after=_number(headers, "x-fake-drop-after", int),
        stream_error_after=_number(headers, "x-fake-stream-error-after", int),
        malformed_sse=headers.get("x-fake-malformed-sse", "") not in ("", "0"),
        bad_body=_choice(headers, "x-fake-bad-body", get_args(BadBody)),
        error_event=_choice(headers, "x-fake-error-event", get_args(ErrorEvent)),
        keepalive_ms=_number(headers, "x-fake-keepalive-ms", float) or 0.0,
        content_bytes=_number(headers, "x-fake-content-bytes", int),
    )


def _choice(headers: Headers, name: str, allowed: tuple[Choice, ...]) -> Choice | None:
    raw = headers.get(name)
    if raw is None:
        return None
    for option in allowed:
        if option == raw:
            return option
    raise RequestRejected(400, f"{name} must be one of {', '.join(allowed)}, got {raw!r}")


def _number(headers: Headers, name: str, kind: type[Number]) -> Number | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError as exc:
        raise RequestRejected(400, f"{name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise RequestRejected(400, f"{name} must not be negative")
    return value
