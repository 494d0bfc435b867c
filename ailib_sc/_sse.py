"""Sans-I/O stream framing: Server-Sent Events and NDJSON lines.

Bytes go in through ``feed()`` in whatever pieces the transport delivers;
complete events (or lines) come out. ``end()`` is called once the body is over
and raises :class:`~ailib_sc.ResponseDecodeError` if the body stopped in the
middle of an event. Nothing here does I/O, so everything is tested
synchronously, split at every byte.

Theory of operation (SSE, WHATWG HTML "Parsing an event stream"):

* Buffer. ``_buf`` holds only the *unterminated tail* of the stream: the bytes
  after the last line break seen so far. Every byte fed is searched for line
  breaks exactly once, in the chunk it arrived in (``rfind`` for the last LF and
  the last CR); the tail never needs a rescan because it is known to hold no
  line break. When a later chunk completes the tail's line, the tail is copied
  once into the region of complete lines and the buffer is emptied, so there is
  no consumed prefix to compact. ``_scanned`` counts bytes searched or split, so
  a test can check that the work stays linear however the stream is chunked.
* Line breaks. CRLF, LF and CR all end a line. A region of complete lines that
  holds a CR is normalised (``CRLF -> LF``, then ``CR -> LF``) and split on LF in
  C. A CR that is the very last byte fed ends its line at once (events are never
  held back); ``_skip_lf`` then drops an LF at the start of the next chunk,
  since the two were one CRLF.
* Fast path. Nothing is pending and the chunk ends in LF (the usual
  ``data: {...}\\n\\n`` from OpenAI-style servers, or Gemini's CRLF pairs): the
  chunk is all complete lines and is split directly, with no copy into the
  buffer and no ``rfind``. Membership tests use ``13 in data`` (a plain
  ``memchr``), which is several times faster than ``b"\\r" in data``.
* Lines, in order of how often they occur::

      line                    action
      ----------------------  ----------------------------------------------
      b""                     dispatch if data was seen; reset type and retry
      b"data:" ...            append the value (one leading space removed)
      b":" ...                comment (keep-alives such as ``: OPENROUTER ...``)
      name b":" value         ``event`` / ``id`` / ``retry``; others ignored
      name (no colon)         the field ``name`` with an empty value

* A leading UTF-8 BOM on the first line is dropped (the first feeds wait for
  three bytes or for a byte that rules the BOM out).

Limits: a line longer than ``max_event_bytes`` (excluding its line break) or an
event whose data grows past ``max_event_bytes`` raises ``ResponseDecodeError``
with the stream offset of the line at fault. After an error the decoder must
be discarded.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from ailib_sc._errors import IncompleteStreamError, ResponseDecodeError

__all__ = [
    "JSONBlockSSEDecoder",
    "NDJSONEvents",
    "NDJSONSplitter",
    "SSEDecoder",
    "SSEEvent",
]

_BOM: Final = b"\xef\xbb\xbf"
_DEFAULT_MAX: Final = 8 * 1024 * 1024
_LINE_BREAK: Final = re.compile(rb"\r\n?|\n")


class SSEEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One dispatched Server-Sent Event.

    Attributes:
        event: the event type; ``"message"`` when the block had no ``event:`` field
            (or an empty one).
        data: the block's ``data:`` values joined with ``b"\\n"``, as raw bytes
            (JSON decoders take bytes, so no UTF-8 decoding happens here).
        id: the last event id seen on the stream so far (it persists across
            events, per the spec), or None if the stream never sent one. An
            empty ``id:`` field resets it to ``""``; one containing NUL is ignored.
        retry: the reconnection time in milliseconds if this block carried a
            valid ``retry:`` field (ASCII digits only), else None.
    """

    event: str = "message"
    data: bytes = b""
    id: str | None = None
    retry: int | None = None


def _line_error(kind: str, offset: int, limit: int, knob: str) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"{kind} line starting at byte offset {offset} of the stream is longer "
        f"than {knob}={limit} bytes; raise ConnectionOptions(max_event_bytes=...) "
        "if the provider really sends lines this long"
    )


def _split_crlf(region: bytes) -> list[bytes]:
    """Split ``region`` at CRLF, CR and LF (it ends with one of them)."""
    text = region.replace(b"\r\n", b"\n")
    if 13 in text:  # a lone CR (rare): it ends a line too
        text = text.replace(b"\r", b"\n")
    return text.split(b"\n")


def _nth_line_start(raw: bytes, index: int) -> int:
    """Offset in ``raw`` where line ``index`` starts (error path only)."""
    if index == 0:
        return 0
    for count, match in enumerate(_LINE_BREAK.finditer(raw), 1):
        if count == index:
            return match.end()
    return len(raw)  # pragma: no cover - index is always a line of raw


class SSEDecoder:
    """Incremental Server-Sent Events parser (sans-I/O).

    Feed it the response body in any chunking; it returns each event as soon as
    the blank line that ends it has arrived. It does not interpret payloads
    (``[DONE]`` and JSON are the provider codec's business).

    Args:
        max_event_bytes: the most data one event may accumulate, and the longest
            line the stream may send, in bytes. Default 8 MiB. Exceeding it
            raises :class:`~ailib_sc.ResponseDecodeError`.
    """

    __slots__ = (
        "_buf",
        "_event",
        "_fast",
        "_fed",
        "_id",
        "_max",
        "_parts",
        "_retry",
        "_scanned",
        "_size",
        "_skip_lf",
        "_start",
        "salvaged",
    )

    def __init__(self, *, max_event_bytes: int = _DEFAULT_MAX) -> None:
        if max_event_bytes < 1:
            raise ValueError(f"max_event_bytes must be >= 1, got {max_event_bytes}")
        self._max = max_event_bytes
        # After feed() raised: the events that piece completed before the fault
        # (they were not returned; a stream still delivers them).
        self.salvaged: list[SSEEvent] = []
        self._buf = bytearray()  # the unterminated tail; holds no CR or LF
        self._fed = 0  # bytes fed so far; the tail ends at this stream offset
        self._scanned = 0  # bytes searched or split (debug: stays linear)
        self._start = True  # no byte past a possible BOM has been seen yet
        self._skip_lf = False  # the last byte fed was a CR
        self._fast = False  # not _buf and not _skip_lf and not _start
        self._parts: list[bytes] = []  # data values of the event being built
        self._size = 0  # len of the data buffer: sum(len(part) + 1)
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    @property
    def bytes_fed(self) -> int:
        """Total bytes passed to :meth:`feed` so far."""
        return self._fed

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Add the next piece of the body.

        Args:
            data: any number of bytes, split anywhere (a bytes-like object).

        Returns:
            The events completed by this piece, in stream order (often empty).

        Raises:
            ResponseDecodeError: a line or an event exceeds ``max_event_bytes``.
        """
        if type(data) is not bytes:
            data = bytes(data)
        n = len(data)
        self._fed += n
        if self._fast and data.endswith(b"\n"):
            # Nothing pending and the chunk ends a line: it is all complete lines.
            self._scanned += n + n
            if 13 in data:  # int membership is a plain memchr, unlike b"\r"
                lines = _split_crlf(data)
            else:
                lines = data.split(b"\n")
            lines.pop()
            return self._lines(lines, data, self._fed - n)
        if not n:
            return []
        return self._feed_slow(data)

    def _feed_slow(self, data: bytes) -> list[SSEEvent]:
        buf = self._buf
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == 10:  # the LF of a CRLF whose CR ended the last feed
                data = data[1:]
                if not data:
                    self._fast = not buf
                    return []
        if self._start:
            head = bytes(buf) + data  # buf holds at most two bytes here
            if len(head) < 3 and _BOM.startswith(head):
                buf[:] = head
                return []
            buf.clear()
            self._start = False
            data = head[3:] if head.startswith(_BOM) else head
            if not data:
                self._fast = True
                return []
        n = len(data)
        self._scanned += n
        last = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if last < 0:
            buf += data
            if len(buf) > self._max:
                self.salvaged = []
                raise self._tail_error()
            self._fast = False
            return []
        if buf:
            base = self._fed - n - len(buf)
            buf += memoryview(data)[: last + 1]
            region = bytes(buf)
            buf.clear()
        else:
            base = self._fed - n
            region = data if last + 1 == n else data[: last + 1]
        self._scanned += len(region)
        if 13 in region:
            self._skip_lf = last + 1 == n and data[last] == 13
            lines = _split_crlf(region)
        else:
            lines = region.split(b"\n")
        lines.pop()
        events = self._lines(lines, region, base)
        if last + 1 < n:
            buf += memoryview(data)[last + 1 :]
            if len(buf) > self._max:
                self.salvaged = events
                raise self._tail_error()
        self._fast = not buf and not self._skip_lf
        return events

    def _tail_error(self) -> ResponseDecodeError:
        offset = self._fed - len(self._buf)
        return _line_error("SSE", offset, self._max, "max_event_bytes")

    def _lines(self, lines: list[bytes], raw: bytes, base: int) -> list[SSEEvent]:
        """Interpret complete ``lines`` (split from ``raw``, at stream ``base``)."""
        limit = self._max
        if len(raw) > limit:
            self._check_lengths(lines, raw, base)
        events: list[SSEEvent] = []
        parts = self._parts
        size = self._size
        for line in lines:
            if not line:
                if parts:
                    events.append(
                        SSEEvent(
                            event=self._event or "message",
                            data=b"\n".join(parts),
                            id=self._id,
                            retry=self._retry,
                        )
                    )
                    parts.clear()
                    size = 0
                self._event = ""
                self._retry = None
                continue
            if line.startswith(b"data: "):
                value = line[6:]
            elif line.startswith(b"data:"):
                value = line[5:]
            elif line[0] == 58:  # b":": a comment
                continue
            elif line.startswith(b"event: "):  # named events (Anthropic, Cohere)
                self._event = line[7:].decode("utf-8", "replace")
                continue
            else:
                found = self._field(line)
                if found is None:
                    continue
                value = found
            parts.append(value)
            size += len(value) + 1
            if size > limit:
                self.salvaged = events
                raise self._data_error(lines, line, raw, base)
        self._size = size
        return events

    def _field(self, line: bytes) -> bytes | None:
        """Apply a non-``data:`` field line; return the value if it is ``data``."""
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"data":  # b"data" with no colon: an empty data line
            return value
        elif name == b"id":
            if 0 not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry":
            # ASCII digits only, and not empty. More than 18 digits (over 31
            # million years) is ignored too: int() refuses 4,300+ digits.
            if value.isdigit() and len(value) <= 18:
                self._retry = int(value)
        return None

    def _check_lengths(self, lines: list[bytes], raw: bytes, base: int) -> None:
        # Error at the first over-long line, after the lines before it (whose
        # own errors come first, as they would if the stream came in pieces).
        limit = self._max
        for index, line in enumerate(lines):
            if len(line) > limit:
                self.salvaged = self._lines(lines[:index], raw, base)
                offset = base + _nth_line_start(raw, index)
                raise _line_error("SSE", offset, limit, "max_event_bytes")

    def _data_error(
        self, lines: list[bytes], line: bytes, raw: bytes, base: int
    ) -> ResponseDecodeError:
        index = next(i for i, item in enumerate(lines) if item is line)
        offset = base + _nth_line_start(raw, index)
        return ResponseDecodeError(
            f"SSE event data grew past max_event_bytes={self._max} bytes with the "
            f"data line starting at byte offset {offset} of the stream; raise "
            "ConnectionOptions(max_event_bytes=...) if the provider really sends "
            "events this large"
        )

    def end(self) -> list[SSEEvent]:
        """Declare the body finished.

        A block without its terminating blank line is never dispatched (per the
        spec), so a body cut inside an event is an error rather than a silent loss:
        the stream was cut short, whatever the provider's terminal signal.

        Returns:
            ``[]`` (there is nothing left to dispatch after a clean end).

        Raises:
            IncompleteStreamError: the body ended inside an event: data lines
                without the blank line that dispatches them, or an unterminated
                line.
        """
        pending = (self._size if self._parts else 0) + len(self._buf)
        if pending:
            self.salvaged = []
            raise IncompleteStreamError(
                f"stream ended inside an event ({pending} bytes pending) at byte "
                f"offset {self._fed}: the server closed the body before the blank "
                "line that ends an SSE event"
            )
        self._event = ""
        self._retry = None
        return []


class JSONBlockSSEDecoder(SSEDecoder):
    """Server-Sent Events as Gemini sends them (framing ``"sse+json"``).

    Two departures from :class:`SSEDecoder`, both what Google's own client
    (python-genai's brace-balancing stream reader) accepts:

    * A bare JSON document between events, its lines starting with ``{`` or
      ``[`` where a field would be (Gemini's error after a 200: the body goes
      on with a pretty-printed ``{"error": {...}}`` that is not on a ``data:``
      line), is dispatched as one event whose ``data`` is the document, as
      soon as a line starting with ``}`` or ``]`` completes valid JSON.
    * At the end of the body, an event whose data lines all ended but whose
      blank line never came is dispatched rather than refused (captured
      Gemini streams end so). An unterminated line is still a cut: the codec's
      ``end()`` checks the family's own terminal signal either way.
    """

    __slots__ = ("_block",)

    def __init__(self, *, max_event_bytes: int = _DEFAULT_MAX) -> None:
        super().__init__(max_event_bytes=max_event_bytes)
        self._block: list[bytes] | None = None  # lines of a bare JSON document

    def _lines(self, lines: list[bytes], raw: bytes, base: int) -> list[SSEEvent]:
        if self._block is None and not any(line[:1] in (b"{", b"[") for line in lines):
            return super()._lines(lines, raw, base)
        events: list[SSEEvent] = []
        plain: list[bytes] = []
        for line in lines:
            block = self._block
            if block is None:
                if line[:1] in (b"{", b"["):
                    if plain:  # first the lines before it: is an event open?
                        events += super()._lines(plain, raw, base)
                        plain = []
                    if self._parts:  # inside an event: a field, as SSE says
                        plain.append(line)
                        continue
                    self._block = block = []
                else:
                    plain.append(line)
                    continue
            block.append(line)
            if sum(map(len, block)) > self._max:
                self.salvaged = events
                raise ResponseDecodeError(
                    f"a bare JSON document in the SSE stream grew past "
                    f"max_event_bytes={self._max} bytes"
                )
            if line[:1] in (b"}", b"]"):
                document = b"\n".join(block)
                try:
                    _json_check.decode(document)
                except msgspec.DecodeError:
                    continue  # not closed yet: a nested closing line
                events.append(SSEEvent(data=document))
                self._block = None
        if plain:
            events += super()._lines(plain, raw, base)
        return events

    def end(self) -> list[SSEEvent]:
        """Declare the body finished: dispatch what Gemini leaves pending.

        Returns:
            The event whose blank line never came, if its lines all ended.

        Raises:
            IncompleteStreamError: the body ended inside a line, or inside a
                bare JSON document.
        """
        if self._block is not None:
            self.salvaged = []
            raise IncompleteStreamError(
                f"stream ended inside a JSON document at byte offset {self._fed}"
            )
        if self._parts and not self._buf:
            event = SSEEvent(
                event=self._event or "message",
                data=b"\n".join(self._parts),
                id=self._id,
                retry=self._retry,
            )
            self._parts.clear()
            self._size = 0
            super().end()
            return [event]
        return super().end()


_json_check = msgspec.json.Decoder()


class NDJSONSplitter:
    """Incremental newline-delimited JSON splitter (sans-I/O).

    Returns each complete, non-blank line without its ``\\n`` or ``\\r\\n``.
    Lines are not parsed: that is the provider codec's business.

    Args:
        max_line_bytes: the longest line accepted, in bytes. Default 8 MiB.
            Exceeding it raises :class:`~ailib_sc.ResponseDecodeError`.
    """

    __slots__ = ("_buf", "_fed", "_max", "_scanned", "salvaged")

    def __init__(self, *, max_line_bytes: int = _DEFAULT_MAX) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be >= 1, got {max_line_bytes}")
        self._max = max_line_bytes
        # After feed() raised: the lines that piece completed before the fault.
        self.salvaged: list[bytes] = []
        self._buf = bytearray()  # the unterminated tail; holds no LF
        self._fed = 0
        self._scanned = 0

    @property
    def bytes_fed(self) -> int:
        """Total bytes passed to :meth:`feed` so far."""
        return self._fed

    def feed(self, data: bytes) -> list[bytes]:
        """Add the next piece of the body.

        Args:
            data: any number of bytes, split anywhere (a bytes-like object).

        Returns:
            The complete non-blank lines, without line endings, in order.

        Raises:
            ResponseDecodeError: a line exceeds ``max_line_bytes``.
        """
        if type(data) is not bytes:
            data = bytes(data)
        n = len(data)
        self._fed += n
        self._scanned += n
        last = data.rfind(b"\n")
        buf = self._buf
        if last < 0:
            buf += data
            self.salvaged = []
            self._check_tail()
            return []
        if buf:
            base = self._fed - n - len(buf)
            buf += memoryview(data)[: last + 1]
            region = bytes(buf)
            buf.clear()
        else:
            base = self._fed - n
            region = data if last + 1 == n else data[: last + 1]
        self._scanned += len(region)
        lines = region.split(b"\n")
        lines.pop()
        if len(region) > self._max:
            self._check_lengths(lines, base)
        out = _kept(lines)
        if last + 1 < n:
            buf += memoryview(data)[last + 1 :]
            self.salvaged = out
            self._check_tail()
        return out

    def _check_tail(self) -> None:
        size = len(self._buf)
        # A CR at the end of the tail may be the first half of the line's CRLF.
        if size > self._max and (size > self._max + 1 or self._buf[-1] != 13):
            offset = self._fed - len(self._buf)
            raise _line_error("NDJSON", offset, self._max, "max_line_bytes")

    def _check_lengths(self, lines: list[bytes], base: int) -> None:
        offset = base
        for index, line in enumerate(lines):
            if len(line.removesuffix(b"\r")) > self._max:
                self.salvaged = _kept(lines[:index])
                raise _line_error("NDJSON", offset, self._max, "max_line_bytes")
            offset += len(line) + 1

    def end(self) -> list[bytes]:
        """Declare the body finished.

        Returns:
            The final line if the body did not end with a newline (NDJSON allows
            that) and it is not blank, else ``[]``.
        """
        line = bytes(self._buf).removesuffix(b"\r")
        self._buf.clear()
        return [line] if line and not line.isspace() else []


def _kept(lines: list[bytes]) -> list[bytes]:
    """``lines`` without their CRs, blank ones dropped."""
    out = []
    for line in lines:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line and not line.isspace():
            out.append(line)
    return out


class NDJSONEvents:
    """NDJSON lines as events: each line becomes ``SSEEvent(data=line)``, so every
    family's stream decoder takes the same event type whatever the framing.

    Args:
        max_line_bytes: the longest line accepted, in bytes (default 8 MiB).
    """

    __slots__ = ("_split",)

    def __init__(self, *, max_line_bytes: int = _DEFAULT_MAX) -> None:
        self._split = NDJSONSplitter(max_line_bytes=max_line_bytes)

    def feed(self, data: bytes) -> list[SSEEvent]:
        """The complete lines in ``data`` (and what was buffered), as events.

        Raises:
            ResponseDecodeError: a line exceeds ``max_line_bytes``.
        """
        return [SSEEvent(data=line) for line in self._split.feed(data)]

    @property
    def salvaged(self) -> list[SSEEvent]:
        """After :meth:`feed` raised: the lines completed before the fault."""
        return [SSEEvent(data=line) for line in self._split.salvaged]

    def end(self) -> list[SSEEvent]:
        """The final unterminated line, if any, as an event."""
        return [SSEEvent(data=line) for line in self._split.end()]
