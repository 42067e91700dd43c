"""The one SSE parser follows the WHATWG event-stream rules, however the bytes are split."""

from __future__ import annotations

import pytest

from llm_localfirst.providers.sse import ServerSentEvent, SSEDecoder

STREAM = (
    b"\xef\xbb\xbf: a comment\r\n"
    b"event: delta\r\ndata: first\r\ndata:second\r\nid: 7\r\nretry: 100\r\n\r\n"
    b"data: cr\rdata: only\r\r"
    b"data\n\n"  # one empty data line: not dispatched
    b"data:\ndata:\n\n"  # two: one newline
    b'unknown: field\ndata: {"a": 1}\n\n'
    b"data: unterminated"
)

EXPECTED = [
    ServerSentEvent("delta", b"first\nsecond"),
    ServerSentEvent("message", b"cr\nonly"),
    ServerSentEvent("message", b"\n"),
    ServerSentEvent("message", b'{"a": 1}'),
]


def decode(*parts: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [event for part in parts for event in decoder.feed(part)]


def test_fields_comments_and_line_endings_follow_the_spec() -> None:
    assert decode(STREAM) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_the_same_events_come_out_wherever_a_read_splits_the_stream(cut: int) -> None:
    assert decode(STREAM[:cut], STREAM[cut:]) == EXPECTED


def test_byte_by_byte_reads_give_the_same_events() -> None:
    assert decode(*(bytes([b]) for b in STREAM)) == EXPECTED


def test_a_crlf_split_across_reads_ends_one_line_not_two() -> None:
    assert decode(b"data: a\r", b"\ndata: b\r\n", b"\r\n") == [ServerSentEvent("message", b"a\nb")]
