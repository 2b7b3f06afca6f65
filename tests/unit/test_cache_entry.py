"""The stored form of an answer: encoded once, read back without a validation library, checked field by field."""

from __future__ import annotations

import logging
from dataclasses import replace

import orjson
import pytest

from llmproxy.cache.entry import CacheEntry, decode_entry, encode_entry

ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop"}]}
ENTRY = CacheEntry(kind="chat", model="gpt-4o", created_at=1_700_000_000.5, response=ANSWER)


def test_the_stored_bytes_keep_the_format_earlier_releases_wrote_and_read() -> None:
    # Entries already in Redis must stay readable after an upgrade, and older replicas must read new ones.
    expected = (
        b'{"version":1,"kind":"chat","model":"gpt-4o","created_at":1700000000.5,"origin":null,"response":'
        + orjson.dumps(ANSWER)
        + b"}"
    )
    assert encode_entry(ENTRY) == expected


def test_an_entry_reads_back_with_its_response_bytes_as_stored() -> None:
    raw = encode_entry(replace(ENTRY, origin="p:l1:s:abc"))
    entry = decode_entry(raw)
    assert entry == replace(ENTRY, origin="p:l1:s:abc")
    assert entry is not None and entry.encoded_response == orjson.dumps(ANSWER)
    assert decode_entry(raw.decode()) == entry  # a client that decodes responses hands over text


def test_a_copy_writes_the_response_bytes_it_read_without_encoding_them_again() -> None:
    spaced = orjson.dumps(ANSWER, option=orjson.OPT_INDENT_2)  # valid JSON that orjson would not write by itself
    read = decode_entry(encode_entry(ENTRY)[: -len(orjson.dumps(ANSWER)) - 1] + spaced + b"}")
    assert read is not None and read.response == ANSWER and read.encoded_response == spaced
    copy = decode_entry(encode_entry(replace(read, origin="p:l1:s:original")))
    assert copy is not None and copy.encoded_response == spaced and copy.origin == "p:l1:s:original"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b'{"version":1,"kind":"chat","model":"m","created_at":1,"origin":null,"response":{"a":1}',  # cut short
        b'{"version":1,"kind":"chat","model":"m","created_at":1,"origin":null,"response":{"a":1}} ',
        b'{"version":1,"kind":"chat","model":"m","created_at":1,"origin":null,"response":[1]}',
        b'{"version":1,"kind":"chat","model":"m","created_at":1,"origin":null,"response":{"a":}}',
        b'{"version":1,"kind":"nope","model":"m","created_at":1,"origin":null,"response":{}}',
        b'{"version":1,"kind":"chat","model":7,"created_at":1,"origin":null,"response":{}}',
        b'{"version":1,"kind":"chat","model":"m","created_at":true,"origin":null,"response":{}}',
        b'{"version":1,"kind":"chat","model":"m","created_at":"1","origin":null,"response":{}}',
        b'{"version":1,"kind":"chat","model":"m","created_at":1,"origin":5,"response":{}}',
        b'{"version":"1","kind":"chat","model":"m","created_at":1,"origin":null,"response":{}}',
        b'{"kind":"chat","model":"m","created_at":1,"origin":null,"response":{}}',
        b'{"version":1,"kind":"chat","model":"m","created_at":1,"origin":null}',
        b'{"nested":{"x":1,"response":{}},"version":1,"kind":"chat","model":"m","created_at":1,"response":{}}',
    ],
)
def test_unreadable_bytes_are_no_entry_and_are_logged(raw: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llmproxy.cache.entry"):
        assert decode_entry(raw) is None
    assert "unreadable cache entry" in caplog.text


def test_an_entry_of_another_format_version_is_no_entry_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    raw = b'{"version":2,"kind":"chat","model":"m","created_at":1,"origin":null,"response":{}}'
    with caplog.at_level(logging.WARNING, logger="llmproxy.cache.entry"):
        assert decode_entry(raw) is None
    assert caplog.text == ""


def test_integral_creation_times_read_as_floats() -> None:
    entry = decode_entry(b'{"version":1,"kind":"embedding","model":"m","created_at":17,"origin":null,"response":{}}')
    assert entry is not None and entry.created_at == 17.0 and isinstance(entry.created_at, float)
