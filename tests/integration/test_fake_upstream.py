"""The fake model server speaks a wire format the official openai SDK parses, and injects faults on request."""

import json
import math
import uuid
from collections.abc import Iterator

import httpx
import httpx2
import openai
import pytest
from openai import OpenAI
from openai.types.chat import (
    ChatCompletionContentPartTextParam,
    ChatCompletionMessageParam,
    ChatCompletionToolChoiceOptionParam,
    ChatCompletionToolParam,
)

from llmproxy.fake_upstream import FakeUpstreamConfig, create_fake_upstream
from tests.support.clients import openai_sdk
from tests.support.servers import serve_in_thread
from tests.support.upstream import FakeUpstream

MODEL = "fake-model"
AUTH = {"Authorization": "Bearer sk-test"}
TOOLS: list[ChatCompletionToolParam] = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}},
]


def ask(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def sdk(url: str, timeout: float = 10.0) -> OpenAI:
    return OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0, timeout=timeout)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream()) as url:
        yield url


@pytest.fixture
def url(server_url: str) -> str:
    httpx.post(server_url + "/_reset").raise_for_status()
    return server_url


@pytest.fixture
def client(url: str) -> Iterator[OpenAI]:
    with sdk(url) as openai_client:
        yield openai_client


def stats(url: str) -> dict[str, object]:
    response = httpx.get(url + "/_stats")
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


# Chat completions


def test_chat_replies_are_numbered_and_quote_the_last_user_message(client: OpenAI) -> None:
    first = client.chat.completions.create(model=MODEL, messages=ask("what is redis"))
    second = client.chat.completions.create(model="fake-model-mini", messages=ask("what is redis"))

    assert first.choices[0].message.content == "Fake reply #1 to: what is redis"
    assert second.choices[0].message.content == "Fake reply #2 to: what is redis"
    assert (first.id, first.object, first.model, first.system_fingerprint) == (
        "chatcmpl-fake-1",
        "chat.completion",
        MODEL,
        "fp_fake",
    )
    assert second.model == "fake-model-mini"
    assert first.choices[0].finish_reason == "stop"
    assert first.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.total_tokens) == (5, 7, 12)


def test_chat_joins_text_parts_of_list_content(client: OpenAI) -> None:
    content: list[ChatCompletionContentPartTextParam] = [
        {"type": "text", "text": "describe"},
        {"type": "text", "text": "this"},
    ]
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert reply.choices[0].message.content == "Fake reply #1 to: describe this"


def test_chat_n_gives_numbered_choices(client: OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=ask("hi"), n=3)
    assert [choice.index for choice in reply.choices] == [0, 1, 2]
    assert [choice.message.content for choice in reply.choices] == [
        "Fake reply #1 to: hi",
        "Fake reply #1 to: hi (choice 1)",
        "Fake reply #1 to: hi (choice 2)",
    ]


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_chat_token_limit_truncates_words_with_length_finish(client: OpenAI, limit: str) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=ask("one two three"), extra_body={limit: 3})
    assert reply.choices[0].message.content == "Fake reply #1"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_chat_stream_matches_the_json_reply_and_ends_with_a_usage_chunk(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=ask("stream  this\nplease"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Fake reply #1 to: stream  this\nplease"
    assert len(chunks) == 1 + 7 + 1 + 1  # role, one per word, finish, usage
    assert [chunk.choices[0].finish_reason for chunk in chunks[:-2]] == [None] * 8
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7 and chunks[-1].usage.prompt_tokens == 5
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert {(c.id, c.object, c.model, c.system_fingerprint, c.created) for c in chunks} == {
        ("chatcmpl-fake-1", "chat.completion.chunk", MODEL, "fp_fake", chunks[0].created)
    }


def test_chat_stream_wire_is_data_events_then_done(url: str) -> None:
    body = {"model": MODEL, "messages": ask("hi"), "stream": True}
    response = httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH)

    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}


# Tool calls


@pytest.mark.parametrize(
    ("tool_choice", "name"),
    [("required", "lookup"), ({"type": "function", "function": {"name": "weather"}}, "weather")],
)
def test_forced_tool_choice_answers_with_a_tool_call(
    client: OpenAI, tool_choice: ChatCompletionToolChoiceOptionParam, name: str
) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=ask("rain in Oslo?"), tools=TOOLS, tool_choice=tool_choice
    )

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id == "call_fake_1" and call.function.name == name
    assert json.loads(call.function.arguments) == {"input": "rain in Oslo?"}


def test_auto_tool_choice_answers_with_text(client: OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=ask("hi"), tools=TOOLS, tool_choice="auto")
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content == "Fake reply #1 to: hi"


def test_streamed_tool_call_arrives_in_argument_fragments(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=ask("rain in Oslo?"),
        tools=TOOLS,
        tool_choice="required",
        stream=True,
    )
    chunks = list(stream)

    opening = chunks[0].choices[0].delta
    assert opening.role == "assistant" and opening.tool_calls is not None
    head = opening.tool_calls[0]
    assert (head.index, head.id, head.type, head.function and head.function.name) == (
        0,
        "call_fake_1",
        "function",
        "lookup",
    )
    fragments = [chunk.choices[0].delta.tool_calls for chunk in chunks[1:-1]]
    assert 2 <= len(fragments) <= 3
    arguments = "".join(calls[0].function.arguments or "" for calls in fragments if calls and calls[0].function)
    assert json.loads(arguments) == {"input": "rain in Oslo?"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# Completions, embeddings, models


def test_completion_json(client: OpenAI) -> None:
    reply = client.completions.create(model=MODEL, prompt="say hi")
    assert reply.object == "text_completion" and reply.id == "cmpl-fake-1"
    assert reply.choices[0].text == "Fake completion #1 for: say hi"
    assert (reply.choices[0].index, reply.choices[0].logprobs, reply.choices[0].finish_reason) == (0, None, "stop")
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 6)


def test_completion_stream_with_usage(client: OpenAI) -> None:
    chunks = list(
        client.completions.create(model=MODEL, prompt="say hi", stream=True, stream_options={"include_usage": True})
    )
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == "Fake completion #1 for: say hi"
    assert all(chunk.object == "text_completion" for chunk in chunks)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 8


def test_embeddings_in_sdk_default_base64_equal_the_float_ones(client: OpenAI, url: str) -> None:
    decoded = client.embeddings.create(model=MODEL, input=["alpha", "beta"])
    floats = client.embeddings.create(model=MODEL, input=["alpha", "beta"], encoding_format="float")

    sent = [json.loads(call["body"]) for call in httpx.get(url + "/_requests").json()["requests"]]
    assert [body.get("encoding_format") for body in sent] == ["base64", "float"]
    assert [item.embedding for item in decoded.data] == [item.embedding for item in floats.data]
    alpha, beta = (item.embedding for item in floats.data)
    assert len(alpha) == 8 and alpha != beta
    assert math.isclose(math.fsum(value * value for value in alpha), 1.0, rel_tol=1e-6)
    assert floats.usage.prompt_tokens == 2 and floats.data[1].index == 1


def test_embeddings_are_deterministic_and_honour_dimensions_and_token_input(client: OpenAI) -> None:
    first = client.embeddings.create(model=MODEL, input="same text", dimensions=32)
    again = client.embeddings.create(model=MODEL, input="same text", dimensions=32)
    tokens = client.embeddings.create(model=MODEL, input=[[1, 2, 3], [4]])

    assert len(first.data[0].embedding) == 32 and first.data[0].embedding == again.data[0].embedding
    assert [item.index for item in tokens.data] == [0, 1]


def test_models_are_listed_and_retrievable(client: OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["fake-model", "fake-model-mini"]
    assert client.models.retrieve("fake-model-mini").owned_by == "llmproxy"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-unknown")


# Errors and faults


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (403, openai.PermissionDeniedError, "invalid_request_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (409, openai.ConflictError, "invalid_request_error"),
        (422, openai.UnprocessableEntityError, "invalid_request_error"),
        (429, openai.RateLimitError, "rate_limit_error"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_status_fault_raises_the_matching_sdk_error(
    client: OpenAI, status: int, error: type[openai.APIStatusError], kind: str
) -> None:
    with pytest.raises(error) as raised:
        client.chat.completions.create(model=MODEL, messages=ask("hi"), extra_headers={"X-Fake-Status": str(status)})
    assert raised.value.status_code == status and raised.value.type == kind


def test_rate_limit_fault_sends_retry_after(client: OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        client.embeddings.create(model=MODEL, input="x", extra_headers={"X-Fake-Status": "429"})
    assert raised.value.response.headers["retry-after"] == "1"


def test_fail_times_fails_only_the_first_attempts_of_a_request_id(url: str) -> None:
    def attempt(request_id: str, **extra: str) -> httpx.Response:
        headers = {**AUTH, "X-Fake-Fail-Times": "2", "X-Fake-Request-Id": request_id, **extra}
        return httpx.post(url + "/v1/chat/completions", json={"model": MODEL, "messages": ask("hi")}, headers=headers)

    first = attempt("a", **{"X-Fake-Retry-After": "3"})
    assert (first.status_code, first.headers["retry-after"]) == (503, "3")
    assert [attempt("a").status_code for _ in range(2)] == [503, 200]
    assert attempt("b", **{"X-Fake-Status": "429"}).status_code == 429  # another request id counts on its own
    assert stats(url)["total"] == 4
    missing_id = httpx.post(url + "/v1/models", headers={**AUTH, "X-Fake-Fail-Times": "1"})
    assert missing_id.status_code == 400


def test_status_fault_on_a_stream_request_is_a_json_error(client: OpenAI, url: str) -> None:
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model=MODEL, messages=ask("hi"), stream=True, extra_headers={"X-Fake-Status": "500"}
        )
    raw = httpx.post(
        url + "/v1/completions",
        json={"model": MODEL, "prompt": "hi", "stream": True},
        headers={**AUTH, "X-Fake-Status": "502"},
    )
    assert raw.status_code == 502 and raw.headers["content-type"] == "application/json"
    assert raw.json()["error"]["type"] == "server_error"


def test_dropped_stream_breaks_the_connection_mid_body(client: OpenAI) -> None:
    received = []
    stream = client.chat.completions.create(
        model=MODEL, messages=ask("one two three"), stream=True, extra_headers={"X-Fake-Drop-After": "3"}
    )
    with pytest.raises(openai.APIConnectionError) as raised:
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3
    # openai 3.x runs on httpx2 (its fork of httpx), which raises this for a truncated chunked body.
    assert isinstance(raised.value.__cause__, httpx2.RemoteProtocolError)
    assert "incomplete chunked read" in str(raised.value.__cause__)


def test_stream_error_event_raises_api_error_after_the_sent_chunks(client: OpenAI) -> None:
    received = []
    stream = client.completions.create(
        model=MODEL, prompt="hi", stream=True, extra_headers={"X-Fake-Stream-Error-After": "2"}
    )
    with pytest.raises(openai.APIError, match="fake stream error") as raised:
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2
    assert raised.value.body == {"message": "fake stream error", "type": "server_error", "param": None, "code": None}


def test_malformed_sse_event_fails_to_decode_after_one_chunk(client: OpenAI, url: str) -> None:
    received = []
    stream = client.chat.completions.create(
        model=MODEL, messages=ask("hi"), stream=True, extra_headers={"X-Fake-Malformed-Sse": "1"}
    )
    with pytest.raises(json.JSONDecodeError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 1
    raw = httpx.post(
        url + "/v1/chat/completions",
        json={"model": MODEL, "messages": ask("hi"), "stream": True},
        headers={**AUTH, "X-Fake-Malformed-Sse": "1"},
    )
    assert raw.text.endswith("\n\ndata: {not json\n\ndata: [DONE]\n\n")


def test_latency_header_makes_the_sdk_time_out(client: OpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).models.list(extra_headers={"X-Fake-Latency-Ms": "1000"})


def test_chunk_delay_header_makes_the_sdk_read_time_out_mid_stream(client: OpenAI) -> None:
    stream = client.with_options(timeout=0.3).chat.completions.create(
        model=MODEL, messages=ask("hi"), stream=True, extra_headers={"X-Fake-Chunk-Delay-Ms": "1000"}
    )
    received = []
    with pytest.raises(openai.APITimeoutError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 1  # the first chunk is flushed before the first delay


def test_configured_latency_applies_unless_a_header_overrides_it() -> None:
    with serve_in_thread(create_fake_upstream(FakeUpstreamConfig(latency_ms=1000))) as slow_url:
        with sdk(slow_url, timeout=0.3) as slow:
            assert slow.models.list(extra_headers={"X-Fake-Latency-Ms": "0"}).data
            with pytest.raises(openai.APITimeoutError):
                slow.models.list()


@pytest.mark.parametrize("header", ["api-key", "x-api-key"])
def test_azure_and_anthropic_style_key_headers_are_accepted(url: str, header: str) -> None:
    assert httpx.get(url + "/v1/models", headers={header: "sk-test"}).status_code == 200
    assert httpx.get(url + "/v1/models", headers={header: ""}).status_code == 401


def test_request_without_bearer_key_is_rejected_with_401(client: OpenAI, url: str) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        client.models.list(extra_headers={"Authorization": "Basic c2stdGVzdA=="})
    assert raised.value.code == "invalid_api_key"
    response = httpx.get(url + "/v1/models")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": "You didn't provide a valid API key.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_unknown_path_and_bad_json_are_openai_errors(client: OpenAI, url: str) -> None:
    with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(GET /v1/nowhere\)"):
        client.get("/nowhere", cast_to=object)
    with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(DELETE /v1/chat/completions\)"):
        client.delete("/chat/completions", cast_to=object)
    response = httpx.post(url + "/v1/chat/completions", content=b"{nope", headers=AUTH)
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


# Echo and bookkeeping


def test_echo_describes_the_request_as_received(url: str) -> None:
    response = httpx.put(
        url + "/v1/echo/files/a%20b?x=1&y=2", content=b"raw body", headers={**AUTH, "X-Custom": "Kept"}
    )
    echoed = response.json()
    assert (echoed["method"], echoed["path"], echoed["query"], echoed["body"]) == (
        "PUT",
        "/v1/echo/files/a b",
        "x=1&y=2",
        "raw body",
    )
    assert echoed["headers"]["x-custom"] == "Kept" and echoed["headers"]["authorization"] == "Bearer sk-test"


def test_stats_count_every_v1_request_at_arrival_and_reset_clears_them(client: OpenAI, url: str) -> None:
    client.chat.completions.create(model=MODEL, messages=ask("hi"))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=ask("hi"), extra_headers={"X-Fake-Status": "500"})
    client.embeddings.create(model=MODEL, input="x")
    httpx.get(url + "/v1/models")  # rejected for lack of a key, still counted

    assert stats(url) == {
        "requests": {"/v1/chat/completions": 2, "/v1/embeddings": 1, "/v1/models": 1},
        "total": 4,
    }
    calls = httpx.get(url + "/_requests").json()["requests"]
    assert [(call["method"], call["path"]) for call in calls][0] == ("POST", "/v1/chat/completions")
    assert json.loads(calls[0]["body"])["messages"] == ask("hi") and calls[0]["query"] == ""

    httpx.post(url + "/_reset").raise_for_status()
    assert stats(url) == {"requests": {}, "total": 0}
    assert httpx.get(url + "/_requests").json() == {"requests": []}
    reply = client.chat.completions.create(model=MODEL, messages=ask("hi"))
    assert reply.choices[0].message.content == "Fake reply #1 to: hi"


# Recorders: each test owns its counts, call log and reply numbers in the shared fake, through the proxy too


def asked(fake: FakeUpstream) -> list[str]:
    """The last user message of each chat request the fake's recorder logged."""
    bodies = [json.loads(call["body"]) for call in fake.requests() if call["path"] == "/v1/chat/completions"]
    return [body["messages"][-1]["content"] for body in bodies]


def answer(sdk: OpenAI, text: str) -> str:
    return sdk.chat.completions.create(model=MODEL, messages=ask(text)).choices[0].message.content or ""


def test_two_recorders_in_one_fake_never_see_each_others_calls_through_the_proxy(
    proxy_url: str, upstream_url: str, api_key: str
) -> None:
    alice = FakeUpstream(upstream_url, f"test-alice-{uuid.uuid4().hex}")
    bob = FakeUpstream(upstream_url, f"test-bob-{uuid.uuid4().hex}")
    questions = [f"question {n} {uuid.uuid4().hex}" for n in range(3)]
    try:
        with openai_sdk(proxy_url, api_key, alice) as for_alice, openai_sdk(proxy_url, api_key, bob) as for_bob:
            assert answer(for_alice, questions[0]) == f"Fake reply #1 to: {questions[0]}"
            assert answer(for_bob, questions[1]) == f"Fake reply #1 to: {questions[1]}"  # numbered per recorder
            assert answer(for_bob, questions[2]) == f"Fake reply #2 to: {questions[2]}"
        assert (alice.calls(), bob.calls()) == (1, 2)
        assert (asked(alice), asked(bob)) == ([questions[0]], questions[1:])
        alice.reset()  # forgets alice's recorder only
        assert (alice.calls(), bob.calls()) == (0, 2)
    finally:
        alice.reset()
        bob.reset()


def test_the_upstream_fixture_counts_only_requests_that_carry_its_header(
    proxy_url: str, upstream_url: str, api_key: str, upstream: FakeUpstream
) -> None:
    body = {"model": MODEL, "messages": ask(f"no recorder {uuid.uuid4().hex}")}
    plain = httpx.post(proxy_url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {api_key}"})
    other = FakeUpstream(upstream_url, f"test-other-{uuid.uuid4().hex}")  # another test's traffic
    with openai_sdk(proxy_url, api_key, other) as elsewhere:
        answer(elsewhere, f"another test {uuid.uuid4().hex}")
    assert plain.status_code == 200 and upstream.calls() == 0 and upstream.requests() == []
    assert body["messages"][-1]["content"] in asked(FakeUpstream(upstream_url))  # the default recorder had it
    assert other.calls() == 1
    other.reset()
    with openai_sdk(proxy_url, api_key, upstream) as own:
        answer(own, f"this test {uuid.uuid4().hex}")
    assert upstream.calls() == 1
