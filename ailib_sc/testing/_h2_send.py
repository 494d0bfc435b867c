"""The sending half of `FakeProviderServer`'s HTTP/2 connections.

Theory of operation: `H2Sender` is the base of `_h2._H2Server` and owns
everything that leaves the server: the h2 state's outbound side, the single
writer task and the reply senders.  Answering tasks only change h2's state and
call `_wake_writer`; the writer (`_write_loop`) is the only task that writes to
the socket, under `_write_lock`, so cancelling an answering task can never cut
a frame in half.  Bodies go out as DATA frames no larger than the peer's frame
size and flow-control window; when the window is exhausted a task waits for
`_window_changed`, which the reader replaces (and sets) on every WINDOW_UPDATE,
SETTINGS or reset.

A streamed reply (`EventStream`) goes out one event per DATA frame, each handed
to the writer as soon as it is made, under the same per-stream flow control; an
event waits until the window fits it whole rather than being split (unless it
is larger than the peer's largest frame or initial window).  It records a
`StreamOutcome` however it ends: the reader notes which streams the client
reset and whether the client hung up (`_client_gone`) before cancelling them,
so the stream task's ``finally`` can tell.  ``disconnect_after`` flushes what
was queued and then cancels the whole connection (and marks it `_aborted`).

A graceful GOAWAY is written by hand (`_queue_goaway`) rather than through
``H2Connection.close_connection()``: h2 treats any GOAWAY it sends as the end
of the connection and would refuse to send the replies to the streams the
GOAWAY promises to finish.  The frame is queued behind whatever h2 had queued.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel
import h2.connection
import h2.errors

from ailib_sc.testing._recording import StreamOutcome
from ailib_sc.testing._stream import EventStream, Stop

if TYPE_CHECKING:
    from anyio.abc import ByteStream, TaskGroup

    from ailib_sc.testing._recording import Recorder
    from ailib_sc.testing._replies import Reply

__all__ = ["H2Sender"]

# A stream sent without delay lets the writer flush each time it has queued this
# much (still one DATA frame per event).  Yielding after every event instead
# costs 2.5x: each yield becomes a write of one small frame.
_STREAM_BATCH_BYTES: Final = 16384
_STATUS_BYTES: Final = {status: str(status).encode() for status in range(100, 600)}
# GOAWAY frame header: payload length 8, type 0x7, no flags, stream 0.
_GOAWAY_HEADER: Final = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"


class H2Sender:
    """Writer task, reply senders and outbound state of one HTTP/2 connection."""

    __slots__ = (
        "_aborted",
        "_client_gone",
        "_client_resets",
        "_connection_id",
        "_h2",
        "_raw_out",
        "_recorder",
        "_send_wanted",
        "_stream",
        "_task_group",
        "_window_changed",
        "_write_lock",
    )

    def __init__(
        self,
        stream: ByteStream,
        connection: h2.connection.H2Connection,
        connection_id: int,
        recorder: Recorder,
    ) -> None:
        self._stream = stream
        self._h2 = connection
        self._connection_id = connection_id
        self._recorder = recorder
        self._client_resets: set[int] = set()  # reset by the client while answered
        self._client_gone = False  # the client hung up or sent GOAWAY
        self._aborted = False  # disconnect_after cut the connection
        self._raw_out = b""  # frames written by hand, to go before h2's next bytes
        self._send_wanted = anyio.Event()
        self._window_changed = anyio.Event()
        self._write_lock = anyio.Lock()
        self._task_group: TaskGroup | None = None

    def _queue_goaway(self, last_stream_id: int) -> None:
        """Queue GOAWAY(NO_ERROR, `last_stream_id`) without ending h2's state."""
        frame = _GOAWAY_HEADER + last_stream_id.to_bytes(4, "big") + bytes(4)
        self._raw_out += self._h2.data_to_send() + frame
        self._wake_writer()

    async def _send_reply(
        self, stream_id: int, reply: Reply, *, head: bool = False
    ) -> None:
        h2_conn = self._h2
        headers = [(b":status", _STATUS_BYTES[reply.status]), *reply.headers]
        body = reply.body
        if isinstance(body, EventStream):
            raise TypeError("send an EventStream with _send_event_stream()")
        if isinstance(body, bytes):
            headers.append((b"content-length", str(len(body)).encode()))
            h2_conn.send_headers(stream_id, headers, end_stream=head or not body)
            if body and not head:
                await self._send_data(stream_id, body, end_stream=True)
            else:
                self._wake_writer()
            return
        h2_conn.send_headers(stream_id, headers, end_stream=head)
        self._wake_writer()
        if head:
            return
        for chunk in body:  # each chunk leaves as DATA frame(s) of its own
            await self._send_data(stream_id, chunk, end_stream=False)
        h2_conn.end_stream(stream_id)
        self._wake_writer()

    async def _send_event_stream(
        self, stream_id: int, reply: Reply, body: EventStream
    ) -> None:
        sent = queued = 0
        ended = False
        try:
            if body.first_delay:
                await anyio.sleep(body.first_delay)
            if body.hold_until is not None:
                await body.hold_until.wait()
            headers = [(b":status", _STATUS_BYTES[reply.status]), *reply.headers]
            self._h2.send_headers(stream_id, headers)
            self._wake_writer()
            events, delay, send_event = body.events, body.delay, self._send_event
            for index in range(body.limit):
                if delay and index:
                    await anyio.sleep(delay)
                await send_event(stream_id, events[index])
                sent += 1
                queued += len(events[index])
                if queued >= _STREAM_BATCH_BYTES:
                    queued = 0
                    await anyio.lowlevel.checkpoint()  # the writer flushes
            if body.ends_cleanly:  # END_STREAM
                self._h2.end_stream(stream_id)
                self._wake_writer()
                ended = True
            elif body.stop is Stop.STALL:
                await anyio.sleep_forever()
            elif body.stop is Stop.RESET:
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                self._wake_writer()
            else:  # Stop.DISCONNECT: what was sent reaches the client, then EOF
                self._aborted = True
                await self._flush()
                assert self._task_group is not None
                self._task_group.cancel_scope.cancel()
        finally:
            self._recorder.record_stream_outcome(
                StreamOutcome(
                    request_index=body.request_index,
                    http_version="HTTP/2",
                    events_sent=sent,
                    completed=ended and sent == len(body.events),
                    ended_cleanly=ended,
                    done_sent=body.done_sent(sent),
                    client_reset=stream_id in self._client_resets,
                    client_closed=self._client_gone and not ended,
                    ended_at=time.monotonic(),
                )
            )

    async def _send_event(self, stream_id: int, event: bytes) -> None:
        """Queue one event as one DATA frame, waiting until the window fits it."""
        h2_conn = self._h2
        size = len(event)
        if (
            size > h2_conn.max_outbound_frame_size
            or size > h2_conn.remote_settings.initial_window_size
        ):  # it cannot, or might never, leave in one frame
            await self._send_data(stream_id, event, end_stream=False)
            return
        while h2_conn.local_flow_control_window(stream_id) < size:
            changed = self._window_changed  # taken before yielding, as below
            self._wake_writer()
            await changed.wait()
        h2_conn.send_data(stream_id, event)
        self._wake_writer()

    async def _send_data(
        self, stream_id: int, data: bytes, *, end_stream: bool
    ) -> None:
        h2_conn = self._h2
        view = memoryview(data)
        while True:
            window = h2_conn.local_flow_control_window(stream_id)
            if window <= 0 and view:
                # Take the event before yielding so an update that arrives while
                # the writer flushes is not missed.
                changed = self._window_changed
                self._wake_writer()
                await changed.wait()
                continue
            size = min(window, h2_conn.max_outbound_frame_size, len(view))
            last = size == len(view)
            h2_conn.send_data(stream_id, view[:size], end_stream=end_stream and last)
            view = view[size:]
            if last:
                break
        self._wake_writer()

    # -- writing -------------------------------------------------------------------

    def _wake_writer(self) -> None:
        self._send_wanted.set()

    async def _write_loop(self) -> None:
        while True:
            await self._send_wanted.wait()
            self._send_wanted = anyio.Event()
            await self._flush()

    async def _flush(self) -> None:
        async with self._write_lock:
            data = self._h2.data_to_send()
            if self._raw_out:
                data, self._raw_out = self._raw_out + data, b""
            if data:
                try:
                    await self._stream.send(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._client_gone = True
                    raise
