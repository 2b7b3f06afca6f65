"""The Responses API event stream of one planned reply, with `sequence_number`s from 0.

`response.created` and `response.in_progress` (the response with no output yet), then per output item:
`response.output_item.added`, for a message `response.content_part.added`, one `response.output_text.delta`
per word, `response.output_text.done`, `response.content_part.done`; for a function call
`response.function_call_arguments.delta` (the arguments in three pieces) and `.done`; then
`response.output_item.done`. The last event carries the final response: `response.completed`, or
`response.incomplete`; a failed reply stops half-way through its items with `response.failed`.
"""

from collections.abc import Iterator

from llmproxy.fake_upstream.named_events import NamedEvent, StreamProtocol
from llmproxy.fake_upstream.prompts import fragments, pieces
from llmproxy.fake_upstream.replies import Json
from llmproxy.fake_upstream.responses import (
    FunctionCallItem,
    MessageItem,
    OutputItem,
    ResponsesReply,
    item_json,
    response_json,
    text_part_json,
)

FINAL_EVENTS = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}


def _error_event(sent: int) -> NamedEvent:
    error: Json = {"type": "error", "code": "server_error", "message": "fake stream error", "param": None}
    return "error", {**error, "sequence_number": sent}


RESPONSES_STREAM = StreamProtocol(error_event=_error_event, malformed_type="response.output_text.delta")


def response_events(reply: ResponsesReply) -> Iterator[NamedEvent]:
    """The typed events of the streamed reply, in order."""
    opening = response_json(reply, in_progress=True)
    events: list[tuple[str, Json]] = [("response.created", {"response": opening})]
    events.append(("response.in_progress", {"response": opening}))
    body = [event for index, item in enumerate(reply.items) for event in _item_events(index, item)]
    events.extend(body[: max(1, len(body) // 2)] if reply.status == "failed" else body)
    events.append((FINAL_EVENTS[reply.status], {"response": response_json(reply)}))
    for number, (kind, data) in enumerate(events):
        yield kind, {"type": kind, **data, "sequence_number": number}


def _item_events(index: int, item: OutputItem) -> Iterator[tuple[str, Json]]:
    yield "response.output_item.added", {"output_index": index, "item": item_json(item, done=False)}
    if isinstance(item, MessageItem):
        yield from _text_events(index, item)
    else:
        yield from _argument_events(index, item)
    yield "response.output_item.done", {"output_index": index, "item": item_json(item)}


def _text_events(index: int, item: MessageItem) -> Iterator[tuple[str, Json]]:
    where: Json = {"item_id": item.id, "output_index": index, "content_index": 0}
    yield "response.content_part.added", {**where, "part": text_part_json("")}
    for piece in pieces(item.text):
        yield "response.output_text.delta", {**where, "delta": piece, "logprobs": []}
    yield "response.output_text.done", {**where, "text": item.text, "logprobs": []}
    yield "response.content_part.done", {**where, "part": text_part_json(item.text)}


def _argument_events(index: int, item: FunctionCallItem) -> Iterator[tuple[str, Json]]:
    where: Json = {"item_id": item.id, "output_index": index}
    for piece in fragments(item.arguments, 3):
        yield "response.function_call_arguments.delta", {**where, "delta": piece}
    yield "response.function_call_arguments.done", {**where, "arguments": item.arguments}
