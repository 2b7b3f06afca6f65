"""Reporting a request to telemetry once its response has ended: at once for a body, at the end for a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmproxy.proxy.exchange import Reply
from llmproxy.telemetry.recorder import Telemetry
from llmproxy.trace import RequestTrace


def finish_after(reply: Reply, trace: RequestTrace, telemetry: Telemetry, *, streamed: bool) -> Reply:
    """The reply, arranged so that `telemetry.finish(trace)` runs exactly once when it is over (`streamed`: the
    caller asked for a stream, whose first byte is timed)."""
    trace.status = reply.status
    inner_close = reply.close
    if isinstance(reply.body, bytes):
        if streamed:
            trace.first_byte_s = trace.elapsed()  # a replayed stream is sent as one block
        if inner_close is None:
            telemetry.finish(trace)
            return reply
        trace.ended_s = trace.elapsed()  # the work after the body (a write-back) is not the request's latency

    async def close() -> None:
        try:
            if inner_close is not None:
                await inner_close()
        finally:
            telemetry.finish(trace)

    body = reply.body if isinstance(reply.body, bytes) else _first_byte_timed(reply.body, trace)
    return Reply(reply.status, reply.headers, body, close)


async def _first_byte_timed(body: AsyncIterator[bytes], trace: RequestTrace) -> AsyncIterator[bytes]:
    timed = False
    try:
        async for chunk in body:
            if not timed:
                trace.first_byte_s, timed = trace.elapsed(), True
            yield chunk
    finally:
        # Closing runs the inner generator's own cleanup (e.g. the relay's), as the client's departure would.
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
