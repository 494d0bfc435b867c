"""Our HTTP/1.1 client connection: h11 for the request and the response head,
:mod:`._h1_body` for the body, on an httpcore network stream.

Why not httpcore's ``AsyncHTTP11Connection``: its body iterator is a pair of
nested async generators. A stream left early (``break``, ``cancel()``) can close
the outer one but never the inner, which trio then reports as a ResourceWarning
when it is garbage collected; and the two generator layers plus tracing cost a
third of the client's CPU per request. This class is a plain state holder with
``receive_data()`` as an ordinary coroutine. Why not h11 for the body: one h11
event per chunk costs about 4 µs, paid per token on a stream (see ``_h1_body``).

Theory of operation: one request at a time. ``send_request`` starts a fresh
``h11.Connection`` (under a microsecond; h11's state machine never sees the body,
so the old one cannot start a next cycle), writes the whole request in one write
and reads until the response head. h11 then decides keep-alive (its ``our_state``
is ``MUST_CLOSE`` if either side said ``Connection: close`` or the server speaks
HTTP/1.0), and the bytes it read past the head go to a body reader chosen as h11
would. ``receive_data`` feeds that reader until the body ends. The connection is
reusable only when the body ended cleanly, keep-alive holds, the body had a length
or chunking (not "until EOF") and the server sent nothing past it; anything else,
including any exception or cancellation mid-exchange, leaves it ``broken`` and the
pool closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import h11
import httpcore

from .._errors import InvalidRequestError, RemoteProtocolError
from ._errors import NotProcessed, mapped
from ._h1_body import body_reader

if TYPE_CHECKING:
    from ._h1_body import BodyReader

__all__ = ["H1Connection"]

_READ_SIZE = 1 << 16


class H1Connection:
    """One HTTP/1.1 connection; the pool lends it to one request at a time."""

    __slots__ = (
        "_body",
        "_keep_alive",
        "_net",
        "broken",
        "closed",
        "idle_since",
        "requests",
    )

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._net = stream
        self._body: BodyReader | None = None  # the current response's body
        self._keep_alive = False
        self.broken = False
        self.closed = False
        self.idle_since = anyio.current_time()
        self.requests = 0

    async def send_request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        write_timeout: float | None,
        read_timeout: float | None,
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Send one request and return the status and headers of its response.

        Raises:
            NotProcessed: the write failed, so the server cannot have processed
                the request (the pool sends it elsewhere).
            InvalidRequestError: h11 refuses to send the request.
            TransportError subclasses (mapped); the connection is then broken.
        """
        self.requests += 1
        self.broken = True  # until the exchange completes cleanly
        self._body = None
        conn = h11.Connection(h11.CLIENT)
        with mapped("send"):
            try:
                data = conn.send(
                    h11.Request(method=method, target=target, headers=headers)
                )
                if body:
                    data += conn.send(h11.Data(data=body))
                data += conn.send(h11.EndOfMessage())
            except h11.LocalProtocolError as exc:
                # Our side would break HTTP/1.1 (a header h11 refuses): nothing
                # was sent, and sending it again can't help.
                raise InvalidRequestError(
                    f"cannot send this request over HTTP/1.1: {exc}"
                ) from exc
            try:
                await self._net.write(data, write_timeout)
            except httpcore.WriteError:
                # The server hung up before it could have read the whole request
                # (typically a keep-alive connection it had just closed): it
                # cannot have processed it. The pool re-sends it elsewhere.
                raise NotProcessed from None
        while True:
            event = await self._next_event(conn, read_timeout)
            if isinstance(event, h11.Response):
                break
            if not isinstance(event, h11.InformationalResponse):
                raise RemoteProtocolError(f"expected a response head, got {event!r}")
        headers_in = list(event.headers)
        reader = body_reader(method, event.status_code, headers_in)
        rest, eof = conn.trailing_data
        if rest:
            reader.feed(rest)
        if eof:
            reader.feed(b"")
        self._keep_alive = conn.our_state is h11.DONE  # not MUST_CLOSE
        self._body = reader
        return event.status_code, headers_in

    async def _next_event(
        self, conn: h11.Connection, read_timeout: float | None
    ) -> object:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise RemoteProtocolError(f"the server broke HTTP/1.1: {exc}") from exc
            if event is not h11.NEED_DATA:
                if event is h11.PAUSED:
                    raise RemoteProtocolError("the server sent data past the response")
                return event
            with mapped("receive"):
                data = await self._net.read(_READ_SIZE, read_timeout)
            conn.receive_data(data)  # b"" marks EOF; h11 then decides

    async def receive_data(self, read_timeout: float | None) -> bytes | None:
        """Every body byte already received, in one piece; None at the end of
        the body (and on every call after it).

        Waits for the socket only when nothing is buffered. Cancellation leaves
        the connection broken (the pool closes it).

        Raises:
            ReadTimeoutError: nothing arrived for ``read_timeout`` seconds.
            RemoteProtocolError: the server closed or broke the response.
        """
        body = self._body
        if body is None:
            raise RuntimeError("receive_data() before a response head arrived")
        while True:
            data = body.read()
            if body.done:
                # Reusable as soon as the body is complete, even if the caller
                # stops reading before it sees the None; decided once.
                if self._keep_alive and body.reusable and not body.excess:
                    self.broken = False
                self._keep_alive = False
                return data or None
            if data:
                return data
            with mapped("receive"):
                data = await self._net.read(_READ_SIZE, read_timeout)
            body.feed(data)  # b"" marks EOF; the reader then decides

    def server_hung_up(self) -> bool:
        """True if the idle socket is readable: the server closed it (or sent junk)."""
        return bool(self._net.get_extra_info("is_readable"))

    async def aclose(self) -> None:
        """Close the socket (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.broken = True
        try:
            await self._net.aclose()
        except Exception:
            pass
