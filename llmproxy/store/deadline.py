"""A timeout that measures the peer, not this process's event loop: `deadline(seconds)`, like asyncio.timeout.

asyncio.timeout fires when its time has passed, even if the event loop was stalled meanwhile (a burst of a
thousand requests keeps it busy for a second and more): the reply that arrived long before is still waiting to be
handed to its task, and is lost to the timeout. Here, a deadline whose check runs late (the loop was stalled) looks
again after the next round of I/O instead of firing; it fires when its time has passed and the loop is keeping
time, or at the latest after STALL_ALLOWANCE times its budget.

    budget passed ──check on time──▶ expire (asyncio.timeout's own cancellation: TimeoutError)
         │
         └──check late (stalled)──▶ look again in RECHECK_S ──(the awaited reply usually completes first)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

LATE_S = 0.01  # a check later than this: the loop was busy, and I/O may be waiting to be handled
RECHECK_S = 0.001  # long enough that the loop polls for I/O (and wakes its tasks) before the next check
STALL_ALLOWANCE = 20  # a hung peer on a loop that never catches up still times out, after budget x this


class _Check:
    """The deadline's timer: expires the scope, or re-arms itself while the loop is late."""

    __slots__ = ("_loop", "_scope", "_due", "_ceiling", "handle")

    def __init__(self, loop: asyncio.AbstractEventLoop, scope: asyncio.Timeout, budget: float) -> None:
        now = loop.time()
        self._loop, self._scope = loop, scope
        self._due, self._ceiling = now + budget, now + budget * STALL_ALLOWANCE
        self.handle = loop.call_at(self._due, self._run)

    def _run(self) -> None:
        now = self._loop.time()
        if now - self._due > LATE_S and now < self._ceiling:
            self._due = now + RECHECK_S
            self.handle = self._loop.call_at(self._due, self._run)
            return
        self._scope.reschedule(now)  # due now: asyncio cancels the task and raises TimeoutError at the block's end


@asynccontextmanager
async def deadline(seconds: float) -> AsyncIterator[None]:
    """Bound the block to `seconds` of the peer's time (stalls of this event loop do not count, up to a ceiling).

    Raises:
        TimeoutError: the block did not finish in time.
    """
    async with asyncio.timeout(None) as scope:
        check = _Check(asyncio.get_running_loop(), scope, seconds)
        try:
            yield
        finally:
            check.handle.cancel()
