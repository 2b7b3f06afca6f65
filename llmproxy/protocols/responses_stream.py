"""The Responses API's typed event streams: assembly of a relayed stream into the Response to store, and replay of
a stored Response as events (pure).

A stream is `event: <type>` / `data: <json>` pairs, each with a `sequence_number`: `response.created`,
`response.in_progress`, per output item `response.output_item.added` … its deltas … `response.output_item.done`,
and a last event that carries the whole Response: `response.completed` (the only one stored), `response.incomplete`
or `response.failed`. An `error` event fails the stream. Replay sends what the official SDKs' `responses.stream()`
helpers accumulate: text, refusals and reasoning in several deltas, function-call arguments in several deltas,
consistent `output_index`/`content_index`/`item_id`, and the stored Response, unchanged, in `response.completed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.json_events import JsonEventStream
from llmproxy.protocols.openai_stream import REPLAY_DELTAS, text_pieces
from llmproxy.streaming.sse import SseEvent, encode_event

COMPLETED = "response.completed"
# Final events that end a stream without an answer to store.
_UNFINISHED_ENDS = frozenset({"response.incomplete", "response.failed"})
# What a Response says before its output exists (as `response.created` and `response.in_progress` carry it).
_NOT_YET = ("usage", "completed_at", "error", "incomplete_details")


class ResponseEvents(JsonEventStream):
    """Folds one relayed Responses stream: the final Response of `response.completed`, nothing hidden."""

    __slots__ = ("_final", "_done_items")

    def __init__(self) -> None:
        super().__init__()
        self._final: JsonObject | None = None
        self._done_items: dict[int, JsonObject] = {}  # `response.output_item.done` items, by output_index

    def fold(self, data: JsonObject, event: SseEvent) -> bool:
        kind = data.get("type") or event.event
        if kind == "error" or (kind is None and "error" in data):
            self._failed = True
        elif kind == "response.output_item.done":
            index, item = data.get("output_index"), data.get("item")
            if isinstance(index, int) and isinstance(item, dict):
                self._done_items[index] = item
        elif kind == COMPLETED:
            response = data.get("response")
            self._final = response if isinstance(response, dict) else None
            self._ended = True
        elif kind in _UNFINISHED_ENDS:
            # Relayed to its end; `response.failed` is an error, `response.incomplete` only not storable.
            self._failed = self._failed or kind == "response.failed"
            self._ended = True
        return True

    def result(self) -> JsonObject | None:
        if not self._ended or self._failed or self._final is None:
            return None
        if self._final.get("output") is None and self._done_items:
            # Some servers leave the output out of the final event: it is the items the stream finished.
            return {**self._final, "output": [self._done_items[index] for index in sorted(self._done_items)]}
        return self._final


def error_event(body: JsonObject) -> bytes:
    """The proxy's own error as the Responses `error` event; its `error` object makes the SDKs raise it."""
    error: JsonObject = body.get("error") or {}
    data = {"type": "error", "code": error.get("code"), "message": error.get("message"), "param": error.get("param"),
            "error": error}  # fmt: skip
    return encode_event(data, event="error")


def replay_response(response: JsonObject) -> bytes:
    """The whole event stream of a stored Response."""
    replay = _Replay()
    opening = {**response, "status": "in_progress", "output": []}
    opening.update({key: None for key in _NOT_YET if key in response})
    replay.emit("response.created", response=opening)
    replay.emit("response.in_progress", response=opening)
    for index, item in enumerate(response.get("output") or []):
        if isinstance(item, dict):
            _item_events(replay, index, item)
    replay.emit(COMPLETED, response=response)
    return b"".join(replay.events)


class _Replay:
    """The events of one replay, numbered in order."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[bytes] = []

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append(encode_event({"type": kind, **fields, "sequence_number": len(self.events)}, event=kind))


def _item_events(replay: _Replay, index: int, item: JsonObject) -> None:
    """One output item: added (empty, in progress), its deltas, done (as stored)."""
    kind = item.get("type")
    where: JsonObject = {"item_id": item.get("id"), "output_index": index}
    if kind == "message":
        replay.emit("response.output_item.added", output_index=index, item={**_opening(item), "content": []})
        for content_index, part in enumerate(item.get("content") or []):
            _part_events(replay, {**where, "content_index": content_index}, part)
    elif kind == "function_call":
        replay.emit("response.output_item.added", output_index=index, item={**_opening(item), "arguments": ""})
        arguments = str(item.get("arguments") or "")
        for piece in _pieces(arguments):
            replay.emit("response.function_call_arguments.delta", **where, delta=piece)
        replay.emit("response.function_call_arguments.done", **where, arguments=arguments)
    elif kind == "reasoning":
        _reasoning_events(replay, where, item)
    else:  # tool calls the upstream ran itself (web search, ...): announced and finished whole
        replay.emit("response.output_item.added", output_index=index, item=item)
    replay.emit("response.output_item.done", output_index=index, item=item)


def _part_events(replay: _Replay, where: JsonObject, part: Any) -> None:
    """One content part of a message: an output text or a refusal in deltas; any other part whole."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "output_text":
        text, logprobs = str(part.get("text") or ""), part.get("logprobs") or []
        opening = {**part, "text": "", "annotations": [], "logprobs": []}
        replay.emit("response.content_part.added", **where, part=opening)
        # The logprobs go with the first piece: the SDKs take the part's final value from the done events.
        for number, piece in enumerate(text_pieces(text)):
            replay.emit("response.output_text.delta", **where, delta=piece, logprobs=logprobs if number == 0 else [])
        replay.emit("response.output_text.done", **where, text=text, logprobs=logprobs)
    elif kind == "refusal":
        refusal = str(part.get("refusal") or "")
        replay.emit("response.content_part.added", **where, part={**part, "refusal": ""})
        for piece in text_pieces(refusal):
            replay.emit("response.refusal.delta", **where, delta=piece)
        replay.emit("response.refusal.done", **where, refusal=refusal)
    else:
        replay.emit("response.content_part.added", **where, part=part)
    replay.emit("response.content_part.done", **where, part=part)


@dataclass(frozen=True, slots=True)
class _TextRun:
    """The events that stream one text part of a reasoning item, and the part's type."""

    added: str
    delta: str
    done: str
    part_done: str
    part_type: str
    position: str  # the index field that places the part


_SUMMARY = _TextRun(
    "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "summary_text", "summary_index",
)  # fmt: skip
_REASONING_TEXT = _TextRun(
    "response.content_part.added", "response.reasoning_text.delta", "response.reasoning_text.done",
    "response.content_part.done", "reasoning_text", "content_index",
)  # fmt: skip


def _reasoning_events(replay: _Replay, where: JsonObject, item: JsonObject) -> None:
    """A reasoning item: its summary parts and its reasoning text, each in deltas."""
    opening = {**_opening(item), "summary": []}
    if item.get("content") is not None:
        opening["content"] = []
    replay.emit("response.output_item.added", output_index=where["output_index"], item=opening)
    _text_runs(replay, where, item.get("summary"), _SUMMARY)
    _text_runs(replay, where, item.get("content"), _REASONING_TEXT)


def _text_runs(replay: _Replay, where: JsonObject, parts: Any, run: _TextRun) -> None:
    for number, part in enumerate(parts if isinstance(parts, list) else []):
        text = str(part.get("text") or "") if isinstance(part, dict) else ""
        at = {**where, run.position: number}
        replay.emit(run.added, **at, part={"type": run.part_type, "text": ""})
        for piece in text_pieces(text):
            replay.emit(run.delta, **at, delta=piece)
        replay.emit(run.done, **at, text=text)
        replay.emit(run.part_done, **at, part={"type": run.part_type, "text": text})


def _opening(item: JsonObject) -> JsonObject:
    """An item as `response.output_item.added` announces it: in progress (when it has a status at all)."""
    return {**item, "status": "in_progress"} if "status" in item else dict(item)


def _pieces(arguments: str) -> list[str]:
    """Function-call arguments in several deltas: at word starts, else (compact JSON) in even slices."""
    pieces = text_pieces(arguments)
    if len(pieces) > 1 or len(arguments) < 2:
        return pieces
    size = -(-len(arguments) // min(REPLAY_DELTAS, 4))  # a few slices, rounded up
    return [arguments[start : start + size] for start in range(0, len(arguments), size)]
