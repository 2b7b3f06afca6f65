"""The write-back of one forwarded answer, the same for a JSON body and a relayed stream: store it, note the
outcome on the trace, and tell whoever waits for it (a single-flight leader's followers). A JSON answer is written
after its response was sent, within a bound (PendingWrites)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from llmproxy.cache.writeback import StorePlan, WriteBack
from llmproxy.jsontypes import JsonObject
from llmproxy.proxy.exchange import StoredListener
from llmproxy.trace import RequestTrace, WriteOutcome


@dataclass(frozen=True, slots=True)
class AnswerStore:
    """Where one forwarded answer is written back, and who hears how that went."""

    write_back: WriteBack
    plan: StorePlan
    trace: RequestTrace
    on_stored: StoredListener | None = None

    async def store(self, answer: JsonObject) -> None:
        """Write the answer back (failures fail open: noted, never raised)."""
        with self.trace.timing("write"):
            outcome = await self.write_back.store(self.plan, answer)
        await self.settle(outcome)

    async def settle(self, outcome: WriteOutcome) -> None:
        """Record the outcome (also one decided without a write: too_large, incomplete) and tell the listener."""
        self.trace.write = outcome
        if outcome == "failed":
            self.trace.failed("redis", "write")
        if self.on_stored is not None:
            await self.on_stored(outcome == "stored")


class PendingWrites:
    """The JSON write-backs left to run once their responses were sent: at most `limit` at once (each holds its
    answer), so a slow Redis turns into back-pressure on responses instead of memory."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.waiting = 0

    def after_response(self, store: AnswerStore, answer: JsonObject) -> Callable[[], Awaitable[None]] | None:
        """The write to run after the response (noted on the trace), or None when `limit` writes already wait:
        then the caller writes before responding."""
        if self.waiting >= self._limit:
            store.trace.write_timing = "before_response"
            return None
        store.trace.write_timing = "after_response"
        self.waiting += 1

        async def write() -> None:
            try:
                # As for streams: a client that hangs up once it has the answer must not cancel its write-back.
                with anyio.CancelScope(shield=True):
                    await store.store(answer)
            finally:
                self.waiting -= 1

        return write
