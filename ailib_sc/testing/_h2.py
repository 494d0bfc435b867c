"""HTTP/2 connection handler of `FakeProviderServer`, on h2.

Theory of operation: three kinds of task share one `h2.connection.H2Connection`:

* the reader (the caller's task) feeds received bytes to h2 and reacts to its
  events through `_H2Server._events`, a table from event type to handler;
* one answering task per complete request, each inside its own cancel scope so
  that an RST_STREAM from the client cancels exactly that reply;
* the writer (`_h2_send.H2Sender`, with the reply senders), the only task that
  writes to the socket.

h2 itself is only touched between ``await``s, so it needs no lock.  A client
GOAWAY, end of file, or protocol error ends the connection; a protocol error
first flushes the GOAWAY h2 queued for it.

Faults on purpose.  A stream the client opens while `script_refuse` refusals
are queued is reset with REFUSED_STREAM at once and never becomes a request.
With ``goaway_after=N`` the Nth stream opened on the connection makes the
server queue GOAWAY(NO_ERROR) naming that stream as the last one it will
process; with ``idle_close`` a connection with no open stream and nothing
received for that long gets GOAWAY(NO_ERROR) naming the last stream it
accepted.  Either way the connection is then *draining*: streams above the
last id (h2 still reports them, not knowing about our GOAWAY) are ignored,
never routed, recorded or answered, though their DATA is still acknowledged
so the connection window stays open; streams up to it finish normally.  When
none is left (`_check_drained`, after every read and every finished stream),
the reader is cancelled, everything queued is flushed and the connection ends
with `linger_close`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anyio
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from ailib_sc.testing._faults import linger_close
from ailib_sc.testing._h2_send import H2Sender
from ailib_sc.testing._recording import RecordedRequest
from ailib_sc.testing._replies import MAX_BODY_SIZE, too_large_reply
from ailib_sc.testing._stream import EventStream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import ByteStream

    from ailib_sc.testing._recording import Recorder, Respond

__all__ = ["serve_http2"]

_READ_SIZE: Final = 65536
# Open the connection-level receive window wide at once so large uploads on many
# streams do not wait for WINDOW_UPDATEs (streams keep the default 64 KiB each).
_CONNECTION_WINDOW_BOOST: Final = 16 * 1024 * 1024
_FLUSH_TIMEOUT: Final = 1.0


async def serve_http2(
    stream: ByteStream,
    initial: bytes,
    *,
    connection_id: int,
    recorder: Recorder,
    respond: Respond,
    max_concurrent_streams: int,
    goaway_after: int | None = None,
    idle_close: float | None = None,
) -> None:
    """Serve HTTP/2 requests on `stream` until the client closes or goes away.

    Args:
        stream: The connection (after TLS, if any).
        initial: Bytes already read from `stream`, starting with the preface.
        connection_id: Recorded with every request and reset.
        recorder: Counts and records requests and resets.
        respond: Turns a complete request into a reply.
        max_concurrent_streams: Advertised in SETTINGS and enforced by h2.
        goaway_after: Send a graceful GOAWAY after this many streams; None: never.
        idle_close: Send a graceful GOAWAY after this many idle seconds; None:
            never.

    Raises:
        anyio.BrokenResourceError: The peer went away mid-write (possibly inside
            an ExceptionGroup); the caller closes the connection.
    """
    server = _H2Server(
        stream,
        connection_id,
        recorder,
        respond,
        max_concurrent_streams,
        goaway_after,
        idle_close,
    )
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


class _H2Server(H2Sender):
    __slots__ = (
        "_activity",
        "_closing",
        "_events",
        "_goaway_after",
        "_idle_close",
        "_incoming",
        "_last_accepted",
        "_last_stream_id",
        "_read_scope",
        "_respond",
        "_scopes",
        "_streams_opened",
    )

    def __init__(
        self,
        stream: ByteStream,
        connection_id: int,
        recorder: Recorder,
        respond: Respond,
        max_concurrent_streams: int,
        goaway_after: int | None,
        idle_close: float | None,
    ) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        connection = h2.connection.H2Connection(config=config)
        connection.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams
            },
        )
        super().__init__(stream, connection, connection_id, recorder)
        self._respond = respond
        self._goaway_after = goaway_after
        self._idle_close = idle_close
        self._incoming: dict[int, _Incoming] = {}
        self._scopes: dict[int, anyio.CancelScope] = {}
        self._streams_opened = 0
        self._last_accepted = 0  # highest stream id accepted for processing
        self._last_stream_id: int | None = None  # set once our GOAWAY is queued
        self._closing = False  # drained after our GOAWAY: end the connection
        self._read_scope = anyio.CancelScope()
        self._activity = anyio.Event()  # replaced (and set) on every change
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
        graceful = False
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            task_group.start_soon(self._write_loop)
            if self._idle_close is not None:
                task_group.start_soon(self._close_when_idle, self._idle_close)
            try:
                with self._read_scope:
                    await self._read_loop(initial)
                if self._closing:
                    with anyio.move_on_after(_FLUSH_TIMEOUT):
                        await self._flush()
                    graceful = not self._aborted
            finally:
                task_group.cancel_scope.cancel()
        if graceful:
            await linger_close(self._stream)

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
                self._note_activity()
                if self._check_drained():
                    return
            try:
                data = await self._stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                self._client_gone = True
                return

    def _on_request(self, event: h2.events.Event) -> bool:
        assert isinstance(event, h2.events.RequestReceived)
        stream_id = event.stream_id
        last = self._last_stream_id
        if last is not None and stream_id > last:
            return False  # opened after our GOAWAY: ignored, never answered
        self._streams_opened += 1
        if self._streams_opened == self._goaway_after:
            self._queue_goaway(stream_id)
            self._last_stream_id = stream_id
        if self._recorder.take_refusal():
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return False
        self._last_accepted = stream_id
        self._incoming[stream_id] = _Incoming(list(event.headers))
        return False

    def _on_data(self, event: h2.events.Event) -> bool:
        assert isinstance(event, h2.events.DataReceived)
        stream_id = event.stream_id
        # Also for refused and ignored streams: the connection window counts it.
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

    # -- closing on purpose --------------------------------------------------------

    def _note_activity(self) -> None:
        if self._idle_close is not None:  # nobody waits for it otherwise
            self._activity.set()
            self._activity = anyio.Event()

    def _check_drained(self) -> bool:
        """After our GOAWAY: True (and stop reading) once no stream is left."""
        if self._last_stream_id is None or self._incoming or self._scopes:
            return False
        self._closing = True
        self._read_scope.cancel()
        return True

    async def _close_when_idle(self, seconds: float) -> None:
        """GOAWAY once no stream was open and nothing arrived for `seconds`."""
        while True:
            activity = self._activity
            if self._incoming or self._scopes:
                await activity.wait()
                continue
            with anyio.move_on_after(seconds) as idle:
                await activity.wait()
            if idle.cancelled_caught:
                break
        if self._last_stream_id is None:
            self._queue_goaway(self._last_accepted)
            self._last_stream_id = self._last_accepted
        self._check_drained()

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
                self._note_activity()
                self._check_drained()

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
