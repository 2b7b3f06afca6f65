"""SSE decoding, stream assembly and replay, checked against realistic OpenAI streams and the official SDK."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx2
import orjson
import pytest
from openai import OpenAI, Stream
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import Completion
from openai.types.chat import ChatCompletionChunk

from llmproxy.streaming import (
    EventTooLargeError,
    JsonObject,
    SseDecoder,
    SseEvent,
    StreamAssembler,
    StreamKind,
    encode_event,
    is_usage_only_chunk,
    replay_chunks,
    replay_sse,
)

T = TypeVar("T")

# --- SSE decoding -------------------------------------------------------------------------------

MIXED_STREAM = (
    b": keep-alive\r\n\r\n"
    b'event: message\r\nid: 7\r\ndata: {"text": "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8e\x89"}\r\n\r\n'
    b"data: line one\ndata:line two\n: a comment inside an event\nretry: 1000\n\n"
    b"data: [DONE]\r\r"
)


def decode_all(decoder: SseDecoder, slices: Iterator[bytes]) -> list[SseEvent]:
    events = [event for piece in slices for event in decoder.feed(piece)]
    tail = decoder.flush()
    return events if tail is None else [*events, tail]


def test_decoder_parses_fields_and_keeps_every_byte() -> None:
    events = decode_all(SseDecoder(), iter([MIXED_STREAM]))

    assert [event.data for event in events] == [None, '{"text": "héllo 世界 🎉"}', "line one\nline two", "[DONE]"]
    assert [event.event for event in events] == [None, "message", None, None]
    assert events[0].raw == b": keep-alive\r\n\r\n"
    assert events[3].is_done and not events[1].is_done
    assert b"".join(event.raw for event in events) == MIXED_STREAM


@pytest.mark.parametrize("cut", range(1, len(MIXED_STREAM)))
def test_decoder_gives_the_same_events_whatever_the_split(cut: int) -> None:
    assert decode_all(SseDecoder(), iter([MIXED_STREAM[:cut], MIXED_STREAM[cut:]])) == decode_all(
        SseDecoder(), iter([MIXED_STREAM])
    )


def test_decoder_fed_byte_by_byte_gives_the_same_events() -> None:
    one_byte_slices = (MIXED_STREAM[i : i + 1] for i in range(len(MIXED_STREAM)))

    assert decode_all(SseDecoder(), one_byte_slices) == decode_all(SseDecoder(), iter([MIXED_STREAM]))


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_decoder_accepts_each_line_ending(newline: bytes) -> None:
    stream = newline.join([b"data: a", b"data: b", b"", b"data: c", b"", b""])

    events = decode_all(SseDecoder(), iter([stream]))

    assert [event.data for event in events] == ["a\nb", "c"]
    assert b"".join(event.raw for event in events) == stream


def test_crlf_split_between_slices_counts_as_one_line_end() -> None:
    decoder = SseDecoder()

    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\n") == [SseEvent(raw=b"data: a\r\n\r\n", data="a")]
    assert decoder.flush() is None


def test_event_is_emitted_as_soon_as_its_blank_line_arrives() -> None:
    decoder = SseDecoder()

    assert decoder.feed(b'data: {"a": 1}\n') == []
    assert decoder.feed(b"\ndata: {") == [SseEvent(raw=b'data: {"a": 1}\n\n', data='{"a": 1}')]


@pytest.mark.parametrize(
    ("line", "data"),
    [(b"data: x", "x"), (b"data:x", "x"), (b"data:  x", " x"), (b"data:", ""), (b"data", ""), (b"data: a: b", "a: b")],
)
def test_data_field_strips_exactly_one_leading_space(line: bytes, data: str) -> None:
    assert SseDecoder().feed(line + b"\n\n")[0].data == data


def test_comment_only_and_blank_events_have_no_data() -> None:
    events = SseDecoder().feed(b": ping\n\n\nid: 3\n\n")

    assert [(event.raw, event.data) for event in events] == [(b": ping\n\n", None), (b"\n", None), (b"id: 3\n\n", None)]


def test_flush_returns_an_unterminated_tail_and_resets() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: [DONE]") == []

    tail = decoder.flush()

    assert tail == SseEvent(raw=b"data: [DONE]", data="[DONE]")
    assert tail.is_done
    assert decoder.flush() is None
    assert decoder.feed(b"data: next\n\n") == [SseEvent(raw=b"data: next\n\n", data="next")]


def test_flush_completes_an_event_held_back_by_a_final_cr() -> None:
    decoder = SseDecoder()

    assert decoder.feed(b"data: x\r\r") == []
    assert decoder.flush() == SseEvent(raw=b"data: x\r\r", data="x")


def test_leading_bom_is_ignored_but_kept_in_raw() -> None:
    events = SseDecoder().feed(b"\xef\xbb\xbfdata: a\n\n")

    assert events == [SseEvent(raw=b"\xef\xbb\xbfdata: a\n\n", data="a")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert SseDecoder().feed(b"data: \xff\n\n")[0].data == "\ufffd"


def test_encode_event_writes_compact_json_or_the_string_as_is() -> None:
    assert encode_event({"a": [1, "é"], "b": None}) == b'data: {"a":[1,"\xc3\xa9"],"b":null}\n\n'
    assert encode_event("[DONE]") == b"data: [DONE]\n\n"
    assert encode_event("two\nlines") == b"data: two\ndata: lines\n\n"


def test_usage_only_chunk_is_recognised() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}

    assert is_usage_only_chunk({"choices": [], "usage": usage})
    assert not is_usage_only_chunk({"choices": [], "usage": None})
    assert not is_usage_only_chunk({"choices": [{"index": 0, "delta": {}}], "usage": usage})


# --- Assembly of realistic upstream streams -----------------------------------------------------

USAGE: JsonObject = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
ENVELOPE: JsonObject = {"id": "chatcmpl-B9x", "created": 1727000000, "model": "gpt-4o-mini-2024-07-18"}
OPTIONAL: JsonObject = {"service_tier": "default", "system_fingerprint": "fp_0ba0d124f1"}


def chunk(*choices: JsonObject, usage: JsonObject | None = None) -> JsonObject:
    """A chat chunk as OpenAI sends it with include_usage (usage null, an obfuscation pad)."""
    head = {"id": ENVELOPE["id"], "object": "chat.completion.chunk", "created": ENVELOPE["created"]}
    body = {"model": ENVELOPE["model"], **OPTIONAL, "choices": list(choices), "usage": usage, "obfuscation": "x1"}
    return {**head, **body}


def delta(index: int = 0, finish: str | None = None, logprobs: Any = None, **fields: Any) -> JsonObject:
    return {"index": index, "delta": fields, "logprobs": logprobs, "finish_reason": finish}


def assemble(kind: StreamKind, chunks: list[JsonObject]) -> JsonObject | None:
    assembler = StreamAssembler(kind)
    for item in chunks:
        assembler.add(item)
    return assembler.result()


def chat_response(*choices: JsonObject, usage: JsonObject | None = USAGE) -> JsonObject:
    response = {"id": ENVELOPE["id"], "object": "chat.completion", **ENVELOPE, **OPTIONAL, "choices": [*choices]}
    return response if usage is None else {**response, "usage": usage}


def chat_choice(index: int = 0, finish: str = "stop", logprobs: Any = None, **message: Any) -> JsonObject:
    message = {"role": "assistant", "content": None, "refusal": None, **message}
    return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish}


TEXT_STREAM = [
    chunk(delta(role="assistant", content="", refusal=None)),
    chunk(delta(content="Hel")),
    chunk(delta(content="lo")),
    chunk(delta(content="!")),
    chunk(delta(finish="stop")),
    chunk(usage=USAGE),
]

TOOL_CALLS = [
    {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
    {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}},
]


def tool_delta(index: int, **fields: Any) -> JsonObject:
    return delta(tool_calls=[{"index": index, **fields}])


TOOL_STREAM = [
    chunk(delta(role="assistant", content=None, refusal=None)),
    chunk(tool_delta(0, id="call_a", type="function", function={"name": "get_weather", "arguments": ""})),
    chunk(tool_delta(0, function={"arguments": '{"ci'})),
    chunk(tool_delta(0, function={"arguments": 'ty": "Paris"}'})),
    chunk(tool_delta(1, id="call_b", type="function", function={"name": "get_time", "arguments": ""})),
    chunk(tool_delta(1, function={"arguments": '{"tz": '})),
    chunk(tool_delta(1, function={"arguments": '"CET"}'})),
    chunk(delta(finish="tool_calls")),
    chunk(usage=USAGE),
]


def test_text_stream_assembles_into_the_non_streaming_body() -> None:
    assert assemble("chat", TEXT_STREAM) == chat_response(chat_choice(content="Hello!"))


def test_parallel_tool_calls_merge_their_argument_fragments() -> None:
    assert assemble("chat", TOOL_STREAM) == chat_response(chat_choice(finish="tool_calls", tool_calls=TOOL_CALLS))


def test_interleaved_choices_assemble_separately() -> None:
    stream = [
        chunk(delta(0, role="assistant", content=""), delta(1, role="assistant", content="")),
        chunk(delta(1, content="Bon")),
        chunk(delta(0, content="Hi")),
        chunk(delta(1, content="jour")),
        chunk(delta(1, finish="stop")),
        chunk(delta(0, content=" there")),
        chunk(delta(0, finish="length")),
    ]

    result = assemble("chat", stream)

    assert result is not None and "usage" not in result
    assert [(c["message"]["content"], c["finish_reason"]) for c in result["choices"]] == [
        ("Hi there", "length"),
        ("Bonjour", "stop"),
    ]


def test_usage_is_taken_from_the_tail_chunk() -> None:
    assembler = StreamAssembler("chat")
    for item in TEXT_STREAM[:-1]:
        assembler.add(item)
    assert assembler.usage is None

    assembler.add(TEXT_STREAM[-1])

    assert assembler.usage == USAGE


def test_refusal_logprobs_and_legacy_function_call_are_merged() -> None:
    token = {"token": "No", "logprob": -0.1, "bytes": [78, 111], "top_logprobs": []}
    stream = [
        chunk(delta(role="assistant", content=None, refusal="")),
        chunk(delta(refusal="No", logprobs={"content": None, "refusal": [token]})),
        chunk(delta(refusal=".", logprobs={"content": None, "refusal": [token]})),
        chunk(delta(function_call={"name": "lookup", "arguments": '{"q"'})),
        chunk(delta(function_call={"arguments": ": 1}"}, finish="function_call")),
    ]

    (choice,) = (assemble("chat", stream) or {})["choices"]

    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": "No.",
        "function_call": {"name": "lookup", "arguments": '{"q": 1}'},
    }
    assert choice["logprobs"] == {"content": None, "refusal": [token, token]}


def test_missing_keys_are_omitted_and_role_defaults_to_assistant() -> None:
    stream = [{"id": "x", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": "ok"}}]}]
    stream.append({**stream[0], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})

    assert assemble("chat", stream) == {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "logprobs": None, "finish_reason": "stop"}
        ],
    }


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param([], id="no chunks"),
        pytest.param([chunk(usage=USAGE)], id="usage only"),
        pytest.param(TEXT_STREAM[:4], id="no finish reason"),
        pytest.param(
            [chunk(delta(0, content="a"), delta(1, content="b")), chunk(delta(0, finish="stop"))],
            id="one choice unfinished",
        ),
        pytest.param([*TEXT_STREAM[:3], {"error": {"message": "overloaded"}}, *TEXT_STREAM[3:]], id="error event"),
        pytest.param([*TEXT_STREAM[:3], {"choices": ["oops"]}, *TEXT_STREAM[3:]], id="malformed choice"),
        pytest.param([*TEXT_STREAM[:3], chunk(delta(tool_calls=[{"index": "1"}])), *TEXT_STREAM[3:]], id="bad index"),
    ],
)
def test_incomplete_or_malformed_stream_has_no_result(stream: list[JsonObject]) -> None:
    assert assemble("chat", stream) is None


def completion_chunk(text: str, finish: str | None = None, logprobs: Any = None) -> JsonObject:
    choice = {"text": text, "index": 0, "logprobs": logprobs, "finish_reason": finish}
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 5,
        "choices": [choice],
        "model": "gpt-3.5-turbo-instruct",
    }


def test_completion_stream_concatenates_text_and_logprobs() -> None:
    def logprobs(token: str, offset: int) -> JsonObject:
        return {"tokens": [token], "token_logprobs": [-0.5], "top_logprobs": [{token: -0.5}], "text_offset": [offset]}

    stream = [
        completion_chunk("Hi", logprobs=logprobs("Hi", 10)),
        completion_chunk(" you", logprobs=logprobs(" you", 12)),
    ]
    stream.append(completion_chunk("", finish="length"))

    (choice,) = (assemble("completion", stream) or {})["choices"]

    assert choice == {
        "text": "Hi you",
        "index": 0,
        "logprobs": {
            "tokens": ["Hi", " you"],
            "token_logprobs": [-0.5, -0.5],
            "top_logprobs": [{"Hi": -0.5}, {" you": -0.5}],
            "text_offset": [10, 12],
        },
        "finish_reason": "length",
    }


# --- Replay -------------------------------------------------------------------------------------

CONTENT_LOGPROBS: JsonObject = {
    "content": [{"token": "Hi", "logprob": -0.2, "bytes": [72, 105], "top_logprobs": []}],
    "refusal": None,
}
CITATION: JsonObject = {
    "type": "url_citation",
    "url_citation": {"start_index": 4, "end_index": 11, "title": "Example", "url": "https://example.com/"},
}
FUNCTION_CALL: JsonObject = {"name": "lookup", "arguments": '{"q": 1}'}
COMPLETION: JsonObject = {
    "id": "cmpl-9",
    "object": "text_completion",
    "created": 5,
    "model": "gpt-3.5-turbo-instruct",
    "choices": [
        {"text": "Hi", "index": 0, "logprobs": None, "finish_reason": "stop"},
        {"text": "Yo", "index": 1, "logprobs": None, "finish_reason": "length"},
    ],
    "usage": USAGE,
}

RESPONSES: dict[str, tuple[StreamKind, JsonObject]] = {
    "plain text": ("chat", chat_response(chat_choice(content="Hello!"))),
    "no usage": ("chat", chat_response(chat_choice(content="Hello!"), usage=None)),
    "two choices": ("chat", chat_response(chat_choice(0, content="A"), chat_choice(1, "length", content="B"))),
    "two tool calls": ("chat", chat_response(chat_choice(finish="tool_calls", tool_calls=TOOL_CALLS))),
    "text and tool call": ("chat", chat_response(chat_choice(content="Let me check.", tool_calls=TOOL_CALLS[:1]))),
    "refusal": ("chat", chat_response(chat_choice(refusal="I can't help with that."))),
    "logprobs": ("chat", chat_response(chat_choice(content="Hi", logprobs=CONTENT_LOGPROBS))),
    "empty content": ("chat", chat_response(chat_choice(content=""))),
    "annotations": ("chat", chat_response(chat_choice(content="See example.", annotations=[CITATION]))),
    "legacy function call": ("chat", chat_response(chat_choice(finish="function_call", function_call=FUNCTION_CALL))),
    "completion": ("completion", COMPLETION),
    "completion logprobs": (
        "completion",
        {
            **COMPLETION,
            "choices": [
                {
                    **COMPLETION["choices"][0],
                    "logprobs": {"tokens": ["Hi"], "token_logprobs": [-1.0], "top_logprobs": None, "text_offset": [0]},
                }
            ],
        },
    ),
}


@pytest.mark.parametrize(("kind", "response"), RESPONSES.values(), ids=RESPONSES.keys())
def test_assembling_a_replay_gives_back_the_response(kind: StreamKind, response: JsonObject) -> None:
    assert assemble(kind, replay_chunks(kind, response, include_usage=True)) == response


def test_chat_replay_streams_like_openai() -> None:
    envelope = {"id": ENVELOPE["id"], "object": "chat.completion.chunk", "created": ENVELOPE["created"]}
    envelope |= {"model": ENVELOPE["model"], **OPTIONAL}

    chunks = replay_chunks("chat", chat_response(chat_choice(content="Hi", logprobs=CONTENT_LOGPROBS)), True)

    assert chunks == [
        {**envelope, "choices": [delta(role="assistant", content="", refusal=None)], "usage": None},
        {**envelope, "choices": [delta(content="Hi", logprobs=CONTENT_LOGPROBS)], "usage": None},
        {**envelope, "choices": [delta(finish="stop")], "usage": None},
        {**envelope, "choices": [], "usage": USAGE},
    ]


def test_replay_without_include_usage_has_no_usage_key_or_tail() -> None:
    chunks = replay_chunks("chat", chat_response(chat_choice(content="Hi")), include_usage=False)

    assert len(chunks) == 3
    assert all("usage" not in item and len(item["choices"]) == 1 for item in chunks)


def test_replay_tool_calls_get_one_chunk_each_with_their_index() -> None:
    chunks = replay_chunks("chat", RESPONSES["two tool calls"][1], include_usage=False)

    deltas = [item["choices"][0]["delta"] for item in chunks]
    assert deltas[0] == {"role": "assistant", "content": None, "refusal": None}
    assert deltas[1:3] == [{"tool_calls": [{"index": k, **call}]} for k, call in enumerate(TOOL_CALLS)]


def test_replay_sse_decodes_back_to_the_chunks_and_done() -> None:
    kind, response = RESPONSES["two choices"]

    events = SseDecoder().feed(replay_sse(kind, response, include_usage=True))

    assert [orjson.loads(event.data or "") for event in events[:-1]] == replay_chunks(kind, response, True)
    assert events[-1].raw == b"data: [DONE]\n\n"


# --- The official SDK parses the replay ---------------------------------------------------------


@pytest.fixture
def client() -> Iterator[OpenAI]:
    with OpenAI(api_key="sk-test", base_url="http://proxy.invalid/v1", max_retries=0) as sdk_client:
        yield sdk_client


def sdk_stream(client: OpenAI, cast_to: type[T], body: bytes, path: str) -> Stream[T]:
    request = httpx2.Request("POST", f"http://proxy.invalid/v1/{path}")
    response = httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body, request=request)
    return Stream(cast_to=cast_to, response=response, client=client)


SDK_MESSAGE_FIELDS: Any = {
    "role": True,
    "content": True,
    "refusal": True,
    "annotations": True,
    "function_call": True,
    "tool_calls": {"__all__": {"id": True, "type": True, "function": {"name": True, "arguments": True}}},
}


@pytest.mark.parametrize("name", [name for name, (kind, _) in RESPONSES.items() if kind == "chat"])
def test_openai_sdk_accumulates_the_chat_replay_into_the_response(client: OpenAI, name: str) -> None:
    response = RESPONSES[name][1]
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for parsed in sdk_stream(client, ChatCompletionChunk, replay_sse("chat", response, True), "chat/completions"):
        state.handle_chunk(parsed)

    final = state.current_completion_snapshot

    assert (final.id, final.created, final.model) == (response["id"], response["created"], response["model"])
    assert final.system_fingerprint == response["system_fingerprint"]
    assert (final.usage and final.usage.model_dump(exclude_none=True)) == response.get("usage")
    for got, want in zip(final.choices, response["choices"], strict=True):
        unset: JsonObject = {"annotations": None, "function_call": None, "tool_calls": None}
        assert got.message.model_dump(include=SDK_MESSAGE_FIELDS) == {**unset, **want["message"]}
        assert (got.logprobs and got.logprobs.model_dump()) == want["logprobs"]
        assert (got.index, got.finish_reason) == (want["index"], want["finish_reason"])


def test_openai_sdk_parses_the_completion_replay(client: OpenAI) -> None:
    parsed = list(sdk_stream(client, Completion, replay_sse("completion", COMPLETION, True), "completions"))

    texts = {
        index: "".join(p.choices[0].text for p in parsed if p.choices and p.choices[0].index == index)
        for index in (0, 1)
    }
    finishes = [p.choices[0].finish_reason for p in parsed if p.choices and p.choices[0].finish_reason]
    assert texts == {0: "Hi", 1: "Yo"}
    assert finishes == ["stop", "length"]
    assert parsed[-1].usage is not None and parsed[-1].usage.model_dump(exclude_none=True) == USAGE


# --- SSE decoding: work and limits -----------------------------------------------------------------

TRANSPORT_SLICE = 16 * 1024  # what the aiohttp transport hands over at a time


def feed_in_slices(decoder: SseDecoder, stream: bytes, size: int = TRANSPORT_SLICE) -> list[SseEvent]:
    return [event for start in range(0, len(stream), size) for event in decoder.feed(stream[start : start + size])]


def test_a_huge_event_fed_in_slices_is_scanned_once() -> None:
    event = b"data: " + b"x" * 5_000_000 + b"\n\n"
    decoder = SseDecoder()

    events = feed_in_slices(decoder, event)

    assert [e.raw for e in events] == [event]
    # Linear: every byte is looked at once per line-end byte (LF, CR), however many slices the event came in.
    assert decoder.bytes_scanned <= 2 * len(event), f"scanned {decoder.bytes_scanned:,} bytes of {len(event):,}"


def test_many_small_events_fed_in_slices_are_scanned_once() -> None:
    stream = b"".join(b'data: {"n": %d}\r\n\r\n' % n for n in range(20_000))
    decoder = SseDecoder()

    events = feed_in_slices(decoder, stream, size=1000)

    assert len(events) == 20_000 and b"".join(e.raw for e in events) == stream
    assert decoder.bytes_scanned <= 2 * len(stream)


def test_an_event_still_arriving_past_the_limit_raises() -> None:
    decoder = SseDecoder(max_event_bytes=100)
    assert decoder.feed(b"data: " + b"x" * 90) == []

    with pytest.raises(EventTooLargeError) as raised:
        decoder.feed(b"x" * 10)
    assert raised.value.limit == 100


def test_a_complete_event_past_the_limit_raises_even_in_one_slice() -> None:
    small = b"data: " + b"x" * 92 + b"\n\n"  # 100 bytes: at the limit is allowed
    assert SseDecoder(max_event_bytes=100).feed(small)[0].raw == small

    with pytest.raises(EventTooLargeError):
        SseDecoder(max_event_bytes=100).feed(small + b"data: " + b"y" * 93 + b"\n\n")


def test_many_small_events_in_one_slice_do_not_add_up_to_the_limit() -> None:
    stream = b"data: 12345678\n\n" * 1000

    assert len(SseDecoder(max_event_bytes=16).feed(stream)) == 1000


def test_an_unterminated_tail_at_the_limit_is_flushed() -> None:
    decoder = SseDecoder(max_event_bytes=10)
    assert decoder.feed(b"data: 1234") == []

    assert decoder.flush() == SseEvent(raw=b"data: 1234", data="1234")


@pytest.mark.parametrize("seed", range(20))
def test_decoder_gives_the_same_events_for_any_slicing_of_mixed_line_ends(seed: int) -> None:
    generator = random.Random(seed)
    stream = b"".join(
        generator.choice([b"data: x" * generator.randint(0, 50), b": ping", b"event: e", b""])
        + generator.choice([b"\n", b"\r", b"\r\n"])
        for _ in range(300)
    )
    cuts = sorted(generator.sample(range(1, len(stream)), 40))
    slices = [stream[start:end] for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    assert decode_all(SseDecoder(), iter(slices)) == decode_all(SseDecoder(), iter([stream]))
