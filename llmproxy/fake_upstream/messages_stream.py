"""The Anthropic Messages event stream of one planned reply.

`message_start` (the message with no content and `usage.output_tokens` 1), then per content block
`content_block_start` (empty text/thinking, tool input `{}`), deltas (`text_delta` and `thinking_delta` one per
word, then `signature_delta` for thinking; `input_json_delta` an empty piece then the JSON in three pieces),
`content_block_stop`; a `ping` after the first block opens; then `message_delta` (stop reason, stop sequence and
the cumulative usage) and `message_stop`. A stream error is `event: error` with an `overloaded_error`.
"""

from collections.abc import Iterator

from llmproxy.fake_upstream.messages import (
    ContentBlock,
    MessagesReply,
    TextBlock,
    ThinkingBlock,
    block_json,
    message_json,
)
from llmproxy.fake_upstream.named_events import NamedEvent, StreamProtocol
from llmproxy.fake_upstream.prompts import fragments, pieces
from llmproxy.fake_upstream.replies import Json

PING: NamedEvent = ("ping", {"type": "ping"})


def _error_event(sent: int) -> NamedEvent:
    return "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


MESSAGES_STREAM = StreamProtocol(error_event=_error_event, malformed_type="content_block_delta")


def message_events(reply: MessagesReply) -> Iterator[NamedEvent]:
    """The typed events of the streamed reply, in order."""
    yield _event("message_start", message=message_json(reply, opening=True))
    for index, block in enumerate(reply.blocks):
        yield _event("content_block_start", index=index, content_block=block_json(block, opening=True))
        if index == 0:
            yield PING
        for delta in _deltas(block):
            yield _event("content_block_delta", index=index, delta=delta)
        yield _event("content_block_stop", index=index)
    usage: Json = {
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": reply.output_tokens,
    }
    stop: Json = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
    yield _event("message_delta", delta=stop, usage=usage)
    yield _event("message_stop")


def _deltas(block: ContentBlock) -> Iterator[Json]:
    if isinstance(block, TextBlock):
        for piece in pieces(block.text):
            yield {"type": "text_delta", "text": piece}
    elif isinstance(block, ThinkingBlock):
        for piece in pieces(block.thinking):
            yield {"type": "thinking_delta", "thinking": piece}
        yield {"type": "signature_delta", "signature": block.signature}
    else:
        # The API opens a tool input with an empty piece before the JSON arrives.
        for piece in ["", *fragments(block.input_json, 3)]:
            yield {"type": "input_json_delta", "partial_json": piece}


def _event(kind: str, **fields: object) -> NamedEvent:
    return kind, {"type": kind, **fields}
