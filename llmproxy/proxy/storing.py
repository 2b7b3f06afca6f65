"""The write-back of one forwarded answer, the same for a JSON body and a relayed stream: store it, note the
outcome on the trace, and tell whoever waits for it (a single-flight leader's followers)."""

from __future__ import annotations

from dataclasses import dataclass

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
