"""Our HTTP/1.1 client connection, on ``h11`` and an httpcore network stream.

Why not httpcore's ``AsyncHTTP11Connection``: its body iterator is a pair of
nested async generators. A stream left early (``break``, ``cancel()``) can close
the outer one but never the inner, which trio then reports as a ResourceWarning
when it is garbage collected; and the two generator layers plus tracing cost a
third of the client's CPU per request. This class is a plain state holder with
``receive_data()`` as an ordinary coroutine.

Theory of operation: one request at a time. ``send_request`` writes the whole
request in one write and reads until the response head; ``receive_data`` yields
body chunks until ``EndOfMessage``. The connection is reusable only when both
sides of h11 reached DONE (the body was read to the end and neither side asked to
close); anything else, including any exception or cancellation mid-exchange,
marks it broken and the pool closes it.
"""

from __future__ import annotations

import anyio
import h11
import httpcore

from .._errors import InvalidRequestError, RemoteProtocolError
from ._errors import NotProcessed, mapped

__all__ = ["H1Connection"]

_READ_SIZE = 1 << 16


class H1Connection:
    """One HTTP/1.1 connection; the pool lends it to one request at a time."""

    __slots__ = ("_h11", "_held", "_net", "broken", "closed", "idle_since", "requests")

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._net = stream
        self._h11 = h11.Connection(h11.CLIENT)
        self._held: object = None  # an event read ahead while joining body data
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
            TransportError subclasses (mapped); the connection is then broken.
        """
        self.requests += 1
        self.broken = True  # until the exchange completes cleanly
        conn = self._h11
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
            event = await self._next_event(read_timeout)
            if isinstance(event, h11.Response):
                return event.status_code, list(event.headers)
            if isinstance(event, h11.InformationalResponse):
                continue
            raise RemoteProtocolError(f"expected a response head, got {event!r}")

    async def _next_event(self, read_timeout: float | None) -> object:
        conn = self._h11
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
        """The next body chunk, or None at the end of the body.

        Raises:
            ReadTimeoutError: nothing arrived for ``read_timeout`` seconds.
            RemoteProtocolError: the server closed or broke the response.
        """
        event = self._held
        if event is None:
            event = await self._next_event(read_timeout)
        else:
            self._held = None
        if isinstance(event, h11.Data):
            # Hand over every body chunk already buffered in one piece: a stream
            # sends one chunk per SSE event, and the caller's per-call overhead
            # (SSE split, clock, checkpoint) is then paid per read, not per event.
            first = event.data
            conn = self._h11
            more = None
            while True:
                try:
                    nxt = conn.next_event()
                except h11.RemoteProtocolError:
                    break  # surfaces on the next call, after this data
                if isinstance(nxt, h11.Data):
                    if more is None:
                        more = [bytes(first)]
                    more.append(bytes(nxt.data))
                    continue
                if nxt is not h11.NEED_DATA:
                    self._held = nxt
                break
            return bytes(first) if more is None else b"".join(more)
        if isinstance(event, h11.EndOfMessage):
            conn = self._h11
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
                self.broken = False
            return None
        if isinstance(event, h11.ConnectionClosed):
            raise RemoteProtocolError("the server closed the connection mid-response")
        raise RemoteProtocolError(f"unexpected HTTP/1.1 event {event!r}")

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
