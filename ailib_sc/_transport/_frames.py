"""Taking GOAWAY frames out of the server's byte stream before ``h2`` sees them.

Why: ``h2`` treats a received GOAWAY as the end of the connection; every later
frame, even the responses to streams at or below ``last_stream_id`` that the
server promised to finish, then raises ``ProtocolError``. nginx sends exactly
that: GOAWAY first, then the remaining responses. So the reader passes all other
frames through untouched and handles GOAWAY itself.

Sans-I/O and incremental: frame headers may straddle reads; bytes are examined
once (we only walk frame headers and skip payloads by length).
"""

from __future__ import annotations

__all__ = ["GoAway", "GoAwayFilter"]

_HEADER = 9
_GOAWAY = 0x7


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


class GoAwayFilter:
    """Feed server bytes in; get the bytes for ``h2`` and the GOAWAYs found."""

    __slots__ = ("_goaway", "_goaway_bad", "_goaway_left", "_header", "_skip")

    def __init__(self) -> None:
        self._header = bytearray()  # a frame header split across reads
        self._skip = 0  # payload bytes of a passed-through frame still to come
        self._goaway_left = 0  # payload bytes of a GOAWAY still to come
        self._goaway = bytearray()
        self._goaway_bad = False  # the GOAWAY being captured is on a non-zero stream

    def feed(self, data: bytes) -> tuple[bytes, list[GoAway]]:
        """Split ``data``: what ``h2`` should receive, and complete GOAWAYs."""
        found: list[GoAway] = []
        out: list[bytes] = []
        n = len(data)
        i = run = 0  # data[run:i] is the current pass-through run
        modified = False
        while i < n:
            if self._skip:  # inside a passed-through payload
                take = min(self._skip, n - i)
                self._skip -= take
                i += take
                continue
            if self._goaway_left:  # inside a GOAWAY payload: capture it
                take = min(self._goaway_left, n - i)
                self._goaway += data[i : i + take]
                self._goaway_left -= take
                i += take
                run = i
                modified = True
                if not self._goaway_left:
                    found.append(_parse(bytes(self._goaway), self._goaway_bad))
                    self._goaway.clear()
                continue
            modified_here, header = False, b""
            if self._header:  # finish a header that straddled the last read
                take = min(_HEADER - len(self._header), n - i)
                self._header += data[i : i + take]
                i += take
                run = i
                modified = True
                if len(self._header) < _HEADER:
                    break
                header = bytes(self._header)
                self._header.clear()
                modified_here = True
            elif n - i < _HEADER:  # a header straddles the end: withhold it
                out.append(data[run:i])
                self._header += data[i:]
                i = run = n
                modified = True
                break
            else:
                header = data[i : i + _HEADER]
                i += _HEADER
            length = int.from_bytes(header[:3], "big")
            if header[3] == _GOAWAY:
                if not modified_here:
                    out.append(data[run : i - _HEADER])
                run = i
                modified = True
                self._goaway_left = length
                self._goaway_bad = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF != 0
                if not length:
                    found.append(GoAway(0, 1, malformed=True))
                continue
            if modified_here:
                out.append(header)
            self._skip = length
        if not modified:
            return data, found
        out.append(data[run:i])
        return b"".join(out), found


def _parse(payload: bytes, bad_stream: bool) -> GoAway:
    if len(payload) < 8 or bad_stream:
        return GoAway(0, 1, malformed=True)
    last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
    return GoAway(last, int.from_bytes(payload[4:8], "big"))
