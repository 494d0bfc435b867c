"""Our HTTP/2 client connection, on ``h2`` and an httpcore network stream.

Theory of operation
-------------------
One reader task per connection (in the transport's task group) reads the socket,
feeds ``h2`` and routes each event to its stream's queue. Requests never read the
socket themselves, so a stalled stream times out alone (its ``read_timeout`` bounds
waiting on *its* queue) and never poisons its neighbours, unlike httpcore's
HTTP/2 connection, where one read timeout fails the whole connection.

Writes: every task mutates the ``h2`` state machine synchronously, then calls
:meth:`H2Connection._flush`, which moves pending bytes into an ordered buffer
*before* taking the write lock; whoever holds the lock writes everything buffered.
Frame order is therefore the order of ``h2`` calls. The socket write is shielded:
a cancelled caller can't leave half a frame on the wire for its neighbours.

Stream states (``_Stream``): OPEN → (response headers) → body chunks → END, or
failed with an error. Leaving early sends ``RST_STREAM(CANCEL)``; the connection
stays usable. Unconsumed DATA is acknowledged so flow-control credit never leaks.

GOAWAY: streams above ``last_stream_id`` fail with :class:`NotProcessed` (the
pool re-sends them elsewhere); the rest finish; no new stream starts here.
``REFUSED_STREAM`` and a state machine already closed before our HEADERS went out
are "not processed" too.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import anyio
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .._errors import (
    AiLibError,
    RemoteProtocolError,
    TransportError,
    WriteTimeoutError,
)
from ._errors import NotProcessed, mapped, translate
from ._frames import GoAwayFilter
from ._h2_stream import END, H2Stream

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpcore

__all__ = ["ConnState", "H2Connection"]
_LOCAL_SETTINGS = {
    h2.settings.SettingCodes.ENABLE_PUSH: 0,
    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
    h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 16,
}
_CONNECTION_WINDOW = 1 << 24
_READ_SIZE = 1 << 16
_GOAWAY_WAIT = 2.0


class ConnState(enum.Enum):
    OPEN = "open"  # takes new streams
    DRAINING = "draining"  # GOAWAY seen or ids used up: finish what's running
    CLOSED = "closed"


class H2Connection:
    """A client HTTP/2 connection multiplexing up to the peer's stream limit."""

    def __init__(
        self,
        stream: httpcore.AsyncNetworkStream,
        *,
        on_change: Callable[[H2Connection], None],
        close_timeout: float = 5.0,
    ) -> None:
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_inbound_headers=False
        )
        self._h2 = h2.connection.H2Connection(config=cfg)
        self._h2.local_settings = h2.settings.Settings(
            client=True, initial_values=_LOCAL_SETTINGS
        )
        self._net = stream
        self._streams: dict[int, H2Stream] = {}
        self._outbuf = bytearray()
        self._write_lock = anyio.Lock()
        self._flow = anyio.Event()
        self._on_change = on_change
        self._close_timeout = close_timeout
        self._reader_scope: anyio.CancelScope | None = None
        self.state = ConnState.OPEN
        self.max_streams = 100  # until the peer's SETTINGS say otherwise
        self.active = 0
        self.completed = 0  # streams the server answered to the end
        self.goaway_last: int | None = None  # last_stream_id of the server's GOAWAY
        self.idle_since = anyio.current_time()
        self.error: BaseException | None = None
        self._reader_done = anyio.Event()
        self._settings_seen = anyio.Event()

    # ------------------------------------------------------------ lifecycle

    async def start(
        self,
        tg: anyio.abc.TaskGroup,
        write_timeout: float | None,
        settings_timeout: float | None,
    ) -> None:
        """Send the preface and settings, start the reader task in ``tg`` and wait
        (at most ``settings_timeout``) for the server's SETTINGS."""
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(_CONNECTION_WINDOW - 65535)
        await self._flush(write_timeout)
        tg.start_soon(self._read_loop)
        # The server's SETTINGS is its first frame: wait for it, so the first burst
        # of requests already respects MAX_CONCURRENT_STREAMS instead of being
        # refused. Costs nothing on a server that answers promptly.
        with anyio.move_on_after(settings_timeout):
            await self._settings_seen.wait()
        if self.error is not None:
            raise self.error

    def served_any(self) -> bool:
        """True if the server completed, or promised to process, any stream here."""
        return self.completed > 0 or bool(self.goaway_last)

    def can_take(self) -> bool:
        return self.state is ConnState.OPEN and self.active < self.max_streams

    async def aclose(self) -> None:
        """Close at once: fail open streams, stop the reader, close the socket."""
        if self.state is ConnState.CLOSED:
            return
        self._fail_all(RemoteProtocolError("connection closed by the client"))
        with anyio.CancelScope(shield=True):
            try:
                self._h2.close_connection()
                self._queue()
                if self._outbuf and not self._write_lock.locked():
                    with anyio.move_on_after(0.5):
                        await self._net.write(bytes(self._outbuf))
            except Exception:
                pass
            finally:
                await self._close_socket()

    async def _close_socket(self, *, stop_reader: bool = True) -> None:
        if stop_reader and self._reader_scope is not None:
            self._reader_scope.cancel()
        try:
            await self._net.aclose()
        except Exception:
            pass

    def _fail_all(self, exc: BaseException) -> None:
        if self.state is ConnState.CLOSED:
            return
        self.state = ConnState.CLOSED
        self.error = exc
        for st in self._streams.values():
            st.fail(exc)
        self._flow.set()
        self._on_change(self)

    # ------------------------------------------------------------ writing

    def _queue(self) -> None:
        data = self._h2.data_to_send()
        if data:
            self._outbuf += data

    async def _flush(self, timeout: float | None) -> None:
        self._queue()
        if not self._outbuf:
            return
        async with self._write_lock:
            if not self._outbuf:
                return  # a task ahead of us wrote our bytes too
            data = bytes(self._outbuf)
            self._outbuf.clear()
            with anyio.CancelScope(shield=True):
                try:
                    with mapped("send"):
                        await self._net.write(data, timeout)
                except AiLibError:
                    # Take no new streams, but let the reader drain what the server
                    # sent before hanging up: its GOAWAY tells which streams it
                    # never processed.
                    if self.state is ConnState.OPEN:
                        self.state = ConnState.DRAINING
                        self._on_change(self)
                    raise

    def ack(self, stream_id: int, flow: int) -> None:
        """Hand ``flow`` bytes of credit back; WINDOW_UPDATE goes out with the next
        write (h2 batches them until half a window is consumed)."""
        if flow and self.state is not ConnState.CLOSED:
            self._h2.acknowledge_received_data(flow, stream_id)

    # ------------------------------------------------------------ requests

    async def send_request(
        self,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        write_timeout: float | None,
        read_timeout: float | None,
    ) -> tuple[H2Stream, int, list[tuple[bytes, bytes]]]:
        """Open a stream, send ``headers`` (pseudo-headers first) and ``body``, and
        wait for the response headers.

        Returns:
            The stream (for the body), the status and the response headers.

        Raises:
            NotProcessed: the server certainly did not process the request.
            TransportError: anything else; the stream is reset and released.
        """
        if self.state is not ConnState.OPEN:
            raise NotProcessed
        try:
            sid = self._h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self.state = ConnState.DRAINING
            self._on_change(self)
            raise NotProcessed from None
        st = H2Stream(self, sid)
        self._streams[sid] = st
        self.active += 1
        try:
            try:
                self._h2.send_headers(sid, headers, end_stream=not body)
            except h2.exceptions.ProtocolError:
                raise NotProcessed from None  # closed before our HEADERS left
            # A body that fits the window and one frame (every chat request) goes
            # out with the headers in a single socket write.
            inline = bool(body) and len(body) <= min(
                self._h2.local_flow_control_window(sid),
                self._h2.max_outbound_frame_size,
            )
            if inline:
                self._h2.send_data(sid, body, end_stream=True)
            st.local_ended = inline or not body
            try:
                await self._flush(write_timeout)
                if body and not inline:
                    await self._send_body(st, body, write_timeout)
            except TransportError:
                # The write failed: wait (briefly) for the reader to see the GOAWAY
                # or EOF that explains it, and report "not processed" if proven.
                with anyio.CancelScope(shield=True), anyio.move_on_after(_GOAWAY_WAIT):
                    await self._reader_done.wait()
                if isinstance(st.error, NotProcessed):
                    raise NotProcessed from None
                raise
            while True:
                ev = await st.next_event(read_timeout)
                if isinstance(ev, list):
                    status, resp_headers = _split_status(ev)
                    if status >= 200:
                        return st, status, resp_headers
                    continue  # 1xx informational
                raise RemoteProtocolError("response body arrived before its headers")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.release(st)
            raise

    async def _send_body(
        self, st: H2Stream, body: bytes, timeout: float | None
    ) -> None:
        view = memoryview(body)
        offset, total = 0, len(body)
        while offset < total:
            if st.error is not None:
                raise st.error
            if st.remote_ended:
                return  # the server already answered; stop sending
            window = self._h2.local_flow_control_window(st.id)
            size = min(window, self._h2.max_outbound_frame_size, total - offset)
            if size <= 0:
                flow = self._flow
                with anyio.move_on_after(timeout) as scope:
                    await flow.wait()
                if scope.cancelled_caught:
                    raise WriteTimeoutError(
                        f"server granted no flow-control window for {timeout:g} s"
                    )
                continue
            end = offset + size == total
            self._h2.send_data(
                st.id, bytes(view[offset : offset + size]), end_stream=end
            )
            offset += size
            st.local_ended = end
            await self._flush(timeout)

    async def release(self, st: H2Stream) -> None:
        """Forget ``st``: reset it if unfinished, return unread credit."""
        if self._streams.pop(st.id, None) is None:
            return
        self.active -= 1
        if self.state is not ConnState.CLOSED:
            for ev in st.events:
                if isinstance(ev, tuple):
                    self._h2.acknowledge_received_data(ev[1], st.id)
            st.events.clear()
            if not (st.remote_ended and st.local_ended) and st.error is None:
                try:
                    self._h2.reset_stream(st.id, h2.errors.ErrorCodes.CANCEL)
                except h2.exceptions.ProtocolError:
                    pass  # already closed on the h2 side
            self._queue()
            if self._outbuf:  # a reset or window update to send: shielded, bounded
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(self._close_timeout),
                ):
                    try:
                        await self._flush(None)
                    except AiLibError:
                        pass  # the connection died; _flush marked it
        if self.active == 0:
            self.idle_since = anyio.current_time()
        self._on_change(self)

    # ------------------------------------------------------------ reading

    async def _read_loop(self) -> None:
        goaway_filter = GoAwayFilter()
        with anyio.CancelScope() as scope:
            self._reader_scope = scope
            try:
                while True:
                    data = await self._net.read(_READ_SIZE)
                    if not data:
                        raise RemoteProtocolError("the server closed the connection")
                    data, goaways = goaway_filter.feed(data)
                    if data:
                        try:
                            events = self._h2.receive_data(data)
                        except h2.exceptions.ProtocolError as exc:
                            raise RemoteProtocolError(
                                f"HTTP/2 protocol error: {exc}"
                            ) from exc
                        for ev in events:
                            self._dispatch(ev)
                    for goaway in goaways:
                        self._goaway(goaway.last_stream_id, goaway.error_code)
                    await self._flush(None)
            except Exception as exc:
                err = (
                    exc
                    if isinstance(exc, AiLibError)
                    else (
                        translate(exc, "receive")
                        or RemoteProtocolError(f"receive failed: {exc!r}")
                    )
                )
                self._fail_all(err)
                await self._close_socket(stop_reader=False)
            finally:
                self._reader_done.set()
                self._settings_seen.set()

    def _dispatch(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.DataReceived):
            st = self._streams.get(ev.stream_id)
            if st is None:
                self._h2.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id
                )
            else:
                st.push((ev.data, ev.flow_controlled_length))
        elif isinstance(
            ev, h2.events.ResponseReceived | h2.events.InformationalResponseReceived
        ):
            st = self._streams.get(ev.stream_id)
            if st is not None:
                st.push(list(ev.headers))
        elif isinstance(ev, h2.events.StreamEnded):
            self.completed += 1
            st = self._streams.get(ev.stream_id)
            if st is not None:
                st.remote_ended = True
                st.push(END)
        elif isinstance(ev, h2.events.StreamReset):
            st = self._streams.get(ev.stream_id)
            if st is not None:
                st.remote_ended = st.local_ended = True
                if ev.error_code == h2.errors.ErrorCodes.REFUSED_STREAM:
                    st.fail(NotProcessed())
                else:
                    st.fail(
                        RemoteProtocolError(
                            f"the server reset the stream ({_code_name(ev.error_code)})"
                        )
                    )
        elif isinstance(ev, h2.events.ConnectionTerminated):  # pragma: no cover
            # GOAWAY frames are filtered out before h2 (see _frames.py).
            self._goaway(ev.last_stream_id or 0, int(ev.error_code or 0))
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            # Unset means unlimited (2**32 + 1 in h2); we cap it anyway.
            self.max_streams = min(
                self._h2.remote_settings.max_concurrent_streams, 1000
            )
            self._settings_seen.set()
            self._flow.set()
            self._flow = anyio.Event()
            self._on_change(self)
        elif isinstance(ev, h2.events.WindowUpdated):
            self._flow.set()
            self._flow = anyio.Event()

    def _goaway(self, last: int, error_code: int) -> None:
        """The server will process streams up to ``last`` and no more."""
        self.goaway_last = last
        if self.state is ConnState.OPEN:
            self.state = ConnState.DRAINING
        for sid, st in self._streams.items():
            if sid > last:
                st.fail(NotProcessed())
            elif error_code != h2.errors.ErrorCodes.NO_ERROR:
                st.fail(
                    RemoteProtocolError(
                        f"the server ended the connection ({_code_name(error_code)})"
                    )
                )
        self._on_change(self)


def _split_status(
    headers: list[tuple[bytes, bytes]],
) -> tuple[int, list[tuple[bytes, bytes]]]:
    status = 0
    rest = []
    for name, value in headers:
        if name == b":status":
            status = int(value)
        elif not name.startswith(b":"):
            rest.append((name, value))
    return status, rest


def _code_name(code: int | None) -> str:
    if code is None:
        return "no error code"
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"error {code}"
