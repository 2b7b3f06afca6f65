"""The fake model server's hostile-upstream faults: spoiled 200 bodies, error events, keep-alives, huge events."""

import json

import httpx
import pytest
from openai import OpenAI

from tests.integration import test_fake_upstream as plain_fake_tests
from tests.integration.test_fake_upstream import AUTH, MODEL, ask

# The same fixtures as the plain fake's tests (a fake server of this module's own, reset per test).
server_url = plain_fake_tests.server_url
url = plain_fake_tests.url
client = plain_fake_tests.client


def post_chat(url: str, headers: dict[str, str], stream: bool = False) -> httpx.Response:
    body = {"model": MODEL, "messages": ask("hi"), "stream": stream}
    return httpx.post(url + "/v1/chat/completions", json=body, headers={**AUTH, **headers}, timeout=30)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_bad_body_truncated_answers_200_with_half_a_json_body(url: str, stream: bool) -> None:
    response = post_chat(url, {"X-Fake-Bad-Body": "truncated"}, stream)

    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.text.startswith('{"id":"chatcmpl-fake-1"')
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_bad_body_html_answers_200_with_an_html_page(url: str) -> None:
    response = post_chat(url, {"X-Fake-Bad-Body": "html"})

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_unknown_bad_body_kind_is_a_400(url: str) -> None:
    assert post_chat(url, {"X-Fake-Bad-Body": "gzip"}).status_code == 400


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        ("typed", 'event: error\ndata: {"error":{"message":"fake stream error","type":"server_error",'),
        ("bare", 'event: error\ndata: {"message":"fake stream error","type":"server_error"}'),
        ("data", 'data: {"error":{"message":"fake stream error","type":"server_error",'),
    ],
)
def test_error_event_follows_a_complete_answer_and_precedes_done(url: str, kind: str, event: str) -> None:
    events = post_chat(url, {"X-Fake-Error-Event": kind}, stream=True).text.split("\n\n")

    assert events[-2:] == ["data: [DONE]", ""]
    assert events[-3].startswith(event)
    last_chunk = json.loads(events[-4].removeprefix("data: "))
    assert last_chunk["choices"][0]["finish_reason"] == "stop"


def test_keepalive_sends_ping_comments_before_the_first_chunk(url: str, client: OpenAI) -> None:
    text = post_chat(url, {"X-Fake-Keepalive-Ms": "250"}, stream=True).text

    pings, _, rest = text.rpartition(": ping\n\n")
    assert pings.count(": ping\n\n") >= 1 and set(pings.split(": ping\n\n")) == {""}
    assert rest.startswith('data: {"id":"chatcmpl-fake-1"') and rest.endswith("data: [DONE]\n\n")
    stream = client.chat.completions.create(
        model=MODEL, messages=ask("hi"), stream=True, extra_headers={"X-Fake-Keepalive-Ms": "150"}
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == "Fake reply #2 to: hi"


def test_content_bytes_pads_the_reply_into_one_huge_event(url: str, client: OpenAI) -> None:
    size = 300_000
    completion = client.chat.completions.create(
        model=MODEL, messages=ask("hi"), extra_headers={"X-Fake-Content-Bytes": str(size)}
    )
    content = completion.choices[0].message.content or ""
    assert len(content.encode()) == size and content.startswith("Fake reply #1 to: hi x")

    events = post_chat(url, {"X-Fake-Content-Bytes": str(size)}, stream=True).text.split("\n\n")
    [huge] = [event for event in events if len(event) > size]
    assert json.loads(huge.removeprefix("data: "))["choices"][0]["delta"]["content"] == "x" * (size - 21)
