"""Per-app bookkeeping of the fake: request counts per path, a bounded call log, reply numbers, failed attempts."""

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

LOG_CAPACITY = 1000


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request exactly as the fake received it."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: str

    def to_json(self) -> dict[str, object]:
        """The request as a JSON object."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers),
            "body": self.body,
        }


async def read_request(request: Request) -> RecordedRequest:
    """Capture method, path, query, lower-cased headers and body text of a request."""
    body = await request.body()
    return RecordedRequest(
        method=request.method,
        path=request.url.path,
        query=request.url.query,
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body.decode("utf-8", errors="replace"),
    )


class Recorder:
    """Counts and logs `/v1` requests and hands out reply numbers."""

    def __init__(self, capacity: int = LOG_CAPACITY) -> None:
        self._counts: Counter[str] = Counter()
        self._log: deque[RecordedRequest] = deque(maxlen=capacity)
        self._replies: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()

    def record(self, call: RecordedRequest) -> None:
        """Count and log one arriving request."""
        self._counts[call.path] += 1
        self._log.append(call)

    def next_reply(self, kind: str) -> int:
        """The 1-based number of the next reply of this kind (chat, completion, responses, messages)."""
        self._replies[kind] += 1
        return self._replies[kind]

    def take_failure(self, request_id: str, times: int) -> bool:
        """Whether this attempt of the request is among its first `times`, which are to fail."""
        if self._failures[request_id] >= times:
            return False
        self._failures[request_id] += 1
        return True

    def stats(self) -> dict[str, object]:
        """Request counts per path and in total."""
        return {"requests": dict(self._counts), "total": sum(self._counts.values())}

    def calls(self) -> list[dict[str, object]]:
        """The logged requests, oldest first."""
        return [call.to_json() for call in self._log]

    def reset(self) -> None:
        """Forget all counts, calls and reply numbers."""
        self._counts.clear()
        self._log.clear()
        self._replies.clear()
        self._failures.clear()
