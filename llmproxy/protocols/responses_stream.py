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

from typing import Any

import orjson

from llmproxy.errors import MalformedStreamError
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import StreamAssembler
from llmproxy.protocols.openai_stream import REPLAY_DELTAS, text_pieces
from llmproxy.streaming.sse import SseEvent, encode_event

COMPLETED = "response.completed"
# Final events that end a stream without an answer to store.
_UNFINISHED_ENDS = frozenset({"response.incomplete", "response.failed"})
# What a Response says before its output exists (as `response.created` and `response.in_progress` carry it).
_NOT_YET = ("usage", "completed_at", "error", "incomplete_details")


class ResponseEvents(StreamAssembler):
    """Folds one relayed Responses stream: the final Response of `response.completed`, nothing hidden."""

    __slots__ = ("_ended", "_failed", "_final", "_done_items")

    def __init__(self) -> None:
        self._ended = False
        self._failed = False
        self._final: JsonObject | None = None
        self._done_items: dict[int, JsonObject] = {}  # `response.output_item.done` items, by output_index

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def failed(self) -> bool:
        return self._failed

    def add(self, event: SseEvent) -> bool:
        if event.event == "error":
            self._failed = True
            return True
        if event.data is None:
            return True
        if event.is_done:  # not sent by OpenAI, but by some compatible servers after the final event
            self._ended = True
            return True
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError as exc:
            self._failed = True
            raise MalformedStreamError("The upstream sent a malformed stream event.") from exc
        if isinstance(data, dict):
            self._fold(data, data.get("type") or event.event)
        else:
            self._failed = True
        return True

    def _fold(self, data: JsonObject, kind: Any) -> None:
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


def _reasoning_events(replay: _Replay, where: JsonObject, item: JsonObject) -> None:
    """A reasoning item: its summary parts and its reasoning text, each in deltas."""
    index = where["output_index"]
    opening = {**_opening(item), "summary": []}
    if item.get("content") is not None:
        opening["content"] = []
    replay.emit("response.output_item.added", output_index=index, item=opening)
    for summary_index, part in enumerate(item.get("summary") or []):
        text = str(part.get("text") or "") if isinstance(part, dict) else ""
        at = {**where, "summary_index": summary_index}
        replay.emit("response.reasoning_summary_part.added", **at, part={"type": "summary_text", "text": ""})
        for piece in text_pieces(text):
            replay.emit("response.reasoning_summary_text.delta", **at, delta=piece)
        replay.emit("response.reasoning_summary_text.done", **at, text=text)
        replay.emit("response.reasoning_summary_part.done", **at, part={"type": "summary_text", "text": text})
    for content_index, part in enumerate(item.get("content") or []):
        text = str(part.get("text") or "") if isinstance(part, dict) else ""
        at = {**where, "content_index": content_index}
        replay.emit("response.content_part.added", **at, part={"type": "reasoning_text", "text": ""})
        for piece in text_pieces(text):
            replay.emit("response.reasoning_text.delta", **at, delta=piece)
        replay.emit("response.reasoning_text.done", **at, text=text)
        replay.emit("response.content_part.done", **at, part={"type": "reasoning_text", "text": text})


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
