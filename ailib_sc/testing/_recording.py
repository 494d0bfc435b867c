"""What the fake server remembers: requests, resets, stream outcomes, counters,
processed-request accounting and scripted replies.

Theory of operation: everything here is touched only from the event loop the
server runs in, and never across an ``await``, so no locks are needed.  A
protocol handler calls `Recorder.connection_opened` / `connection_closed` around
a connection and wraps the handling of one request in `Recorder.handling`, which
keeps the high-water marks.  A streamed reply records one `StreamOutcome` when it
ends, however it ends (the handlers do it in a ``finally``).  Waiters
(`wait_for_requests`, `wait_for_resets`, `wait_for_stream_outcomes`) are
released as soon as a record makes their count reachable, which is what lets
tests synchronise on the server without sleeping.

`processed` counts, per ``x-client-request-id``, the requests the server did
work for (`Service.respond` calls `count_processed` once it has decided to
route or script a request); it is how tests prove a client never sent one
logical call twice.  With ``record=False`` no request or stream outcome is kept
(long benchmark runs), only the counters.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ailib_sc.testing._replies import decode_json

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from typing import TypeAlias

    from ailib_sc.testing._replies import Reply
    from ailib_sc.testing._stream import StreamSpec

    #: How protocol handlers ask the server for the reply to a complete request.
    Respond: TypeAlias = Callable[["RecordedRequest"], Awaitable[Reply]]

__all__ = ["RecordedRequest", "Recorder", "Script", "StreamOutcome", "StreamScript"]


# Header names that may carry a credential: same words as ailib_sc's own
# `is_secret_header` (copied: ailib_sc.testing imports nothing else of ailib_sc).
_SECRET_WORDS = ("key", "token", "auth", "secret", "cookie", "signature", "password")


def _masked(name: str, value: str) -> str:
    lowered = name.lower()
    return "***" if any(word in lowered for word in _SECRET_WORDS) else value


@dataclass(frozen=True, slots=True, repr=False)
class RecordedRequest:
    """One request as `FakeProviderServer` received it.

    Its repr masks the values of headers that may carry a credential (names
    containing ``key``, ``token``, ``auth``, ``secret``, ``cookie``,
    ``signature`` or ``password``), so a failing assertion never prints an API
    key; `header` and `headers` still give the values as received.

    Attributes:
        method: The request method, e.g. ``"POST"``.
        path: The request target including any query, e.g. ``"/v1/models?x=1"``.
        headers: ``(name, value)`` pairs in arrival order, names lower-cased and
            values decoded as Latin-1.  HTTP/2 pseudo-headers (``:method``,
            ``:path``, ``:scheme``, ``:authority``) are not included.
        body: The complete request body (chunked bodies already de-chunked).
        http_version: ``"HTTP/1.1"`` or ``"HTTP/2"``.
        connection_id: Index of the TCP connection the request came on, counted
            from 0 in accept order; never reused, not even after ``reset()``.
        stream_id: The HTTP/2 stream id, or None for HTTP/1.1.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    http_version: str
    connection_id: int
    stream_id: int | None = None

    def __repr__(self) -> str:
        headers = tuple((k, _masked(k, v)) for k, v in self.headers)
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, "
            f"headers={headers!r}, body={self.body!r}, "
            f"http_version={self.http_version!r}, "
            f"connection_id={self.connection_id!r}, stream_id={self.stream_id!r})"
        )

    def header(self, name: str) -> str | None:
        """Return the first value of header `name` (any case), or None if absent."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        """Return the body decoded as JSON.

        Raises:
            msgspec.DecodeError: The body is not valid JSON.
        """
        return decode_json(self.body)


@dataclass(slots=True, kw_only=True)
class Script:
    """One queued scripted reply (see `FakeProviderServer.script`)."""

    status: int
    body: bytes | tuple[bytes, ...] | None
    headers: dict[str, str]
    remaining: int
    path: str | None
    delay: float
    hold_until: anyio.Event | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOutcome:
    """How one streamed reply (``"stream": true``) ended, as the server saw it.

    Attributes:
        request_index: Index in `FakeProviderServer.requests` of the request
            this reply answered (indices restart at 0 after ``reset()``).
        http_version: ``"HTTP/1.1"`` or ``"HTTP/2"``.
        events_sent: Server-Sent Events written, counting the role chunk as one.
        completed: Every planned event was written and the body was ended
            cleanly: after ``data: [DONE]``, after the error event of
            ``script_stream(error_at=...)``, or after the last chunk of
            ``script_stream(done=False)``.
        ended_cleanly: The server ended the body properly (HTTP/1.1: the
            zero-length last chunk; HTTP/2: END_STREAM), whether or not every
            planned event was written: true when `completed`, and when
            ``script_stream(end_after=...)`` cut the stream short (then
            `completed` is false).  False for a stall, a disconnect, a reset,
            a client leaving or the server stopping.
        done_sent: ``data: [DONE]`` was written (it is always the last event).
            False with ``script_stream(done=False)``, after ``error_at``, and
            whenever the stream stopped before it.
        client_reset: HTTP/2 only: the client sent RST_STREAM on this stream
            before the body ended.
        client_closed: The client closed the connection before the body ended
            (HTTP/1.1: end of file or a failed write; HTTP/2: the connection
            ended because the client hung up or sent GOAWAY).
        ended_at: `time.monotonic()` when the server saw the end.
    """

    request_index: int
    http_version: str
    events_sent: int
    completed: bool
    ended_cleanly: bool
    done_sent: bool
    client_reset: bool
    client_closed: bool
    ended_at: float


@dataclass(slots=True)
class StreamScript:
    """One queued stream script (see `FakeProviderServer.script_stream`)."""

    spec: StreamSpec
    remaining: int


class Recorder:
    """Requests, resets, stream outcomes, scripts and counters of one server.

    Args:
        record: Keep every request and stream outcome; False keeps counters only.
    """

    __slots__ = (
        "_next_connection_id",
        "_refusals",
        "_request_waiters",
        "_reset_waiters",
        "_scripts",
        "_stream_scripts",
        "_stream_waiters",
        "connections_opened",
        "in_flight",
        "max_concurrent_requests",
        "max_open_connections",
        "open_connections",
        "processed",
        "processed_total",
        "received",
        "record",
        "requests",
        "resets",
        "stream_outcomes",
    )

    def __init__(self, *, record: bool = True) -> None:
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.resets: list[tuple[int, int]] = []
        self.stream_outcomes: list[StreamOutcome] = []
        self.received = 0
        self.processed: dict[str, int] = {}
        self.processed_total = 0
        self.connections_opened = 0
        self.open_connections = 0
        self.max_open_connections = 0
        self.in_flight = 0
        self.max_concurrent_requests = 0
        self._next_connection_id = 0
        self._scripts: collections.deque[Script] = collections.deque()
        self._stream_scripts: collections.deque[StreamScript] = collections.deque()
        self._refusals = 0
        self._request_waiters: list[tuple[int, anyio.Event]] = []
        self._reset_waiters: list[tuple[int, anyio.Event]] = []
        self._stream_waiters: list[tuple[int, anyio.Event]] = []

    def reset(self) -> None:
        """Forget requests, resets, outcomes and scripts; restart counters."""
        self.requests.clear()
        self.resets.clear()
        self.stream_outcomes.clear()
        self.processed.clear()
        self.processed_total = self.received = 0
        self._scripts.clear()
        self._stream_scripts.clear()
        self._refusals = 0
        self.connections_opened = 0
        self.max_open_connections = self.open_connections
        self.max_concurrent_requests = self.in_flight

    # -- connections and requests -------------------------------------------

    def connection_opened(self) -> int:
        """Count a newly accepted connection and return its id."""
        connection_id = self._next_connection_id
        self._next_connection_id += 1
        self.connections_opened += 1
        self.open_connections += 1
        self.max_open_connections = max(
            self.max_open_connections, self.open_connections
        )
        return connection_id

    def connection_closed(self) -> None:
        """Count a connection as closed."""
        self.open_connections -= 1

    @contextlib.contextmanager
    def handling(self, request: RecordedRequest) -> Iterator[None]:
        """Record `request` and count it as in flight until the block is left."""
        if self.record:
            self.requests.append(request)
        self.received += 1
        _release(self._request_waiters, self.received)
        self.in_flight += 1
        self.max_concurrent_requests = max(self.max_concurrent_requests, self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1

    def count_processed(self, request: RecordedRequest) -> None:
        """Count `request` as processed under its ``x-client-request-id``."""
        key = request.header("x-client-request-id") or ""
        self.processed[key] = self.processed.get(key, 0) + 1
        self.processed_total += 1

    def index_of(self, request: RecordedRequest) -> int:
        """Return the index of `request` in `requests` (-1 if forgotten by reset).

        Searched from the end by identity: the request being answered is almost
        always the last one, and equal requests must not be confused.
        """
        requests = self.requests
        for index in range(len(requests) - 1, -1, -1):
            if requests[index] is request:
                return index
        return -1

    def record_reset(self, connection_id: int, stream_id: int) -> None:
        """Record an RST_STREAM the client sent."""
        self.resets.append((connection_id, stream_id))
        _release(self._reset_waiters, len(self.resets))

    async def wait_for_requests(self, count: int) -> None:
        """Return once at least `count` requests have been received."""
        await _wait(self._request_waiters, count, self.received)

    async def wait_for_resets(self, count: int) -> None:
        """Return once at least `count` stream resets have been recorded."""
        await _wait(self._reset_waiters, count, len(self.resets))

    def record_stream_outcome(self, outcome: StreamOutcome) -> None:
        """Record how a streamed reply ended, kept in request order."""
        if not self.record:
            return
        bisect.insort(self.stream_outcomes, outcome, key=lambda o: o.request_index)
        _release(self._stream_waiters, len(self.stream_outcomes))

    async def wait_for_stream_outcomes(self, count: int) -> None:
        """Return once at least `count` streamed replies have ended.

        Raises:
            RuntimeError: Outcomes are not recorded (``record=False``).
        """
        if not self.record:
            raise RuntimeError(
                "wait_for_stream_outcomes() needs FakeProviderServer(record=True); "
                "this server keeps counters only"
            )
        await _wait(self._stream_waiters, count, len(self.stream_outcomes))

    # -- scripts ---------------------------------------------------------------

    def add_script(self, script: Script) -> None:
        """Queue `script` behind the ones already queued."""
        self._scripts.append(script)

    def take_script(self, path: str) -> Script | None:
        """Consume one use of the oldest script matching `path` (query ignored)."""
        route = path.partition("?")[0]
        for script in self._scripts:
            if script.path is None or script.path == route:
                script.remaining -= 1
                if script.remaining == 0:
                    self._scripts.remove(script)
                return script
        return None

    def add_refusals(self, times: int) -> None:
        """Refuse `times` more HTTP/2 streams (see `take_refusal`)."""
        self._refusals += times

    def take_refusal(self) -> bool:
        """Consume one scripted refusal; False if none is queued."""
        if not self._refusals:
            return False
        self._refusals -= 1
        return True

    def add_stream_script(self, script: StreamScript) -> None:
        """Queue a stream script behind the ones already queued."""
        self._stream_scripts.append(script)

    def take_stream_spec(self) -> StreamSpec | None:
        """Consume one use of the oldest stream script, if any."""
        if not self._stream_scripts:
            return None
        script = self._stream_scripts[0]
        script.remaining -= 1
        if script.remaining == 0:
            self._stream_scripts.popleft()
        return script.spec


def _release(waiters: list[tuple[int, anyio.Event]], count: int) -> None:
    if waiters:
        for wanted, event in waiters:
            if count >= wanted:
                event.set()
        waiters[:] = [(w, e) for w, e in waiters if not e.is_set()]


async def _wait(waiters: list[tuple[int, anyio.Event]], wanted: int, now: int) -> None:
    if now >= wanted:
        return
    event = anyio.Event()
    waiters.append((wanted, event))
    await event.wait()
