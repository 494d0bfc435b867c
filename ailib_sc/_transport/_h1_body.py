"""Sans-I/O reader of HTTP/1.1 response bodies: chunked, Content-Length, to EOF.

Why not h11 for the body: every chunk of a chunked body becomes an h11 ``Data``
event, extracted from a ``bytearray`` through two copies and a state-machine
round trip, about 4 µs per chunk; a model streaming an SSE event per chunk pays
that per token. h11 still writes the request and parses the response head
(status line, headers, 1xx); :class:`~._h1.H1Connection` hands the bytes h11
received past the head (``h11.Connection.trailing_data``) to a reader made by
:func:`body_reader`, which mirrors h11's framing decision (RFC 9112 §6.3).

Interface, the same for the three readers: ``feed(data)`` adds bytes read from
the socket (``b""`` marks EOF); ``read()`` returns every complete body byte
buffered, in one ``bytes`` (``b""`` if none yet), and raises
:class:`~ailib_sc.RemoteProtocolError` on garbage or, once the buffered bytes
are used up, on an EOF before the end of the body; ``done`` turns True at the
end of the body; ``excess`` counts bytes received past it (a well-behaved server
sends none: the connection is then not reusable).

Theory of operation (chunked). The buffer ``_buf`` is the last bytes fed, with
``_pos`` the offset of the first unconsumed byte. Chunk data is handed out as it
arrives, so what is left over between feeds is at most a partial size line,
CRLF or trailer line: ``feed()`` copies only that remainder, and ``_scan``
remembers how much of it was already searched for a line end, so no byte is
scanned twice. States::

    state      expects                         next state
    ---------  ------------------------------  -----------------------------
    SIZE       hex size [ext] CRLF             DATA (size > 0), TRAILERS (0)
    DATA       ``_left`` bytes of chunk data   CRLF when ``_left`` reaches 0
    CRLF       the CRLF closing the chunk      SIZE
    TRAILERS   header lines, then a blank one  DONE (on the blank line)
    DONE       nothing (the rest is excess)    -

A size line is 1 to 20 hex digits (either case, as h11), optional blanks, an
optional ``;extension`` (ignored), CRLF; unlike h11, blanks before the ``;`` are
accepted (RFC 9112's BWS). A line of bare hex digits, the usual one, is parsed
with ``int()`` alone; anything else goes through a regex. A size line or the
whole trailer section longer than ``MAX_LINE`` raises, as does anything else out
of place, with the offending bytes (at most 40) in the message. A fault found
after some chunk data in the same ``read()`` is raised by the next ``read()``,
so the data before it is delivered first. Trailer lines end in LF or CRLF (as
h11 accepts) and are discarded.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from .._errors import RemoteProtocolError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "MAX_LINE",
    "BodyReader",
    "ChunkedReader",
    "EofReader",
    "LengthReader",
    "body_reader",
]

MAX_LINE: Final = 16 * 1024  # h11's max_incomplete_event_size
_SIZE_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,20})[ \t]*(?:;[^\r\n]*)?")
_SHOW: Final = 40  # bytes of the offending input quoted in a message

_SIZE: Final = 0
_DATA: Final = 1
_CRLF: Final = 2
_TRAILERS: Final = 3
_DONE: Final = 4
_WHERE: Final = (
    "before a chunk size line ended",
    "in chunk data",
    "before the CRLF that ends a chunk",
    "in the trailers after the last chunk",
    "",
)


def _broken(problem: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"the server broke HTTP/1.1 body framing: {problem}; the connection is "
        "closed (a retry opens a new one)"
    )


def _cut_short(detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"the server closed the connection mid-response ({detail})"
    )


class BodyReader:
    """What the three framings have in common (see the module docstring)."""

    __slots__ = ("_buf", "_eof", "done")

    #: False when the body ends only at EOF, so the connection cannot be reused.
    reusable: bool = True

    def __init__(self) -> None:
        self._buf = b""
        self._eof = False
        self.done = False

    def feed(self, data: bytes) -> None:
        """Add ``data`` read from the socket; ``b""`` marks EOF."""
        if not data:
            self._eof = True
        elif self._buf:
            self._buf += data
        else:
            self._buf = data

    def read(self) -> bytes:
        """Every complete body byte buffered, in one piece (``b""`` if none).

        Raises:
            RemoteProtocolError: the body is malformed, or EOF came before its end.
        """
        raise NotImplementedError  # pragma: no cover - abstract

    @property
    def excess(self) -> int:
        """Bytes received past the end of the body (0 until ``done``)."""
        return len(self._buf) if self.done else 0


class LengthReader(BodyReader):
    """A body of exactly ``length`` bytes (``Content-Length``, or 0 for no body)."""

    __slots__ = ("_left", "_length")

    def __init__(self, length: int) -> None:
        super().__init__()
        self._length = length
        self._left = length
        self.done = length == 0

    def read(self) -> bytes:
        buf = self._buf
        if self.done or not buf:
            if self._eof and not self.done:
                got = self._length - self._left
                raise _cut_short(f"{got} of {self._length} body bytes arrived")
            return b""
        left = self._left
        if len(buf) < left:
            self._buf = b""
            self._left = left - len(buf)
            return buf  # the whole read, uncopied
        self._left = 0
        self.done = True
        if len(buf) == left:
            self._buf = b""
            return buf
        self._buf = buf[left:]  # excess: the server sent more than it announced
        return buf[:left]


class EofReader(BodyReader):
    """A body with neither length nor chunking: it ends when the server closes."""

    __slots__ = ()
    reusable = False

    def read(self) -> bytes:
        buf = self._buf
        if buf:
            self._buf = b""
            return buf
        if self._eof:
            self.done = True
        return b""


class ChunkedReader(BodyReader):
    """A ``Transfer-Encoding: chunked`` body (state table in the module docstring)."""

    __slots__ = ("_failed", "_left", "_pos", "_scan", "_state", "_trailer_bytes")

    def __init__(self) -> None:
        super().__init__()
        self._pos = 0
        self._state = _SIZE
        self._left = 0  # chunk data still to come in state DATA
        self._scan = 0  # bytes after _pos known to hold no line end
        self._trailer_bytes = 0
        self._failed: str | None = None  # the fault found after data to hand over

    def feed(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            self._buf = data
        else:  # a partial size line, CRLF or trailer line: a few bytes
            self._buf = buf[pos:] + data
        self._pos = 0

    @property
    def excess(self) -> int:
        return len(self._buf) - self._pos if self.done else 0

    def read(self) -> bytes:
        buf = self._buf
        pos = self._pos
        end = len(buf)
        if pos == end and not self._eof:
            return b""  # the usual call right after the last read took everything
        state = self._state
        left = self._left
        pieces: list[bytes] = []
        try:
            while pos < end:
                if state == _SIZE:
                    i = buf.find(b"\r\n", pos + self._scan)
                    if i < 0 or i - pos > MAX_LINE:
                        if end - pos > MAX_LINE:
                            raise _broken(
                                f"a chunk size line longer than {MAX_LINE} bytes"
                            )
                        self._scan = end - pos - 1  # its last byte may be the CR
                        break
                    self._scan = 0
                    line = buf[pos:i]
                    # Plain hex digits (the usual line) skip the regex; int() would
                    # also take a 0x prefix, hence the test for x and X.
                    if (
                        line.isalnum()
                        and len(line) <= 20
                        and 120 not in line
                        and 88 not in line
                    ):
                        try:
                            left = int(line, 16)
                        except ValueError:
                            raise _broken(
                                f"invalid chunk size line {line[:_SHOW]!r}"
                            ) from None
                    else:
                        m = _SIZE_LINE.fullmatch(line)
                        if m is None:
                            raise _broken(f"invalid chunk size line {line[:_SHOW]!r}")
                        left = int(m[1], 16)
                    pos = i + 2
                    if not left:
                        state = _TRAILERS
                        continue
                    state = _DATA
                if state == _DATA:
                    avail = end - pos
                    if avail > left:
                        pieces.append(buf[pos : pos + left])
                        pos += left
                        if buf.startswith(b"\r\n", pos):  # usually there: skip CRLF
                            pos += 2
                            state = _SIZE
                        else:
                            state = _CRLF
                    else:
                        pieces.append(buf[pos:] if pos else buf)
                        left -= avail
                        pos = end
                        if not left:
                            state = _CRLF
                elif state == _CRLF:
                    if buf.startswith(b"\r\n", pos):
                        pos += 2
                        state = _SIZE
                    elif end - pos == 1 and buf[pos] == 13:
                        break  # the LF is still on its way
                    else:
                        raise _broken(
                            "chunk data runs past its announced size (no CRLF after "
                            f"it: {buf[pos : pos + _SHOW]!r})"
                        )
                elif state == _TRAILERS:
                    i = buf.find(b"\n", pos + self._scan)
                    size = self._trailer_bytes + (end if i < 0 else i + 1) - pos
                    if size > MAX_LINE:
                        raise _broken(f"trailers longer than {MAX_LINE} bytes")
                    if i < 0:
                        self._scan = end - pos
                        break
                    self._scan = 0
                    self._trailer_bytes = size
                    line = buf[pos : i - 1 if i > pos and buf[i - 1] == 13 else i]
                    pos = i + 1
                    if not line:
                        state = _DONE
                        self.done = True
                        break
                    if b":" not in line or line[0] in b" \t":
                        raise _broken(f"invalid trailer line {line[:_SHOW]!r}")
                else:  # _DONE: what is left is excess
                    break
        except RemoteProtocolError as exc:
            if not pieces:
                raise
            # Hand over the data that came before the fault; the next read raises.
            self._failed = str(exc)
            self._eof = True
            self._buf = b""
            self._pos = 0
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._buf = buf
        self._pos = pos
        self._state = state
        self._left = left
        if pieces:
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self._eof and state != _DONE:
            if self._failed is not None:
                raise RemoteProtocolError(self._failed)
            raise _cut_short(f"{_WHERE[state]} of a chunked body")
        return b""


def body_reader(
    method: bytes, status: int, headers: Iterable[tuple[bytes, bytes]]
) -> BodyReader:
    """The reader for the body of a response to ``method`` with ``status`` and
    ``headers`` (names lower-case, as h11 gives them), decided as h11 does:
    HEAD, 204, 304 and a 2xx to CONNECT have no body; then Transfer-Encoding
    (only ``chunked``) beats Content-Length; with neither, the body runs to EOF.

    Raises:
        RemoteProtocolError: a Transfer-Encoding other than chunked, or a bad
            or conflicting Content-Length (h11 refuses both before we get here).
    """
    if (
        status in (204, 304)
        or method == b"HEAD"
        or (method == b"CONNECT" and 200 <= status < 300)
    ):
        return LengthReader(0)
    length: bytes | None = None
    for name, value in headers:
        if name == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                raise _broken(f"unsupported Transfer-Encoding {value[:_SHOW]!r}")
            return ChunkedReader()
        if name == b"content-length":
            values = {v.strip() for v in value.split(b",")}
            if length is not None:
                values.add(length)
            if len(values) != 1:
                raise _broken("conflicting Content-Length headers")
            length = values.pop()
            if not (length.isdigit() and len(length) <= 20):
                raise _broken(f"invalid Content-Length {length[:_SHOW]!r}")
    if length is not None:
        return LengthReader(int(length))
    return EofReader()
