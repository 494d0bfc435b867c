"""Our HTTP/2 client connection, on ``h2`` and an httpcore network stream.

Theory of operation
-------------------
Two tasks per connection, both in the transport's task group:

- The **reader** reads the socket, feeds ``h2`` and routes each event to its
  stream's queue. Requests never read the socket themselves, so a stalled stream
  times out alone (its ``read_timeout`` bounds waiting on *its* queue) and never
  poisons its neighbours, unlike httpcore's HTTP/2 connection, where one read
  timeout fails the whole connection.
- The **writer** is the only code that writes to the socket. Callers (and the
  reader) mutate the ``h2`` state machine synchronously, move its output into
  ``_out`` and wake the writer (:meth:`H2Connection._queue`); nobody else awaits
  a write, shields one, or takes a lock. Frame order is the order of ``h2``
  calls. Each write is bounded by ``write_timeout``; a write that fails or times
  out breaks the connection (it may have left half a frame on the wire).

So cleanup never waits on the network: leaving a stream early queues
``RST_STREAM(CANCEL)`` and returns; giving flow-control credit back queues a
WINDOW_UPDATE that goes out at once, not at the next unrelated write.

Byte offsets tell what provably never left: ``_queued`` counts every byte ever
put in ``_out``, ``_attempted`` every byte handed to a socket write. A stream
whose HEADERS start at or beyond ``_attempted`` when the connection dies was
never sent; it fails with :class:`NotProcessed` and the pool sends it again
elsewhere. Every other stream gets its own copy of the error (callers attach
``partial`` to it), chained from the cause.

Stream slots: the pool reserves one with :meth:`H2Connection.try_reserve`
(check and increment in one synchronous step) before it awaits anything.

DATA fast path: the reader splits frames itself (:class:`FrameReader`). A DATA
frame that does not end its stream, on a stream of ours that is open, goes
straight to that stream's queue; ``h2`` never sees it (its per-frame cost was
most of the client's CPU per streamed chunk). Everything else, including each
stream's last DATA frame, goes through ``h2``, so its stream states stay true.

Flow control, for the bytes ``h2`` did not see, is ours: the connection window
is the largest HTTP/2 allows and its credit goes back as bytes arrive (every
16 MiB), so streams whose consumers are slow (their data waits in our queues)
never use up credit the others need; each stream's window (1 MiB) bounds what
it buffers, and its credit goes back, half a window at a time, as the consumer
takes the data (:meth:`H2Stream.receive_data` calls :meth:`H2Connection.ack`).

Liveness: an idle connection is closed after ``idle_timeout`` (the writer
watches the clock while nothing is active), and one idle longer than
``PING_AFTER`` is PINGed before reuse (:meth:`H2Connection.check_alive`): a
NAT or load balancer that silently dropped it costs a short PING timeout, not a
``read_timeout`` and a "maybe processed" failure.

GOAWAY: streams above ``last_stream_id`` fail with :class:`NotProcessed`; the
rest finish; no new stream starts here. A malformed GOAWAY promises nothing, so
every stream that left counts as maybe processed. ``REFUSED_STREAM`` is "not
processed" too.
"""

from __future__ import annotations

import enum
import os
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack

from .._errors import (
    AiLibError,
    InvalidRequestError,
    RemoteProtocolError,
    WriteTimeoutError,
)
from ._errors import NotProcessed, closing_error, mapped, own_copy, translate
from ._frames import DataFrame, FrameReader, window_update
from ._h2_stream import END, H2Stream

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpcore

    from ._frames import GoAway

__all__ = ["ConnState", "H2Connection"]
_STREAM_WINDOW = 1 << 20
_LOCAL_SETTINGS = {
    h2.settings.SettingCodes.ENABLE_PUSH: 0,
    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _STREAM_WINDOW,
    h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 16,
}
_CONNECTION_WINDOW = (1 << 31) - 1  # the largest allowed (RFC 9113 6.9.1)
_STREAM_UPDATE = _STREAM_WINDOW // 2  # credit goes back in steps of half a window
_CONNECTION_UPDATE = 1 << 24
# At most 16 KB per read: at concurrency 64 a 64 KB read took every response
# at once, the woken callers then sent every next request in one write, and
# client and server took turns (the client 60% busy, measured). Smaller reads
# let the first callers' requests go out while the rest are decoded.
_READ_SIZE = 1 << 14
_GOAWAY_WAIT = 2.0  # how long a failed write waits for the GOAWAY that explains it
PING_AFTER = 5.0  # an idle connection older than this is PINGed before reuse
_PING_TIMEOUT = 2.0  # ... and replaced if the PING ACK takes longer than this
_GOODBYE_TIMEOUT = 0.5  # closing: how long the writer may spend on our GOAWAY


class _H2(h2.connection.H2Connection):
    # h2 remembers how each closed stream closed, so that late frames on a
    # stream we reset are ignored rather than treated as a connection error.
    # Its default memory (65,536 streams, ~130 B each) makes a long-lived
    # connection's RSS grow for its first 65,536 requests (measured: 1.33x
    # from 20k to 200k requests). 4,096 is far more than can be in flight
    # within one round trip.
    MAX_CLOSED_STREAMS = 4096


_SECRET = frozenset({b"authorization", b"proxy-authorization", b"cookie"})
# Values that differ from call to call: encoded apart, never indexed.
_VOLATILE = frozenset({b"content-length", b"x-client-request-id"})
_CONNECTION_SPECIFIC = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    }
)


class _Encoder(hpack.Encoder):
    """HPACK with a cache of whole header blocks.

    A request's headers repeat call after call; h2's encoder searches its
    table and Huffman-codes secret values for every header of every request.
    The block for a header list is reused while the dynamic table is as it was
    when the list was encoded without changing it (``_state``): encoding it
    again would give the same bytes. Headers whose value differs on every call
    (``content-length``, ``x-client-request-id``) are encoded apart, after the
    block, never indexed, so they never change the table: indexing the request
    id evicted the table's entries and missed the cache on every request. Secret headers are never indexed (what h2's normalisation,
    which we switch off, would do).
    """

    def __init__(self) -> None:
        super().__init__()
        self._blocks: dict[tuple[tuple[bytes, bytes], ...], tuple[object, bytes]] = {}

    def _state(self) -> object:
        entries = self.header_table.dynamic_entries
        return (len(entries), id(entries[0]) if entries else 0, self.header_table_size)

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        stable: list[tuple[bytes, bytes]] = []
        volatile: list[hpack.NeverIndexedHeaderTuple] = []
        for name, value in headers:
            if name in _VOLATILE:
                volatile.append(hpack.NeverIndexedHeaderTuple(name, value))
            else:
                stable.append((name, value))
        block = self._encode_cached(stable, huffman)
        return block + super().encode(volatile, huffman) if volatile else block

    def _encode_cached(
        self, headers: list[tuple[bytes, bytes]], huffman: bool
    ) -> bytes:
        key = tuple(headers)
        state = self._state()
        hit = self._blocks.get(key)
        if hit is not None and hit[0] == state and not self.table_size_changes:
            return hit[1]
        block = super().encode(
            [
                hpack.NeverIndexedHeaderTuple(name, value)
                if name in _SECRET
                else (name, value)
                for name, value in headers
            ],
            huffman,
        )
        if self._state() == state:
            if len(self._blocks) >= 64:
                self._blocks.clear()
            self._blocks[key] = (state, block)
        return block


def _check_outbound(headers: list[tuple[bytes, bytes]]) -> None:
    """What h2's outbound validation checked (we switch it off: it costs more
    than the rest of a request): lower-case names, no connection-specific
    header, ``te`` only ``trailers``, pseudo-headers first.

    Raises:
        InvalidRequestError: naming the header.
    """
    regular = False
    for name, value in headers:
        if name[:1] == b":":
            if regular:
                problem = "a pseudo-header after a regular header"
            else:
                continue
        elif name in _CONNECTION_SPECIFIC:
            problem = "a connection-specific header, which HTTP/2 forbids"
        elif name == b"te" and value != b"trailers":
            problem = "a te header other than 'trailers', which HTTP/2 forbids"
        elif name != name.lower():
            problem = "an upper-case header name, which HTTP/2 forbids"
        else:
            regular = True
            continue
        raise InvalidRequestError(
            f"cannot send header {name.decode('latin-1')!r} over HTTP/2: it is "
            f"{problem}; fix or drop it (extra_headers, ConnectionOptions.headers)"
        )


class ConnState(enum.Enum):
    OPEN = "open"  # takes new streams
    DRAINING = (
        "draining"  # GOAWAY seen, ids used up or a write failed: finish what runs
    )
    CLOSED = "closed"


class H2Connection:
    """A client HTTP/2 connection multiplexing up to the peer's stream limit."""

    def __init__(
        self,
        stream: httpcore.AsyncNetworkStream,
        *,
        on_change: Callable[[H2Connection], None],
        write_timeout: float | None,
        idle_timeout: float,
        close_timeout: float = 5.0,
    ) -> None:
        cfg = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_inbound_headers=False,
            validate_outbound_headers=False,  # _check_outbound does it
            normalize_outbound_headers=False,  # _Encoder keeps secrets unindexed
        )
        self._h2 = _H2(config=cfg)
        self._h2.encoder = _Encoder()
        self._h2.local_settings = h2.settings.Settings(
            client=True, initial_values=_LOCAL_SETTINGS
        )
        self._net = stream
        self._streams: dict[int, H2Stream] = {}
        self._out = bytearray()  # bytes for the writer
        self._queued = 0  # bytes ever put in _out
        self._attempted = 0  # bytes ever handed to a socket write
        self._wake = anyio.Event()  # set when _out gains bytes or the state changes
        self._writer_idle = False
        self._flow = anyio.Event()
        self._ping: anyio.Event | None = None
        self._ping_data = b""
        self._received = (
            0  # DATA bytes taken past h2, not yet credited to the connection
        )
        self._on_change = on_change
        self._write_timeout = write_timeout
        self._idle_timeout = idle_timeout
        self._close_timeout = close_timeout
        self._scopes: list[anyio.CancelScope] = []
        self.state = ConnState.OPEN
        self.max_streams = 100  # until the peer's SETTINGS say otherwise
        self.active = 0  # reserved stream slots
        self.completed = 0  # streams the server answered to the end
        self.goaway_last: int | None = None  # last_stream_id of the server's GOAWAY
        self.idle_since = anyio.current_time()
        self.error: BaseException | None = None
        self._reader_done = anyio.Event()
        self._writer_done = anyio.Event()
        self._settings_seen = anyio.Event()

    # ------------------------------------------------------------ lifecycle

    async def start(
        self, tg: anyio.abc.TaskGroup, settings_timeout: float | None
    ) -> None:
        """Queue the preface and settings, start the reader and writer tasks in
        ``tg`` and wait (at most ``settings_timeout``) for the server's SETTINGS.

        Raises:
            TransportError: the connection failed before the server's SETTINGS.
        """
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(_CONNECTION_WINDOW - 65535)
        self._queue()
        tg.start_soon(self._write_loop)
        tg.start_soon(self._read_loop)
        # The server's SETTINGS is its first frame: wait for it, so the first burst
        # of requests already respects MAX_CONCURRENT_STREAMS instead of being
        # refused. Costs nothing on a server that answers promptly.
        with anyio.move_on_after(settings_timeout):
            await self._settings_seen.wait()
        if self.error is not None:
            raise own_copy(self.error)

    def served_any(self) -> bool:
        """True if the server completed, or promised to process, any stream here."""
        return self.completed > 0 or bool(self.goaway_last)

    def try_reserve(self) -> bool:
        """Take a stream slot if this connection accepts one (no ``await`` inside:
        the check and the reservation are one step). Give it back with
        :meth:`send_request` (which owns it from then on) or :meth:`unreserve`."""
        if self.state is ConnState.OPEN and self.active < self.max_streams:
            self.active += 1
            return True
        return False

    @property
    def pinging(self) -> bool:
        """True while a liveness PING is waiting for its ACK."""
        return self._ping is not None

    def unreserve(self) -> None:
        """Return a slot taken by :meth:`try_reserve` and not used."""
        self.active -= 1
        if self.active == 0:
            self._became_idle()
        self._on_change(self)

    def _became_idle(self) -> None:
        self.idle_since = anyio.current_time()
        if self._writer_idle:  # restart the writer's idle clock
            self._writer_idle = False
            self._wake.set()

    async def check_alive(self, timeout: float | None) -> bool:
        """PING the server and wait at most ``min(timeout, 2 s)`` for the ACK.

        Concurrent callers share one PING. A connection that does not answer in
        time is closed (its open streams fail as maybe processed).

        Returns:
            True if the ACK came back, False if the connection is (now) closed.
        """
        if self.state is not ConnState.OPEN:
            return False
        event = self._ping
        if event is None:
            event = self._ping = anyio.Event()
            self._ping_data = os.urandom(8)
            self._h2.ping(self._ping_data)
            self._queue()
        wait = _PING_TIMEOUT if timeout is None else min(timeout, _PING_TIMEOUT)
        with anyio.move_on_after(wait):
            await event.wait()
        if self._ping is event:
            # No ACK in time: the peer (or a middlebox) is gone.
            await self._break(
                RemoteProtocolError(
                    f"the server did not answer a PING within {wait:g} s; the idle "
                    "connection was dropped on the way (NAT, load balancer)"
                ),
                "receive",
            )
        return self.state is ConnState.OPEN

    async def aclose(self) -> None:
        """Close at once: open streams fail with ``ClientClosedError``; our
        GOAWAY gets at most 0.5 s; the tasks stop and the socket closes. Shielded."""
        if self.state is ConnState.CLOSED:
            return
        self._fail_all(closing_error())
        with anyio.CancelScope(shield=True):
            try:
                self._h2.close_connection()
                self._queue()
            except h2.exceptions.ProtocolError:
                pass
            with anyio.move_on_after(min(_GOODBYE_TIMEOUT, self._close_timeout)):
                await self._writer_done.wait()
            self._stop()
            await self._close_socket()

    async def _break(self, exc: BaseException, phase: str) -> None:
        """The connection is dead: fail its streams (see :meth:`_fail_all`),
        stop both tasks and close the socket."""
        self._fail_all(_ours(exc, phase))
        self._stop()
        await self._close_socket()

    def _stop(self) -> None:
        for scope in self._scopes:
            scope.cancel()

    async def _close_socket(self) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self._net.aclose()
            except Exception:
                pass

    def _fail_all(self, exc: BaseException) -> None:
        """Mark the connection closed and fail every stream: the ones that never
        left with :class:`NotProcessed`, each other one with its own copy of
        ``exc``."""
        if self.state is ConnState.CLOSED:
            return
        self.state = ConnState.CLOSED
        self.error = exc
        for st in self._streams.values():
            st.fail(self._error_for(st, exc))
        self._flow.set()
        self._wake.set()
        if self._ping is not None:
            self._ping.set()
            self._ping = None
        self._on_change(self)

    def _error_for(self, st: H2Stream, exc: BaseException) -> BaseException:
        if st.sent_from >= self._attempted:
            return NotProcessed()  # not one byte of it was handed to the socket
        return own_copy(exc)

    # ------------------------------------------------------------ writing

    def _queue(self) -> None:
        """Move what ``h2`` wants to send into ``_out`` and wake the writer."""
        data = self._h2.data_to_send()
        if data:
            self._out += data
            self._queued += len(data)
            if self._writer_idle:
                self._writer_idle = False
                self._wake.set()

    async def _write_loop(self) -> None:
        with anyio.CancelScope() as scope:
            self._scopes.append(scope)
            try:
                await self._write_until_closed()
            except Exception as exc:
                await self._write_failed(exc)
            else:  # closed: everything queued (our GOAWAY) went out
                self._stop()
                await self._close_socket()
            finally:
                self._writer_done.set()

    async def _write_until_closed(self) -> None:
        out = self._out
        while True:
            if out:
                data = bytes(out)
                out.clear()
                self._attempted += len(data)
                with mapped("send"):
                    await self._net.write(data, self._write_timeout)
                continue
            if self.state is ConnState.CLOSED:
                return
            wake = self._wake = anyio.Event()
            self._writer_idle = True
            if self.active or self.state is not ConnState.OPEN:
                await wake.wait()
                continue
            # Idle: close the connection once it has been idle for idle_timeout.
            left = self.idle_since + self._idle_timeout - anyio.current_time()
            with anyio.move_on_after(max(left, 0.0)):
                await wake.wait()
            if (
                not wake.is_set()
                and self.active == 0
                and self.state is ConnState.OPEN
                and anyio.current_time() - self.idle_since >= self._idle_timeout
            ):
                self._h2.close_connection()
                self._queue()
                self._fail_all(RemoteProtocolError("closed after idle_timeout"))

    async def _write_failed(self, exc: Exception) -> None:
        """A write failed or timed out: the connection is broken. Streams queued
        behind it never left; the rest wait (briefly) for the GOAWAY or EOF that
        may prove the server never processed them."""
        err = _ours(exc, "send")
        if self.state is ConnState.OPEN:
            self.state = ConnState.DRAINING
            self._on_change(self)
        for st in self._streams.values():
            if st.sent_from >= self._attempted:
                st.fail(NotProcessed())
        if not isinstance(err, WriteTimeoutError):
            # The peer hung up: what it sent before (a GOAWAY naming the streams
            # it never processed) is still readable.
            with anyio.move_on_after(_GOAWAY_WAIT):
                await self._reader_done.wait()
        await self._break(err, "send")

    def ack(self, st: H2Stream, flow: int) -> None:
        """The consumer took ``flow`` bytes of ``st``'s body: once half a stream
        window is consumed, a WINDOW_UPDATE for the stream goes out at once.
        (The connection's credit went back when the bytes arrived.)"""
        unacked = st.unacked + flow
        if unacked < _STREAM_UPDATE:
            st.unacked = unacked
            return
        st.unacked = 0
        if self.state is not ConnState.CLOSED and not st.remote_ended:
            self._send_raw(window_update(st.id, unacked))

    def _send_raw(self, frame: bytes) -> None:
        """Queue a frame built without ``h2``, after what ``h2`` has queued."""
        self._queue()
        self._out += frame
        self._queued += len(frame)
        if self._writer_idle:
            self._writer_idle = False
            self._wake.set()

    # ------------------------------------------------------------ requests

    async def send_request(
        self,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        write_timeout: float | None,
        read_timeout: float | None,
    ) -> tuple[H2Stream, int, list[tuple[bytes, bytes]]]:
        """Open a stream on a slot reserved by :meth:`try_reserve`, send
        ``headers`` (pseudo-headers first) and ``body``, and wait for the response
        headers. The slot is released on every failure.

        Returns:
            The stream (for the body), the status and the response headers.

        Raises:
            NotProcessed: the server certainly did not process the request.
            InvalidRequestError: ``h2`` refused the headers (nothing was sent).
            TransportError: anything else; the stream is reset and released.
        """
        if self.state is not ConnState.OPEN:
            self.unreserve()
            raise NotProcessed
        try:
            sid = self._h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self.state = ConnState.DRAINING
            self.unreserve()
            raise NotProcessed from None
        except h2.exceptions.ProtocolError:  # the state machine is closed
            self.unreserve()
            raise NotProcessed from None
        try:
            _check_outbound(headers)
        except InvalidRequestError:
            self.unreserve()
            raise
        st = H2Stream(self, sid)
        st.sent_from = self._queued
        self._streams[sid] = st
        try:
            try:
                self._h2.send_headers(sid, headers, end_stream=not body)
            except h2.exceptions.TooManyStreamsError:
                st.local_ended = st.remote_ended = True
                raise NotProcessed from None  # the server lowered its limit
            except h2.exceptions.ProtocolError as exc:
                st.local_ended = st.remote_ended = True  # nothing to reset
                raise InvalidRequestError(
                    f"cannot send these headers over HTTP/2: {exc}; fix or drop the "
                    "offending header (extra_headers, ConnectionOptions.headers)"
                ) from exc
            # A body that fits the window and one frame (every chat request) goes
            # out with the headers in a single socket write.
            inline = bool(body) and len(body) <= min(
                self._h2.local_flow_control_window(sid),
                self._h2.max_outbound_frame_size,
            )
            if inline:
                self._h2.send_data(sid, body, end_stream=True)
            st.local_ended = inline or not body
            self._queue()
            if body and not inline:
                await self._send_body(st, body, write_timeout)
            while True:
                ev = await st.next_event(read_timeout)
                if isinstance(ev, list):
                    status, resp_headers = ev
                    if status >= 200:
                        return st, status, resp_headers
                    continue  # 1xx informational
                raise RemoteProtocolError("response body arrived before its headers")
        except BaseException:
            self.release(st)
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
            self._queue()

    def release(self, st: H2Stream) -> None:
        """Forget ``st``: queue a reset if unfinished. Never
        waits: the writer sends what this queues."""
        if self._streams.pop(st.id, None) is None:
            return
        self.active -= 1
        if self.state is not ConnState.CLOSED:
            # Unread data needs no credit back: the connection's went back on
            # arrival, and the stream is done.
            st.events.clear()
            if not (st.remote_ended and st.local_ended) and st.error is None:
                try:
                    self._h2.reset_stream(st.id, h2.errors.ErrorCodes.CANCEL)
                except h2.exceptions.ProtocolError:
                    pass  # already closed on the h2 side
            self._queue()
        if self.active == 0:
            self._became_idle()
        self._on_change(self)

    # ------------------------------------------------------------ reading

    async def _read_loop(self) -> None:
        frames = FrameReader()
        streams = self._streams
        with anyio.CancelScope() as scope:
            self._scopes.append(scope)
            try:
                while True:
                    data = await self._net.read(_READ_SIZE)
                    if not data:
                        raise RemoteProtocolError("the server closed the connection")
                    for item in frames.feed(data):
                        if item.__class__ is DataFrame:
                            frame: DataFrame = item
                            st = streams.get(frame.stream_id)
                            if st is None or not st.fast or st.error is not None:
                                self._receive(frame.raw)
                                continue
                            st.push((frame.data, frame.flow))
                            self._received += frame.flow
                            if self._received >= _CONNECTION_UPDATE:
                                self._send_raw(window_update(0, self._received))
                                self._received = 0
                        elif item.__class__ is bytes:
                            self._receive(item)
                        else:
                            self._goaway(item)  # type: ignore[arg-type]
                    self._queue()
                    if self.state is ConnState.CLOSED:
                        break
            except Exception as exc:
                await self._break(exc, "receive")
            finally:
                self._reader_done.set()
                self._settings_seen.set()

    def _receive(self, data: bytes) -> None:
        """Feed whole frames to ``h2`` and route its events."""
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            raise RemoteProtocolError(f"HTTP/2 protocol error: {exc}") from exc
        for ev in events:
            self._dispatch(ev)

    def _dispatch(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.DataReceived):
            # h2 saw it (a stream's last DATA frame, or one for a stream we
            # left): its credit goes back through h2 at once.
            self._h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            st = self._streams.get(ev.stream_id)
            if st is not None and st.error is None:
                st.push((ev.data, 0))
        elif isinstance(
            ev, h2.events.ResponseReceived | h2.events.InformationalResponseReceived
        ):
            st = self._streams.get(ev.stream_id)
            if st is not None:
                try:
                    status, headers = _split_status(ev.headers)
                    st.push([status, headers])
                    # h2 checks a content-length against the DATA it saw: a
                    # body with one goes through h2 (a streamed one has none).
                    st.fast = status >= 200 and not any(
                        name == b"content-length" for name, _ in headers
                    )
                except RemoteProtocolError as exc:
                    try:
                        self._h2.reset_stream(
                            ev.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR
                        )
                    except h2.exceptions.ProtocolError:
                        pass  # it came with END_STREAM: nothing to reset
                    st.remote_ended = st.local_ended = True
                    st.fail(exc)
        elif isinstance(ev, h2.events.StreamEnded):
            self.completed += 1
            st = self._streams.get(ev.stream_id)
            if st is not None and st.error is None:
                st.remote_ended = True
                st.fast = False
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
        elif isinstance(ev, h2.events.PingAckReceived):
            if self._ping is not None and ev.ping_data == self._ping_data:
                self.idle_since = anyio.current_time()
                self._ping.set()
                self._ping = None
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
        elif isinstance(ev, h2.events.ConnectionTerminated):  # pragma: no cover
            # GOAWAY frames are filtered out before h2 (see _frames.py).
            raise RemoteProtocolError("h2 saw a GOAWAY the filter missed")

    def _goaway(self, goaway: GoAway) -> None:
        """The server will process streams up to ``last_stream_id`` and no more.

        A malformed GOAWAY (short payload, non-zero stream) promises nothing:
        the connection is dead and every stream that left may have been
        processed.
        """
        if goaway.malformed:
            raise RemoteProtocolError(
                "the server sent a malformed GOAWAY; requests already sent may "
                "have been processed"
            )
        last = goaway.last_stream_id
        self.goaway_last = last
        if self.state is ConnState.OPEN:
            self.state = ConnState.DRAINING
        for sid, st in self._streams.items():
            if sid > last:
                st.fail(NotProcessed())
            elif goaway.error_code != h2.errors.ErrorCodes.NO_ERROR:
                st.fail(
                    RemoteProtocolError(
                        "the server ended the connection "
                        f"({_code_name(goaway.error_code)})"
                    )
                )
        self._on_change(self)


def _ours(exc: BaseException, phase: str) -> BaseException:
    """``exc`` as an error of ours (``phase``: ``"send"`` or ``"receive"``)."""
    if isinstance(exc, AiLibError):
        return exc
    return translate(exc, phase) or RemoteProtocolError(f"{phase} failed: {exc!r}")


def _split_status(
    headers: list[tuple[bytes, bytes]],
) -> tuple[int, list[tuple[bytes, bytes]]]:
    """``:status`` and the regular headers of a response HEADERS block.

    Raises:
        RemoteProtocolError: ``:status`` missing, repeated or not a valid code.
    """
    status = -1
    rest = []
    for name, value in headers:
        if name == b":status":
            if status != -1 or len(value) != 3 or not value.isdigit():
                status = -2
                break
            status = int(value)
        elif not name.startswith(b":"):
            rest.append((name, value))
    if not 100 <= status <= 599 or status == 101:
        shown = "missing" if status == -1 else "malformed"
        raise RemoteProtocolError(
            f"the server sent a response with a {shown} :status; the request may "
            "have been processed"
        )
    return status, rest


def _code_name(code: int | None) -> str:
    if code is None:
        return "no error code"
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"error {code}"
