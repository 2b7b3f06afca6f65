"""Anthropic's typed Messages stream: assembly into the Message, and replay of a stored one (pure).

A stream is `message_start` (the message, content empty), per content block `content_block_start`, its
`content_block_delta`s (`text_delta`, `input_json_delta`, `thinking_delta`, `signature_delta`, `citations_delta`)
and `content_block_stop`; then `message_delta` (stop reason, stop sequence, cumulative usage) and `message_stop`.
`ping`s may come anywhere; an `error` event ends a failed stream. Assembly folds the events as the SDK's
`messages.stream()` accumulates them, so a streamed miss is stored as the same Message a JSON request gets;
replay emits such a sequence for a stored Message, its text and thinking in several deltas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.json_events import JsonEventStream
from llmproxy.protocols.text_pieces import text_pieces
from llmproxy.streaming.sse import SseEvent, encode_event

_TOOL_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use"})  # blocks whose input streams as JSON pieces
_TOOL_INPUT_PIECES = 3  # a replayed tool input arrives in this many pieces
_STOP_FIELDS = frozenset({"stop_reason", "stop_sequence", "container"})  # what message_delta sets on the message
# The delta types and the block field each one extends.
_TEXT_DELTAS = {"text_delta": "text", "thinking_delta": "thinking"}


@dataclass(slots=True)
class _Block:
    """One content block being assembled: its opening fields, its streamed text, its tool input's JSON pieces."""

    value: JsonObject
    texts: dict[str, list[str]] = field(default_factory=dict)
    input_json: list[str] | None = None

    def add(self, delta: JsonObject) -> None:
        kind = delta.get("type")
        if kind in _TEXT_DELTAS:
            name = _TEXT_DELTAS[kind]
            self.texts.setdefault(name, []).append(_string(delta, name))
        elif kind == "input_json_delta":
            self.input_json = [*(self.input_json or []), _string(delta, "partial_json")]
        elif kind == "signature_delta":
            self.value["signature"] = _string(delta, "signature")
        elif kind == "citations_delta":
            self.value["citations"] = [*(self.value.get("citations") or []), delta.get("citation")]
        # Other deltas are new to this proxy: relayed, and the block keeps what it knows.

    def result(self) -> JsonObject:
        block = dict(self.value)
        for name, parts in self.texts.items():
            block[name] = str(block.get(name) or "") + "".join(parts)
        if self.input_json is not None:
            joined = "".join(self.input_json)
            # The API opens a tool input with an empty piece; no JSON at all is an empty input.
            block["input"] = orjson.loads(joined) if joined.strip() else {}
        return block


class MessageStream(JsonEventStream):
    """The events of one Messages stream, folded into the Message; every event is forwarded."""

    __slots__ = ("_message", "_blocks", "_broken")

    def __init__(self) -> None:
        super().__init__()
        self._message: JsonObject | None = None
        self._blocks: dict[int, _Block] = {}
        self._broken = False  # an event of the wrong shape: relayed, but the copy is not stored

    def not_an_object(self) -> bool:
        self._broken = True  # of the wrong shape, like an event missing its fields
        return True

    def fold(self, data: JsonObject, event: SseEvent) -> bool:
        if data.get("type") == "error":
            self._failed = True  # relayed as it came (the SDK raises it), and the stream is not cached
            return True
        try:
            self._fold(data["type"], data)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError):
            # Upstream JSON is untrusted: an event of the wrong shape costs the cache copy, never the relay.
            self._broken = True
        return True

    def _fold(self, kind: str, data: JsonObject) -> None:
        if kind == "message_start":
            self._message = dict(data["message"])
        elif kind == "content_block_start":
            self._blocks[_index(data)] = _Block(dict(data["content_block"]))
        elif kind == "content_block_delta":
            self._blocks[_index(data)].add(data["delta"])
        elif kind == "message_delta":
            message = self._started()
            message.update({key: value for key, value in data["delta"].items() if key in _STOP_FIELDS})
            usage = data.get("usage")
            if isinstance(usage, dict):  # cumulative counts; a null leaves the opening figure
                opening = message.get("usage") or {}
                message["usage"] = {**opening, **{key: value for key, value in usage.items() if value is not None}}
        elif kind == "message_stop":
            self._ended = True
        # content_block_stop, ping and event types new to this proxy change nothing in the copy.

    def _started(self) -> JsonObject:
        if self._message is None:
            raise TypeError("an event before message_start")
        return self._message

    def result(self) -> JsonObject | None:
        if not self._ended or self._failed or self._broken or self._message is None:
            return None
        try:
            content = [self._blocks[index].result() for index in sorted(self._blocks)]
        except orjson.JSONDecodeError:
            return None  # a tool input that is not JSON: the relay had it, the cache does not
        return {**self._message, "content": content}


def message_events(message: JsonObject) -> bytes:
    """The whole event stream of a stored Message, what `messages.stream()` accumulates back into it."""
    opening = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    events = [_event("message_start", message=opening)]
    for index, block in enumerate(message.get("content") or []):
        start, deltas = _block_events(block)
        events.append(_event("content_block_start", index=index, content_block=start))
        if index == 0:
            events.append(_event("ping"))
        events += [_event("content_block_delta", index=index, delta=delta) for delta in deltas]
        events.append(_event("content_block_stop", index=index))
    stop = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    usage = message.get("usage")
    events.append(_event("message_delta", delta=stop, usage=usage if isinstance(usage, dict) else {}))
    events.append(_event("message_stop"))
    return b"".join(events)


def _block_events(block: Any) -> tuple[Any, list[JsonObject]]:
    """A block's opening (its streamed fields empty) and the deltas that fill it."""
    if not isinstance(block, dict):
        return block, []
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        deltas = [{"type": "text_delta", "text": piece} for piece in text_pieces(block["text"])]
        return {**block, "text": ""}, deltas
    if kind == "thinking" and isinstance(block.get("thinking"), str):
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in text_pieces(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block.get("signature") or ""})
        return {**block, "thinking": "", "signature": ""}, deltas
    if kind in _TOOL_INPUT_BLOCKS and isinstance(block.get("input"), dict):
        pieces = _json_pieces(orjson.dumps(block["input"]).decode())
        return {**block, "input": {}}, [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
    return block, []  # redacted thinking, server tool results...: whole in their opening, as the API sends them


def _json_pieces(text: str) -> list[str]:
    size = max(1, -(-len(text) // _TOOL_INPUT_PIECES))
    return [text[start : start + size] for start in range(0, len(text), size)]


def _event(kind: str, **fields: Any) -> bytes:
    return encode_event({"type": kind, **fields}, event=kind)


def _index(data: JsonObject) -> int:
    index = data["index"]
    if not isinstance(index, int):
        raise TypeError(f"index must be an integer, not {type(index).__name__}")
    return index


def _string(delta: JsonObject, name: str) -> str:
    value = delta[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value
