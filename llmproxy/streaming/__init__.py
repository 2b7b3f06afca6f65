"""Streaming: SSE decoding and encoding primitives (pure); what a protocol's events mean lives in protocols/."""

from llmproxy.streaming.sse import EventTooLargeError, SseDecoder, SseEvent, done_event, encode_event

__all__ = ["EventTooLargeError", "SseDecoder", "SseEvent", "done_event", "encode_event"]
