"""A 200 from the upstream is an answer only when it is a JSON object without an error (pure)."""

import pytest

from llmproxy.errors import InvalidUpstreamAnswerError
from llmproxy.protocols.chat import CHAT
from llmproxy.upstream.answers import checked_answer

ANSWER = b'{"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "stop"}]}'


def test_a_json_object_is_returned_parsed() -> None:
    assert checked_answer(ANSWER, "application/json", None, CHAT) == {
        "id": "chatcmpl-1",
        "choices": [{"index": 0, "finish_reason": "stop"}],
    }


def test_a_null_error_field_is_not_an_error() -> None:
    assert checked_answer(b'{"id": "x", "error": null}', "application/json", None, CHAT) == {"id": "x", "error": None}


@pytest.mark.parametrize(
    ("body", "content_type", "names"),
    [
        (ANSWER[:30], "application/json", "application/json"),
        (b"<!DOCTYPE html><html></html>", "text/html; charset=utf-8", "text/html"),
        (b"[1, 2]", "application/json", "application/json"),
        (b"", "", "no content type"),
    ],
    ids=["truncated", "html", "array", "empty"],
)
def test_a_body_that_is_not_a_json_object_is_invalid(body: bytes, content_type: str, names: str) -> None:
    with pytest.raises(InvalidUpstreamAnswerError) as raised:
        checked_answer(body, content_type, None, CHAT)
    assert raised.value.status_code == 502 and raised.value.code == "upstream_invalid_response"
    assert f"({names})" in raised.value.message


def test_an_error_object_is_invalid_and_its_message_is_quoted_shortened() -> None:
    body = b'{"error": {"message": "' + b"m" * 1000 + b'", "type": "server_error"}}'

    with pytest.raises(InvalidUpstreamAnswerError) as raised:
        checked_answer(body, "application/json", None, CHAT)
    assert raised.value.message == "The upstream API answered 200 with an error: " + "m" * 300


def test_a_body_over_the_parse_limit_is_only_outlined() -> None:
    assert checked_answer(b"  " + ANSWER + b"\n", "application/json", 16, CHAT) is None
    with pytest.raises(InvalidUpstreamAnswerError):
        checked_answer(ANSWER[:-1], "application/json", 16, CHAT)
    with pytest.raises(InvalidUpstreamAnswerError):
        checked_answer(b"<html>" + ANSWER + b"</html>", "text/html", 16, CHAT)
