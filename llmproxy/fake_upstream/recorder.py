"""Bookkeeping of the fake: request counts per path, a bounded call log, reply numbers, failed attempts.

Requests carrying `X-Fake-Recorder: <name>` are kept in a recorder of that name, apart from the others (and the
control endpoints `/_stats`, `/_requests`, `/_reset` read or clear the recorder their own header names): tests
sharing one fake each own their counts and reply numbers, so they could run in parallel. Requests without the
header share the default recorder.
"""

from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

LOG_CAPACITY = 1000
RECORDER_HEADER = "x-fake-recorder"
MAX_RECORDERS = 10_000  # named recorders kept; the least recently used goes first (a long-running fake stays small)


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


class Recorders:
    """The default recorder and the named ones, each created when first used."""

    def __init__(self, capacity: int = MAX_RECORDERS) -> None:
        self._default = Recorder()
        self._named: OrderedDict[str, Recorder] = OrderedDict()
        self._capacity = capacity

    def of(self, request: Request) -> Recorder:
        """The recorder the request's X-Fake-Recorder header names (the default one without it)."""
        name = request.headers.get(RECORDER_HEADER)
        if name is None:
            return self._default
        recorder = self._named.pop(name, None) or Recorder()
        self._named[name] = recorder
        while len(self._named) > self._capacity:
            self._named.popitem(last=False)
        return recorder

    def reset(self, request: Request) -> None:
        """Forget the request's recorder: the default one is cleared, a named one dropped."""
        name = request.headers.get(RECORDER_HEADER)
        if name is None:
            self._default.reset()
        else:
            self._named.pop(name, None)
