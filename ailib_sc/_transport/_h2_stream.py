"""One HTTP/2 request/response exchange: the queue its connection's reader task
fills, and the waits (each bounded by ``read_timeout``) that drain it.

Events are the response head (a list: ``[status, headers]``),
``(data, flow_controlled_length)``
tuples and :data:`END`. An error set by the reader is raised only after the
events that arrived before it were consumed.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import anyio

from .._errors import ReadTimeoutError, RemoteProtocolError

if TYPE_CHECKING:
    from ._h2 import H2Connection

__all__ = ["END", "H2Stream"]

END = object()
"""Marks the end of a response body (END_STREAM received)."""


class H2Stream:
    """One request/response exchange on an :class:`H2Connection`."""

    __slots__ = (
        "conn",
        "error",
        "events",
        "fast",
        "id",
        "local_ended",
        "remote_ended",
        "sent_from",
        "unacked",
        "waiter",
    )

    def __init__(self, conn: H2Connection, stream_id: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.events: deque[object] = deque()
        self.waiter: anyio.Event | None = None
        self.error: BaseException | None = None
        self.local_ended = False
        self.remote_ended = False
        self.sent_from = 0  # the connection's byte offset where our HEADERS start
        self.unacked = 0  # body bytes consumed and not yet credited back
        self.fast = False  # DATA frames may bypass h2 (see _frames.py)

    def push(self, item: object) -> None:
        self.events.append(item)
        w = self.waiter
        if w is not None:
            self.waiter = None
            w.set()

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        w = self.waiter
        if w is not None:
            self.waiter = None
            w.set()

    async def next_event(self, timeout: float | None) -> object:
        """The next event (``[status, headers]``, ``(data, flow_len)``, or ``END``).

        Raises:
            ReadTimeoutError: nothing arrived for ``timeout`` seconds.
            NotProcessed / TransportError: the stream or connection failed.
        """
        events = self.events
        while not events:
            if self.error is not None:
                raise self.error
            w = self.waiter = anyio.Event()
            if timeout is None:
                await w.wait()
            else:
                with anyio.move_on_after(timeout) as scope:
                    await w.wait()
                if scope.cancelled_caught and not events and self.error is None:
                    raise ReadTimeoutError(
                        f"no data from the server for {timeout:g} s (read_timeout)"
                    )
        return events.popleft()

    async def receive_data(self, timeout: float | None) -> bytes | None:
        """The next body chunk, or None at the end of the body."""
        ev = await self.next_event(timeout)
        if ev is END:
            return None
        if isinstance(ev, tuple):
            data, flow = ev
            events = self.events
            if events and isinstance(events[0], tuple):
                # Join every DATA frame already queued and account their credit
                # in one acknowledgement.
                parts = [data]
                while events and isinstance(events[0], tuple):
                    item: tuple[bytes, int] = events.popleft()  # type: ignore[assignment]
                    parts.append(item[0])
                    flow += item[1]
                data = b"".join(parts)
            self.conn.ack(self, flow)
            return data  # type: ignore[no-any-return]
        raise RemoteProtocolError("unexpected second HEADERS block in a response body")

    async def aclose(self) -> None:
        """Release the stream; reset it if either side is unfinished. Never
        waits on the network (the connection's writer sends the reset)."""
        self.conn.release(self)
