"""OpenAI chunk streams (chat completions and completions): assembly, the relay's view of their events, replay in
several deltas, checked against realistic OpenAI streams and the official SDK (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import httpx2
import orjson
import pytest
from openai import OpenAI, Stream
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import Completion
from openai.types.chat import ChatCompletionChunk

from llmproxy.errors import MalformedStreamError
from llmproxy.jsontypes import JsonObject
from llmproxy.protocols.base import ParsedRequest
from llmproxy.protocols.chat import CHAT
from llmproxy.protocols.completions import COMPLETIONS
from llmproxy.protocols.openai_stream import ChunkedProtocol, is_usage_only_chunk
from llmproxy.protocols.text_pieces import text_pieces
from llmproxy.streaming import SseDecoder, SseEvent, done_event, encode_event

T = TypeVar("T")


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


def assemble(protocol: ChunkedProtocol, chunks: list[JsonObject]) -> JsonObject | None:
    assembler = protocol.chunk_assembler()
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
    assert assemble(CHAT, TEXT_STREAM) == chat_response(chat_choice(content="Hello!"))


def test_parallel_tool_calls_merge_their_argument_fragments() -> None:
    assert assemble(CHAT, TOOL_STREAM) == chat_response(chat_choice(finish="tool_calls", tool_calls=TOOL_CALLS))


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

    result = assemble(CHAT, stream)

    assert result is not None and "usage" not in result
    assert [(c["message"]["content"], c["finish_reason"]) for c in result["choices"]] == [
        ("Hi there", "length"),
        ("Bonjour", "stop"),
    ]


def test_usage_is_taken_from_the_tail_chunk() -> None:
    assembler = CHAT.chunk_assembler()
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

    (choice,) = (assemble(CHAT, stream) or {})["choices"]

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

    assert assemble(CHAT, stream) == {
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
    assert assemble(CHAT, stream) is None


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

    (choice,) = (assemble(COMPLETIONS, stream) or {})["choices"]

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

RESPONSES: dict[str, tuple[ChunkedProtocol, JsonObject]] = {
    "plain text": (CHAT, chat_response(chat_choice(content="Hello!"))),
    "no usage": (CHAT, chat_response(chat_choice(content="Hello!"), usage=None)),
    "two choices": (CHAT, chat_response(chat_choice(0, content="A"), chat_choice(1, "length", content="B"))),
    "two tool calls": (CHAT, chat_response(chat_choice(finish="tool_calls", tool_calls=TOOL_CALLS))),
    "text and tool call": (CHAT, chat_response(chat_choice(content="Let me check.", tool_calls=TOOL_CALLS[:1]))),
    "refusal": (CHAT, chat_response(chat_choice(refusal="I can't help with that."))),
    "logprobs": (CHAT, chat_response(chat_choice(content="Hi", logprobs=CONTENT_LOGPROBS))),
    "empty content": (CHAT, chat_response(chat_choice(content=""))),
    "annotations": (CHAT, chat_response(chat_choice(content="See example.", annotations=[CITATION]))),
    "legacy function call": (CHAT, chat_response(chat_choice(finish="function_call", function_call=FUNCTION_CALL))),
    "completion": (COMPLETIONS, COMPLETION),
    "completion logprobs": (
        COMPLETIONS,
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


def replay_sse(protocol: ChunkedProtocol, response: JsonObject, include_usage: bool) -> bytes:
    """The SSE body replaying response to a stream request that asked (or not) for usage."""
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": include_usage}}
    return protocol.replay(response, ParsedRequest(body=body, model="m", stream=True))


@pytest.mark.parametrize(("protocol", "response"), RESPONSES.values(), ids=RESPONSES.keys())
def test_assembling_a_replay_gives_back_the_response(protocol: ChunkedProtocol, response: JsonObject) -> None:
    assert assemble(protocol, protocol.replay_chunks(response, include_usage=True)) == response


def test_chat_replay_streams_like_openai() -> None:
    envelope = {"id": ENVELOPE["id"], "object": "chat.completion.chunk", "created": ENVELOPE["created"]}
    envelope |= {"model": ENVELOPE["model"], **OPTIONAL}

    chunks = CHAT.replay_chunks(chat_response(chat_choice(content="Hi", logprobs=CONTENT_LOGPROBS)), True)

    assert chunks == [
        {**envelope, "choices": [delta(role="assistant", content="", refusal=None)], "usage": None},
        {**envelope, "choices": [delta(content="Hi", logprobs=CONTENT_LOGPROBS)], "usage": None},
        {**envelope, "choices": [delta(finish="stop")], "usage": None},
        {**envelope, "choices": [], "usage": USAGE},
    ]


def test_replay_without_include_usage_has_no_usage_key_or_tail() -> None:
    chunks = CHAT.replay_chunks(chat_response(chat_choice(content="Hi")), include_usage=False)

    assert len(chunks) == 3
    assert all("usage" not in item and len(item["choices"]) == 1 for item in chunks)


def test_replay_tool_calls_get_one_chunk_each_with_their_index() -> None:
    chunks = CHAT.replay_chunks(RESPONSES["two tool calls"][1], include_usage=False)

    deltas = [item["choices"][0]["delta"] for item in chunks]
    assert deltas[0] == {"role": "assistant", "content": None, "refusal": None}
    assert deltas[1:3] == [{"tool_calls": [{"index": k, **call}]} for k, call in enumerate(TOOL_CALLS)]


def test_replay_sse_decodes_back_to_the_chunks_and_done() -> None:
    protocol, response = RESPONSES["two choices"]

    events = SseDecoder().feed(replay_sse(protocol, response, include_usage=True))

    assert [orjson.loads(event.data or "") for event in events[:-1]] == protocol.replay_chunks(response, True)
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


@pytest.mark.parametrize("name", [name for name, (protocol, _) in RESPONSES.items() if protocol is CHAT])
def test_openai_sdk_accumulates_the_chat_replay_into_the_response(client: OpenAI, name: str) -> None:
    response = RESPONSES[name][1]
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for parsed in sdk_stream(client, ChatCompletionChunk, replay_sse(CHAT, response, True), "chat/completions"):
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
    parsed = list(sdk_stream(client, Completion, replay_sse(COMPLETIONS, COMPLETION, True), "completions"))

    texts = {
        index: "".join(p.choices[0].text for p in parsed if p.choices and p.choices[0].index == index)
        for index in (0, 1)
    }
    finishes = [p.choices[0].finish_reason for p in parsed if p.choices and p.choices[0].finish_reason]
    assert texts == {0: "Hi", 1: "Yo"}
    assert finishes == ["stop", "length"]
    assert parsed[-1].usage is not None and parsed[-1].usage.model_dump(exclude_none=True) == USAGE


# --- The relay's view of the events: end, errors, the hidden usage tail ---------------------------


def events_of(*chunks: JsonObject | str) -> list[SseEvent]:
    """The SSE events of chunks (a str is sent as it is, e.g. "[DONE]") as the relay decodes them."""
    return SseDecoder().feed(b"".join(encode_event(item) for item in chunks))


def stream_request(include_usage: bool) -> ParsedRequest:
    options = {"include_usage": True} if include_usage else {}
    return ParsedRequest(body={"model": "m", "stream": True, "stream_options": options}, model="m", stream=True)


def test_a_stream_ending_with_done_is_ended_and_assembled() -> None:
    assembler = CHAT.assembler(stream_request(include_usage=True), want_usage=True)

    forwarded = [assembler.add(event) for event in events_of(*TEXT_STREAM, "[DONE]")]

    assert all(forwarded) and assembler.ended and not assembler.failed
    assert assembler.result() == chat_response(chat_choice(content="Hello!"))


@pytest.mark.parametrize(
    ("caller_asked", "proxy_asked", "tail_forwarded"), [(False, True, False), (True, True, True), (False, False, True)]
)
def test_the_usage_tail_is_hidden_only_when_the_proxy_asked_for_it(
    caller_asked: bool, proxy_asked: bool, tail_forwarded: bool
) -> None:
    assembler = CHAT.assembler(stream_request(caller_asked), want_usage=proxy_asked)

    forwarded = [assembler.add(event) for event in events_of(*TEXT_STREAM, "[DONE]")]

    assert forwarded == [True] * (len(TEXT_STREAM) - 1) + [tail_forwarded, True]
    assert (assembler.result() or {})["usage"] == USAGE  # stored with its usage either way


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(b'event: error\ndata: {"message": "overloaded"}\n\n', id="typed error event"),
        pytest.param(encode_event({"error": {"message": "overloaded"}}), id="error object"),
        pytest.param(encode_event("[1, 2]"), id="not an object"),
    ],
)
def test_an_error_in_the_stream_is_forwarded_and_nothing_is_stored(error: bytes) -> None:
    assembler = CHAT.assembler(stream_request(include_usage=False), want_usage=False)
    events = [*events_of(*TEXT_STREAM[:3]), *SseDecoder().feed(error), *events_of(*TEXT_STREAM[3:], "[DONE]")]

    assert all(assembler.add(event) for event in events)
    assert assembler.failed and assembler.ended and assembler.result() is None


def test_a_data_line_that_is_not_json_is_a_malformed_stream() -> None:
    assembler = COMPLETIONS.assembler(stream_request(include_usage=False), want_usage=False)

    with pytest.raises(MalformedStreamError):
        assembler.add(SseEvent(raw=b"data: {nope\n\n", data="{nope"))
    assert assembler.failed


def test_a_stream_without_done_is_not_ended_and_comments_change_nothing() -> None:
    assembler = CHAT.assembler(stream_request(include_usage=False), want_usage=False)
    keepalive = SseEvent(raw=b": ping\n\n", data=None)

    assert assembler.add(keepalive) and all(assembler.add(event) for event in events_of(*TEXT_STREAM))
    assert not assembler.ended and assembler.result() is None
    assert assembler.add(SseDecoder().feed(done_event())[0]) and assembler.result() is not None


# --- Several deltas -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "Hi", "Hello there, how are you?", "  leading and trailing  ", "a\nb\tc", " ".join(["word"] * 1000), "日本語"],
)
def test_text_pieces_join_back_into_the_text(text: str) -> None:
    pieces = text_pieces(text)

    assert "".join(pieces) == text
    assert 1 <= len(pieces) <= 16


def test_text_of_several_words_is_cut_into_several_pieces_at_word_starts() -> None:
    assert text_pieces("Hello there, how are you?") == ["Hello ", "there, ", "how ", "are ", "you?"]
    assert text_pieces("one", most=4) == ["one"]
    assert len(text_pieces(" ".join(["w"] * 100), most=8)) == 8
