"""Upstream bodies decoded from their Content-Encoding chunk by chunk, and header text as the client reads it."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from llmproxy.upstream.client import decoded_body, text_headers, wire_headers
from llmproxy.upstream.decoding import BodyDecoder, DecodingError

BODY = b'{"id":"chatcmpl-1","choices":[{"message":{"content":"' + b"word " * 2000 + b'"}}]}'


def in_chunks(decoder: BodyDecoder, data: bytes, size: int = 100) -> bytes:
    """What the decoder gives for `data` fed `size` bytes at a time, flushed at the end."""
    pieces = [decoder.decode(data[start : start + size]) for start in range(0, len(data), size)]
    return b"".join(pieces) + decoder.flush()


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", raw_deflate(BODY)),  # deflate without the zlib header, as some servers send it
        ("br", brotli.compress(BODY)),
        ("GZip", gzip.compress(BODY)),
    ],
)
def test_each_encoding_is_decoded_whether_whole_or_in_chunks(encoding: str, encoded: bytes) -> None:
    assert in_chunks(BodyDecoder(encoding), encoded) == BODY
    assert decoded_body([("content-encoding", encoding)], encoded) == BODY


def test_several_encodings_are_undone_last_applied_first() -> None:
    encoded = brotli.compress(gzip.compress(BODY))

    assert in_chunks(BodyDecoder("gzip, br"), encoded) == BODY


@pytest.mark.parametrize("encoding", ["", "identity", "compress-of-the-future"])
def test_a_body_without_a_known_encoding_is_passed_on_unchanged(encoding: str) -> None:
    decoder = BodyDecoder(encoding)

    assert decoder.identity
    assert decoded_body([("content-encoding", encoding)], BODY) == BODY
    assert decoded_body([], BODY) == BODY


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_body_not_in_its_encoding_is_a_decoding_error(encoding: str) -> None:
    with pytest.raises(DecodingError):
        in_chunks(BodyDecoder(encoding), b"<html>this is not compressed at all</html>")


def test_response_headers_are_lower_case_text_ascii_then_utf8_then_latin1() -> None:
    assert text_headers(((b"Content-Type", b"application/json"),)) == [("content-type", "application/json")]
    assert text_headers(((b"X-Name", "café".encode()),)) == [("x-name", "café")]
    assert text_headers(((b"X-Name", b"caf\xe9"),)) == [("x-name", "café")]


def test_request_header_bytes_that_are_utf8_reach_the_upstream_unchanged() -> None:
    # Values arrive decoded as ISO-8859-1: the UTF-8 bytes of "café" read as four Latin-1 characters and one more.
    as_received = "café".encode().decode("latin-1")

    assert wire_headers([("x-name", as_received), ("x-plain", "ascii")]) == [("x-name", "café"), ("x-plain", "ascii")]
    assert wire_headers([("x-name", "caf\xe9")]) == [("x-name", "caf\xe9")]  # not UTF-8 bytes: sent as its UTF-8
