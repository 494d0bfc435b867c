"""Splitting the server's byte stream into frames before ``h2`` sees them.

Sans-I/O and incremental: frames may straddle reads; an incomplete frame waits
in a buffer for the rest. Out come, in order:

- runs of whole frames for ``h2`` (``bytes``);
- :class:`DataFrame`: a DATA frame that does not end its stream. The reader
  delivers it to its stream directly when the stream is ours and open, and
  does the flow-control accounting itself: ``h2``'s per-frame bookkeeping
  (frame objects, ``repr`` for its logger, state machines, window managers)
  costs several times the rest of the client's work per streamed chunk. A
  DATA frame we don't take goes to ``h2`` as it came (``raw``);
- :class:`GoAway`. Why: ``h2`` treats a received GOAWAY as the end of the
  connection; every later frame, even the responses to streams at or below
  ``last_stream_id`` that the server promised to finish, then raises
  ``ProtocolError``. nginx sends exactly that: GOAWAY first, then the remaining
  responses. So the reader handles GOAWAY itself.

Frames that end a stream (END_STREAM) and all other frames go to ``h2``, so
its view of every stream's state stays right.
"""

from __future__ import annotations

__all__ = ["DataFrame", "FrameReader", "GoAway", "window_update"]

_HEADER = 9
_DATA = 0x0
_GOAWAY = 0x7
_END_STREAM = 0x1
_PADDED = 0x8


def window_update(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame (``stream_id`` 0: the connection)."""
    return (
        b"\x00\x00\x04\x08\x00"
        + stream_id.to_bytes(4, "big")
        + increment.to_bytes(4, "big")
    )


class DataFrame:
    """A DATA frame that does not end its stream: its payload without padding,
    its flow-controlled length (with padding), and its raw bytes."""

    __slots__ = ("data", "flow", "raw", "stream_id")

    def __init__(self, stream_id: int, data: bytes, flow: int, raw: bytes) -> None:
        self.stream_id = stream_id
        self.data = data
        self.flow = flow
        self.raw = raw


class GoAway:
    """A GOAWAY frame: the highest stream the server will process, and why.

    ``malformed`` (payload under 8 bytes, or sent on a stream other than 0, a
    connection error by RFC 9113 6.8) promises nothing: every stream already
    sent may have been processed.
    """

    __slots__ = ("error_code", "last_stream_id", "malformed")

    def __init__(
        self, last_stream_id: int, error_code: int, *, malformed: bool = False
    ) -> None:
        self.last_stream_id = last_stream_id
        self.error_code = error_code
        self.malformed = malformed


class FrameReader:
    """Feed server bytes in; get runs for ``h2``, DATA frames and GOAWAYs out."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""  # an incomplete frame from the last read

    def feed(self, data: bytes) -> list[bytes | DataFrame | GoAway]:
        """Split ``data`` (with what an earlier call held back) into items."""
        if self._rest:
            data = self._rest + data
            self._rest = b""
        out: list[bytes | DataFrame | GoAway] = []
        n = len(data)
        pos = run = 0  # data[run:pos] is the current run of frames for h2
        while n - pos >= _HEADER:
            length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
            end = pos + _HEADER + length
            if end > n:
                break
            kind = data[pos + 3]
            if kind == _DATA and not data[pos + 4] & _END_STREAM:
                flags = data[pos + 4]
                start, stop = pos + _HEADER, end
                if flags & _PADDED:
                    pad = data[start] if length else length
                    if pad >= length:  # malformed: let h2 say so
                        pos = end
                        continue
                    start += 1
                    stop -= pad
                if run < pos:
                    out.append(data[run:pos])
                sid = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
                out.append(DataFrame(sid, data[start:stop], length, data[pos:end]))
                run = end
            elif kind == _GOAWAY:
                if run < pos:
                    out.append(data[run:pos])
                sid = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
                out.append(_parse(data[pos + _HEADER : end], sid != 0))
                run = end
            pos = end
        if run < pos:
            out.append(data if run == 0 and pos == n else data[run:pos])
        if pos < n:
            self._rest = data[pos:]
        return out


def _parse(payload: bytes, bad_stream: bool) -> GoAway:
    if len(payload) < 8 or bad_stream:
        return GoAway(0, 1, malformed=True)
    last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
    return GoAway(last, int.from_bytes(payload[4:8], "big"))
