"""The one server-sent events parser, as the WHATWG HTML standard defines the format.

Every provider that reads an event stream uses :class:`SSEDecoder`: lines end in
CRLF, LF or CR (also split across reads); ``:`` starts a comment; ``data:`` lines of
one event are joined with ``\\n``; ``event:`` names the event; ``id:`` and
``retry:`` are accepted and ignored (we never reconnect); a blank line dispatches
the event; an event whose data is empty is not dispatched, and an unterminated event at
the end of the stream is dropped. Bytes in, bytes out: decoding JSON is the
caller's business. This module performs no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event.

    Attributes:
        event: The ``event:`` field, ``"message"`` when absent.
        data: The ``data:`` lines joined with ``\\n`` (raw UTF-8 bytes).
    """

    event: str
    data: bytes


class SSEDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole events back."""

    __slots__ = ("_buffer", "_data", "_event", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event = b""
        self._skip_lf = False
        self._started = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk``; return the events it completed (possibly none)."""
        if self._skip_lf:  # the last read ended in CR: an LF now is the rest of a CRLF
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            if buffer.startswith(_BOM):
                buffer = buffer[len(_BOM) :]
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, self._buffer = buffer.split(b"\n")
        events: list[ServerSentEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: bytes) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == 0x3A:  # ":" comment
            return None
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        # "id", "retry" and unknown fields are ignored: we never reconnect.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], b""
        joined = b"\n".join(data)
        if not joined:  # no data, or one empty data line: nothing to dispatch
            return None
        return ServerSentEvent(event.decode("utf-8", "replace") or "message", joined)
