"""Replay: turn a cached non-streaming response into the chunks OpenAI would have streamed for it.

The chunk sequence mirrors OpenAI's own (role first, then content, then tool calls, then the finish
reason), so the official SDKs and their stream helpers accumulate it into the cached answer.
"""

from __future__ import annotations

from collections.abc import Callable

from llmproxy.jsontypes import JsonObject
from llmproxy.streaming.chunks import CHUNK_OBJECT, OPTIONAL_ENVELOPE_KEYS, StreamKind
from llmproxy.streaming.sse import done_event, encode_event


def replay_chunks(kind: StreamKind, response: JsonObject, include_usage: bool) -> list[JsonObject]:
    """The chunk objects of a stream equivalent to `response`, usage tail included when asked for."""
    envelope = _envelope(kind, response)
    usage_field: JsonObject = {"usage": None} if include_usage else {}
    chunks = [
        {**envelope, "choices": [choice_chunk], **usage_field}
        for choice in response.get("choices") or []
        for choice_chunk in _CHOICE_REPLAYS[kind](choice)
    ]
    if include_usage and response.get("usage") is not None:
        chunks.append({**envelope, "choices": [], "usage": response["usage"]})
    return chunks


def replay_sse(kind: StreamKind, response: JsonObject, include_usage: bool) -> bytes:
    """The whole SSE body replaying `response`, ending with `data: [DONE]`."""
    events = [encode_event(chunk) for chunk in replay_chunks(kind, response, include_usage)]
    return b"".join(events) + done_event()


def _envelope(kind: StreamKind, response: JsonObject) -> JsonObject:
    envelope: JsonObject = {
        "id": response.get("id"),
        "object": CHUNK_OBJECT[kind],
        "created": response.get("created"),
        "model": response.get("model"),
    }
    envelope.update({key: response[key] for key in OPTIONAL_ENVELOPE_KEYS if key in response})
    return envelope


def _chat_choice_chunks(choice: JsonObject) -> list[JsonObject]:
    index = choice.get("index", 0)
    chunks = [_chat_choice_chunk(index, delta, logprobs, None) for delta, logprobs in _chat_deltas(choice)]
    chunks.append(_chat_choice_chunk(index, {}, None, choice.get("finish_reason")))
    return chunks


def _chat_deltas(choice: JsonObject) -> list[tuple[JsonObject, JsonObject | None]]:
    """The (delta, logprobs) pairs that stream one choice's message, before its finish chunk."""
    message: JsonObject = choice.get("message") or {}
    logprobs: JsonObject = choice.get("logprobs") or {}
    # OpenAI opens with an empty string only when content follows; a tool-call answer keeps null.
    opening_content = None if message.get("content") is None else ""
    deltas: list[tuple[JsonObject, JsonObject | None]] = [
        ({"role": message.get("role") or "assistant", "content": opening_content, "refusal": None}, None)
    ]
    if message.get("content"):
        deltas.append(({"content": message["content"]}, _logprobs_of(logprobs, "content")))
    if message.get("refusal") is not None:
        deltas.append(({"refusal": message["refusal"]}, _logprobs_of(logprobs, "refusal")))
    if message.get("annotations"):
        deltas.append(({"annotations": message["annotations"]}, None))
    for index, call in enumerate(message.get("tool_calls") or []):
        deltas.append(({"tool_calls": [{"index": index, **call}]}, None))
    if message.get("function_call") is not None:
        deltas.append(({"function_call": message["function_call"]}, None))
    return deltas


def _chat_choice_chunk(index: int, delta: JsonObject, logprobs: JsonObject | None, finish: str | None) -> JsonObject:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


def _logprobs_of(logprobs: JsonObject, key: str) -> JsonObject | None:
    """The logprobs for one part of the message (content or refusal), in a chunk's shape."""
    if logprobs.get(key) is None:
        return None
    return {"content": None, "refusal": None, key: logprobs[key]}


def _text_choice_chunks(choice: JsonObject) -> list[JsonObject]:
    index = choice.get("index", 0)
    return [
        {"text": choice.get("text") or "", "index": index, "logprobs": choice.get("logprobs"), "finish_reason": None},
        {"text": "", "index": index, "logprobs": None, "finish_reason": choice.get("finish_reason")},
    ]


_CHOICE_REPLAYS: dict[StreamKind, Callable[[JsonObject], list[JsonObject]]] = {
    "chat": _chat_choice_chunks,
    "completion": _text_choice_chunks,
}
