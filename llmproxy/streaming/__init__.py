"""Streaming: SSE decoding and encoding, assembly of a streamed answer for the cache, and replay of a cached one.

Pure code, no I/O: the pipeline feeds upstream bytes in and writes the returned bytes out.
"""

from llmproxy.jsontypes import JsonObject
from llmproxy.streaming.assembly import StreamAssembler
from llmproxy.streaming.chunks import StreamKind, is_usage_only_chunk
from llmproxy.streaming.replay import replay_chunks, replay_sse
from llmproxy.streaming.sse import EventTooLargeError, SseDecoder, SseEvent, done_event, encode_event

__all__ = [
    "EventTooLargeError",
    "StreamKind",
    "JsonObject",
    "SseDecoder",
    "SseEvent",
    "StreamAssembler",
    "done_event",
    "encode_event",
    "is_usage_only_chunk",
    "replay_chunks",
    "replay_sse",
]
