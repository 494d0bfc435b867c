"""HTTP/2 connection handler of `FakeProviderServer`, on h2.

Theory of operation: three kinds of task share one `h2.connection.H2Connection`:

* the reader (the caller's task) feeds received bytes to h2 and reacts to its
  events through `_H2Server._events`, a table from event type to handler;
* one answering task per complete request, each inside its own cancel scope so
  that an RST_STREAM from the client cancels exactly that reply;
* the writer, the only task that writes to the socket: others change h2's state
  and call `_wake_writer`; it sends whatever h2 has queued, under the write lock.

Because answering tasks never write, cancelling one can never cut a frame in
half.  h2 itself is only touched between ``await``s, so it needs no lock.  Bodies
go out as DATA frames no larger than the peer's frame size and flow-control
window; when the window is exhausted the task waits for `_window_changed`, which
the reader replaces (and sets) on every WINDOW_UPDATE, SETTINGS or reset.  A
client GOAWAY, end of file, or protocol error ends the connection; a protocol
error first flushes the GOAWAY h2 queued for it.

A streamed reply (`EventStream`) goes out one event per DATA frame, each handed
to the writer as soon as it is made, under the same per-stream flow control; an
event waits until the window fits it whole rather than being split (unless it
is larger than the peer's largest frame or initial window).  It
records a `StreamOutcome` however it ends: the reader notes which streams the
client reset and whether the client hung up (`_client_gone`) before cancelling
them, so the stream task's ``finally`` can tell.  ``disconnect_after`` flushes
what was queued and then cancels the whole connection.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from ailib_sc.testing._recording import RecordedRequest, StreamOutcome
from ailib_sc.testing._replies import MAX_BODY_SIZE, Reply, too_large_reply
from ailib_sc.testing._stream import EventStream, Stop

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import ByteStream, TaskGroup

    from ailib_sc.testing._recording import Recorder, Respond

__all__ = ["serve_http2"]

_READ_SIZE: Final = 65536
# Open the connection-level receive window wide at once so large uploads on many
# streams do not wait for WINDOW_UPDATEs (streams keep the default 64 KiB each).
_CONNECTION_WINDOW_BOOST: Final = 16 * 1024 * 1024
_FLUSH_TIMEOUT: Final = 1.0
# A stream sent without delay lets the writer flush each time it has queued this
# much (still one DATA frame per event).  Yielding after every event instead
# costs 2.5x: each yield becomes a write of one small frame.
_STREAM_BATCH_BYTES: Final = 16384
_STATUS_BYTES: Final = {status: str(status).encode() for status in range(100, 600)}


async def serve_http2(
    stream: ByteStream,
    initial: bytes,
    *,
    connection_id: int,
    recorder: Recorder,
    respond: Respond,
    max_concurrent_streams: int,
) -> None:
    """Serve HTTP/2 requests on `stream` until the client closes or goes away.

    Args:
        stream: The connection (after TLS, if any).
        initial: Bytes already read from `stream`, starting with the preface.
        connection_id: Recorded with every request and reset.
        recorder: Counts and records requests and resets.
        respond: Turns a complete request into a reply.
        max_concurrent_streams: Advertised in SETTINGS and enforced by h2.

    Raises:
        anyio.BrokenResourceError: The peer went away mid-write (possibly inside
            an ExceptionGroup); the caller closes the connection.
    """
    server = _H2Server(stream, connection_id, recorder, respond, max_concurrent_streams)
    await server.run(initial)


@dataclass(slots=True)
class _Incoming:
    """A request whose headers have arrived and whose body is arriving."""

    headers: list[tuple[bytes, bytes]]
    parts: list[bytes] = field(default_factory=list)
    size: int = 0


if TYPE_CHECKING:
    from typing import TypeAlias

    _EventHandler: TypeAlias = Callable[[h2.events.Event], bool]


class _H2Server:
    __slots__ = (
        "_client_gone",
        "_client_resets",
        "_connection_id",
        "_events",
        "_h2",
        "_incoming",
        "_recorder",
        "_respond",
        "_scopes",
        "_send_wanted",
        "_stream",
        "_task_group",
        "_window_changed",
        "_write_lock",
    )

    def __init__(
        self,
        stream: ByteStream,
        connection_id: int,
        recorder: Recorder,
        respond: Respond,
        max_concurrent_streams: int,
    ) -> None:
        self._stream = stream
        self._connection_id = connection_id
        self._recorder = recorder
        self._respond = respond
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self._h2 = h2.connection.H2Connection(config=config)
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams
            },
        )
        self._incoming: dict[int, _Incoming] = {}
        self._scopes: dict[int, anyio.CancelScope] = {}
        self._client_resets: set[int] = set()  # reset by the client while answered
        self._client_gone = False  # the client hung up or sent GOAWAY
        self._send_wanted = anyio.Event()
        self._window_changed = anyio.Event()
        self._write_lock = anyio.Lock()
        self._task_group: TaskGroup | None = None
        # Event type -> handler; a handler returning True ends the connection.
        self._events: dict[type[h2.events.Event], _EventHandler] = {
            h2.events.RequestReceived: self._on_request,
            h2.events.DataReceived: self._on_data,
            h2.events.StreamEnded: self._on_stream_ended,
            h2.events.StreamReset: self._on_reset,
            h2.events.WindowUpdated: self._on_window_changed,
            h2.events.RemoteSettingsChanged: self._on_window_changed,
            h2.events.ConnectionTerminated: self._on_goaway,
        }

    async def run(self, initial: bytes) -> None:
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(_CONNECTION_WINDOW_BOOST)
        self._wake_writer()
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            task_group.start_soon(self._write_loop)
            try:
                await self._read_loop(initial)
            finally:
                task_group.cancel_scope.cancel()

    # -- reading -----------------------------------------------------------------

    async def _read_loop(self, data: bytes) -> None:
        events_table = self._events
        while True:
            if data:
                try:
                    events = self._h2.receive_data(data)
                except h2.exceptions.ProtocolError:
                    # The client broke HTTP/2; tell it why (GOAWAY) and hang up.
                    with anyio.move_on_after(_FLUSH_TIMEOUT):
                        await self._flush()
                    return
                for event in events:
                    handler = events_table.get(type(event))
                    if handler is not None and handler(event):
                        return
                self._wake_writer()
            try:
                data = await self._stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                self._client_gone = True
                return

    def _on_request(self, event: h2.events.Event) -> bool:
        assert isinstance(event, h2.events.RequestReceived)
        self._incoming[event.stream_id] = _Incoming(list(event.headers))
        return False

    def _on_data(self, event: h2.events.Event) -> bool:
        assert isinstance(event, h2.events.DataReceived)
        stream_id = event.stream_id
        self._h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
        incoming = self._incoming.get(stream_id)
        if incoming is not None:
            incoming.size += len(event.data)
            incoming.parts.append(event.data)
            if incoming.size > MAX_BODY_SIZE:
                del self._incoming[stream_id]
                self._start(
                    stream_id, functools.partial(self._refuse_too_large, stream_id)
                )
        return False

    def _on_stream_ended(self, event: h2.events.Event) -> bool:
        assert isinstance(event, h2.events.StreamEnded)
        incoming = self._incoming.pop(event.stream_id, None)
        if incoming is not None:
            work = functools.partial(self._answer, event.stream_id, incoming)
            self._start(event.stream_id, work)
        return False

    def _on_reset(self, event: h2.events.Event) -> bool:
        assert isinstance(event, h2.events.StreamReset)
        stream_id = event.stream_id
        if event.remote_reset:
            self._recorder.record_reset(self._connection_id, stream_id)
        self._incoming.pop(stream_id, None)
        scope = self._scopes.pop(stream_id, None)
        if scope is not None:
            if event.remote_reset:
                self._client_resets.add(stream_id)
            scope.cancel()
        return self._on_window_changed(event)

    def _on_window_changed(self, event: h2.events.Event) -> bool:
        self._window_changed.set()
        self._window_changed = anyio.Event()
        return False

    def _on_goaway(self, event: h2.events.Event) -> bool:
        # h2 allows no more frames after a GOAWAY from the client: hang up.
        self._client_gone = True
        return True

    # -- answering -----------------------------------------------------------------

    def _start(self, stream_id: int, work: Callable[[], Awaitable[None]]) -> None:
        # The scope exists before the task runs, so a reset that arrives before
        # the task starts still cancels it.
        scope = anyio.CancelScope()
        self._scopes[stream_id] = scope
        assert self._task_group is not None
        self._task_group.start_soon(self._run_stream, stream_id, scope, work)

    async def _run_stream(
        self,
        stream_id: int,
        scope: anyio.CancelScope,
        work: Callable[[], Awaitable[None]],
    ) -> None:
        with scope:
            try:
                await work()
            except h2.exceptions.ProtocolError:
                pass  # the stream was reset, or the connection is going away
            finally:
                self._scopes.pop(stream_id, None)
                self._client_resets.discard(stream_id)

    async def _answer(self, stream_id: int, incoming: _Incoming) -> None:
        method = path = ""
        headers: list[tuple[str, str]] = []
        for name, value in incoming.headers:
            if name[:1] != b":":
                headers.append((name.decode("latin-1"), value.decode("latin-1")))
            elif name == b":method":
                method = value.decode("latin-1")
            elif name == b":path":
                path = value.decode("latin-1")
        request = RecordedRequest(
            method=method,
            path=path,
            headers=tuple(headers),
            body=b"".join(incoming.parts),
            http_version="HTTP/2",
            connection_id=self._connection_id,
            stream_id=stream_id,
        )
        with self._recorder.handling(request):
            reply = await self._respond(request)
            if isinstance(reply.body, EventStream):
                await self._send_event_stream(stream_id, reply, reply.body)
            else:
                await self._send_reply(stream_id, reply, head=method == "HEAD")

    async def _refuse_too_large(self, stream_id: int) -> None:
        await self._send_reply(stream_id, too_large_reply())
        # RFC 9113 section 8.1: a complete early response, then NO_ERROR reset.
        self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
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
        completed = False
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
            if body.stop is None:
                self._h2.end_stream(stream_id)
                self._wake_writer()
                completed = True
            elif body.stop is Stop.STALL:
                await anyio.sleep_forever()
            elif body.stop is Stop.RESET:
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                self._wake_writer()
            else:  # Stop.DISCONNECT: what was sent reaches the client, then EOF
                await self._flush()
                assert self._task_group is not None
                self._task_group.cancel_scope.cancel()
        finally:
            self._recorder.record_stream_outcome(
                StreamOutcome(
                    request_index=body.request_index,
                    http_version="HTTP/2",
                    events_sent=sent,
                    completed=completed,
                    client_reset=stream_id in self._client_resets,
                    client_closed=self._client_gone and not completed,
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
            if data:
                try:
                    await self._stream.send(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._client_gone = True
                    raise
