"""SSE decoding and encoding: every byte kept, any slicing, any line ending, linear work, bounded events (pure)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from llmproxy.streaming import EventTooLargeError, SseDecoder, SseEvent, encode_event

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


def test_encode_event_names_the_type_of_a_typed_event() -> None:
    assert encode_event({"type": "message_stop"}, event="message_stop") == (
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    (decoded,) = SseDecoder().feed(encode_event({"a": 1}, event="response.completed"))
    assert (decoded.event, decoded.data) == ("response.completed", '{"a":1}')


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
