"""Single-flight on the request path: identical misses in flight share one upstream call.

The first becomes the leader and forwards; the others wait and are served the answer it stored. The leader
releases them as soon as its write-back is over (`Forward.on_stored`); when no write-back happens (an error was
relayed, a stream was cut short, the client left) it releases them when its reply ends.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from llmproxy.cache.single_flight import Lead, SingleFlight, Turn
from llmproxy.proxy.exchange import CacheRequest, Forward, Reply
from llmproxy.proxy.forwarder import Forwarder
from llmproxy.proxy.headers import COALESCED_HEADER, CacheStatus, route_header
from llmproxy.proxy.replies import Replies


@dataclass(frozen=True, slots=True)
class Coalescer:
    """Leads a miss, or serves the leader's answer."""

    flight: SingleFlight
    forwarder: Forwarder
    replies: Replies

    async def send(self, key: str, request: CacheRequest, forward: Forward, route: str, turn: Turn | None) -> Reply:
        """The reply to a miss that may be stored: the leader's answer, or this request's own upstream call.

        `turn`: the one taken ahead (`lease_ahead`), or None to join now.
        """
        if turn is None:
            turn = await self.flight.join(key, request.trace)
        elif turn.wait is not None:
            turn = await turn.wait.turn()
        if turn.entry is not None:
            headers = [(COALESCED_HEADER, "1"), route_header(route)]
            return self.replies.entry(turn.entry, request, CacheStatus.HIT_L1, headers)
        if turn.lead is None:  # the leader failed or timed out, or Redis did: an ordinary miss
            return await self.forwarder.send(request, forward)
        return await self._lead(turn.lead, request, forward)

    async def lease_ahead(self, key: str, request: CacheRequest) -> Turn:
        """This request's turn, taken without waiting for another leader (one round trip, to overlap with the
        L2 search). A lead in it must be released (with `led=False` when the request ends up not forwarded), a
        wait waited or left."""
        return await self.flight.join(key, request.trace, wait=False)

    async def _lead(self, lead: Lead, request: CacheRequest, forward: Forward) -> Reply:
        # Releasing twice does nothing: each fallback below only releases a lead no write-back released.
        try:
            reply = await self.forwarder.send(request, replace(forward, on_stored=lead.release))
        except BaseException:
            await lead.release(stored=False)
            raise
        if reply.close is None:  # nothing runs after the reply (a JSON write-back, if any, already ran)
            await lead.release(stored=False)
            return reply
        close = reply.close

        async def close_then_release() -> None:
            try:
                await close()
            finally:
                await lead.release(stored=False)

        return Reply(reply.status, reply.headers, reply.body, close_then_release)
