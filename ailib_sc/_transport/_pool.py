"""The connection pool we own, one :class:`_OriginPool` per origin.

Theory of operation
-------------------
An origin starts in mode UNKNOWN (https with HTTP/2 allowed), H2 (h2c prior
knowledge) or H1. The first connection to an UNKNOWN origin decides by ALPN;
requests arriving meanwhile wait for that decision instead of each opening a
connection of their own.

H2: requests go to the first connection with a free stream slot, reserved in
the same synchronous step that checks it (:meth:`H2Connection.try_reserve`); a
new connection opens only when every one is full (at most ``pool_size`` of
them). Connections report state changes (stream done, GOAWAY, SETTINGS, death)
through a callback that wakes waiters. The scan is over connections (a handful),
never over requests. A connection with no active stream is checked before
reuse: past ``idle_timeout`` it is closed (its writer closes it too, on its
own), past ``PING_AFTER`` it is PINGed and replaced if the ACK is late.

H1: a semaphore of ``pool_size`` permits bounds connections in use; idle ones sit
in a LIFO stack (hot connections first, cold ones age out at the bottom: every
checkout closes the ones there older than ``idle_timeout``). A new connection
opens only when the stack is empty, so open connections never exceed
``pool_size``. A connection idle longer than 50 ms is polled for readability
before reuse (a readable idle socket means the server hung up); busier ones are
not polled, so the hot path makes no extra syscall.

Requests that provably never reached the server (:class:`NotProcessed`) are sent
again on another connection, invisibly; only refusals by connections that
served nothing count towards ``_MAX_FRUITLESS_REROUTES``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from .._errors import (
    PoolTimeoutError,
    RequestRefusedError,
    TransportError,
)
from .._types import PoolStatistics
from ._connect import Origin, Proxy, open_stream
from ._errors import NotProcessed, closing_error
from ._h1 import H1Connection
from ._h2 import PING_AFTER, ConnState, H2Connection
from ._response import H1Response, H2Response, Response

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpcore

    from .._config import Timeouts

__all__ = ["Mode", "OriginPool"]

_MAX_FRUITLESS_REROUTES = 8
_POLL_AFTER = 0.05


class Mode(enum.Enum):
    UNKNOWN = "unknown"
    H1 = "h1"
    H2 = "h2"


class OriginPool:
    """Connections to one origin."""

    def __init__(
        self,
        origin: Origin,
        *,
        mode: Mode,
        tg: anyio.abc.TaskGroup,
        backend: httpcore.AsyncNetworkBackend,
        ssl_context: object,
        proxy: Proxy | None,
        pool_size: int,
        idle_timeout: float,
        close_timeout: float,
        check_tg: Callable[[], None],
    ) -> None:
        self.origin = origin
        self.mode = mode if proxy is None or origin.scheme == "https" else Mode.H1
        self._tg = tg
        self._check_tg = check_tg
        self._backend = backend
        self._ssl_context = ssl_context
        self._proxy = proxy
        self._pool_size = pool_size
        self._idle_timeout = idle_timeout
        self.close_timeout = close_timeout
        self._authority = origin.authority
        self._scheme = origin.scheme.encode()
        self.h2: list[H2Connection] = []
        self.idle: list[tuple[H1Connection, float]] = []
        self.busy: set[H1Connection] = set()
        self.sem = anyio.Semaphore(pool_size)
        self.opened = 0
        self.rerouted = 0
        self._connecting: anyio.Event | None = None
        self._changed = anyio.Event()
        self.closed = False

    # ------------------------------------------------------------ entry point

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Timeouts,
    ) -> Response:
        """Send one request and return once its response headers arrived.

        Raises:
            ClientClosedError: the pool is closing.
            TransportError subclasses (connect, timeouts, protocol), mapped.
        """
        # A refusal counts against the limit only when the refusing connection
        # made no progress (completed no stream and its GOAWAY promised none): a
        # server recycling connections every few streams is serving, one
        # refusing everything is not.
        fruitless = 0
        h2_headers: list[tuple[bytes, bytes]] | None = None
        while fruitless < _MAX_FRUITLESS_REROUTES:
            if self.mode is Mode.H1:
                try:
                    return await self._h1_request(
                        method, target, headers, body, timeouts
                    )
                except NotProcessed:
                    self.rerouted += 1
                    fruitless += 1
                    continue
            conn = await self._h2_checkout(timeouts)
            if conn is None:
                continue  # the origin turned out to speak HTTP/1.1 only
            if h2_headers is None:
                h2_headers = [
                    (b":method", method),
                    (b":authority", self._authority),
                    (b":scheme", self._scheme),
                    (b":path", target),
                    *headers,
                ]
                if body:
                    h2_headers.append((b"content-length", str(len(body)).encode()))
            try:
                st, status, resp_headers = await conn.send_request(
                    h2_headers,
                    body,
                    write_timeout=timeouts.write,
                    read_timeout=timeouts.read,
                )
            except NotProcessed:
                self.rerouted += 1
                if not conn.served_any():
                    fruitless += 1
                continue
            return H2Response(
                status, resp_headers, st, timeouts.read, self.close_timeout
            )
        raise RequestRefusedError(
            f"{fruitless} connections in a row refused the request before processing "
            "it (GOAWAY / REFUSED_STREAM) without serving anything; the server is "
            "shedding load. It was never processed: retrying is safe."
        )

    # ------------------------------------------------------------ HTTP/2

    def _h2_changed(self, conn: H2Connection) -> None:
        if conn.state is ConnState.CLOSED and conn in self.h2:
            self.h2.remove(conn)
        self._changed.set()
        self._changed = anyio.Event()

    async def _h2_checkout(self, timeouts: Timeouts) -> H2Connection | None:
        """A connection with a stream slot reserved for the caller (None: the
        origin speaks HTTP/1.1 only)."""
        # The deadline starts on the first pass; the clock is read only when a
        # connection is full, idle or stale (under load the hot path takes a slot
        # on a busy connection and returns).
        deadline: float | None = None
        while True:
            if self.closed:
                raise closing_error()
            found = None
            for conn in self.h2:
                if conn.try_reserve():
                    found = conn
                    break
            if found is not None:
                if (found.active > 1 and not found.pinging) or await self._still_alive(
                    found, timeouts
                ):
                    return found
                continue  # it was dead: look again
            now = anyio.current_time()
            if deadline is None and timeouts.pool is not None:
                deadline = now + timeouts.pool
            stale = [
                c
                for c in self.h2
                if c.active == 0
                and (
                    c.state is not ConnState.OPEN
                    or now - c.idle_since > self._idle_timeout
                )
            ]
            for conn in stale:
                await conn.aclose()
            if stale:
                continue
            if self.mode is Mode.H1:
                return None
            if self._connecting is None and len(self.h2) < self._pool_size:
                opened = await self._open_first_or_next(timeouts)
                if opened is None:
                    return None
                continue
            waiter = self._connecting or self._changed
            remaining = None if deadline is None else deadline - anyio.current_time()
            if remaining is not None and remaining <= 0:
                raise PoolTimeoutError(
                    f"no HTTP/2 stream slot free within {timeouts.pool:g} s (pool_timeout)"
                )
            with anyio.move_on_after(remaining):
                await waiter.wait()

    async def _still_alive(self, conn: H2Connection, timeouts: Timeouts) -> bool:
        """For an idle connection the caller just reserved a slot on: close it if
        it outlived ``idle_timeout``, PING it if idle longer than ``PING_AFTER``.
        On False the slot is given back and the connection is closed."""
        idle_for = anyio.current_time() - conn.idle_since
        if idle_for <= PING_AFTER:
            return True
        if idle_for <= self._idle_timeout and await conn.check_alive(timeouts.connect):
            return True
        conn.unreserve()
        await conn.aclose()
        return False

    async def _open_first_or_next(self, timeouts: Timeouts) -> H2Connection | None:
        event = self._connecting = anyio.Event()
        try:
            self._check_tg()  # before connecting: the connection would need tasks
            stream, alpn = await open_stream(
                self._backend,
                self.origin,
                ssl_context=self._ssl_context,  # type: ignore[arg-type]
                proxy=self._proxy,
                timeout=timeouts.connect,
            )
            self.opened += 1
            if self.origin.scheme == "https" and alpn != "h2":
                self.mode = Mode.H1
                conn1 = H1Connection(stream)
                self.idle.append((conn1, anyio.current_time()))
                return None
            conn = H2Connection(
                stream,
                on_change=self._h2_changed,
                write_timeout=timeouts.write,
                idle_timeout=self._idle_timeout,
                close_timeout=self.close_timeout,
            )
            try:
                await conn.start(self._tg, timeouts.connect)
            except BaseException:
                await conn.aclose()
                raise
            self.mode = Mode.H2
            self.h2.append(conn)
            return conn
        finally:
            self._connecting = None
            event.set()

    # ------------------------------------------------------------ HTTP/1.1

    async def _h1_request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Timeouts,
    ) -> Response:
        try:
            self.sem.acquire_nowait()
        except anyio.WouldBlock:
            with anyio.move_on_after(timeouts.pool) as scope:
                await self.sem.acquire()
            if scope.cancelled_caught:
                raise PoolTimeoutError(
                    f"no connection free within {timeouts.pool:g} s (pool_timeout); "
                    "raise pool_size or lower the concurrency"
                ) from None
        conn: H1Connection | None = None
        try:
            if self.closed:
                raise closing_error()
            conn = await self._pop_idle()
            if conn is None:
                stream, _ = await open_stream(
                    self._backend,
                    self.origin,
                    ssl_context=self._ssl_context,  # type: ignore[arg-type]
                    proxy=self._proxy,
                    timeout=timeouts.connect,
                )
                self.opened += 1
                conn = H1Connection(stream)
            self.busy.add(conn)
            if self._proxy is not None and self.origin.scheme == "http":
                target = b"http://" + self._authority + target  # forward proxy
            all_headers = [(b"host", self._authority), *headers]
            if (
                self._proxy is not None
                and self._proxy.auth is not None
                and (self.origin.scheme == "http")
            ):
                all_headers.append((b"proxy-authorization", self._proxy.auth))
            if body or method == b"POST":
                all_headers.append((b"content-length", str(len(body)).encode()))
            status, resp_headers = await conn.send_request(
                method,
                target,
                all_headers,
                body,
                write_timeout=timeouts.write,
                read_timeout=timeouts.read,
            )
        except BaseException as exc:
            if conn is not None:
                self.busy.discard(conn)
                with anyio.CancelScope(shield=True):
                    await conn.aclose()
            self.sem.release()
            if self.closed and isinstance(exc, TransportError):
                raise closing_error() from exc
            raise
        return H1Response(
            status, resp_headers, conn, self, timeouts.read, self.close_timeout
        )

    async def _pop_idle(self) -> H1Connection | None:
        idle = self.idle
        if not idle:
            return None
        now = anyio.current_time()
        # The stack is in the order connections came back: the cold ones are at
        # the bottom. Reap those past idle_timeout, whatever is on top.
        expired = 0
        while expired < len(idle) and now - idle[expired][1] > self._idle_timeout:
            expired += 1
        if expired:
            cold = [c for c, _ in idle[:expired]]
            del idle[:expired]
            with anyio.CancelScope(shield=True):
                for c in cold:
                    await c.aclose()
        while self.idle:
            conn, since = self.idle.pop()
            idle_for = now - since
            # (none left here is older than idle_timeout: reaped above)
            if conn.closed or (idle_for > _POLL_AFTER and conn.server_hung_up()):
                with anyio.CancelScope(shield=True):
                    await conn.aclose()
                continue
            return conn
        return None

    def h1_done(self, conn: H1Connection) -> None:
        """A response on ``conn`` was closed: keep the connection (if its exchange
        completed cleanly) or drop it (the caller closed it)."""
        self.busy.discard(conn)
        if not conn.broken and not conn.closed and not self.closed:
            self.idle.append((conn, anyio.current_time()))
        self.sem.release()

    # ------------------------------------------------------------ shutdown & stats

    async def aclose(self) -> None:
        """Close every connection of this origin."""
        self.closed = True
        with anyio.CancelScope(shield=True):
            for conn in list(self.h2):
                await conn.aclose()
            self.h2.clear()
            for c, _ in self.idle:
                await c.aclose()
            self.idle.clear()
            for c in list(self.busy):
                await c.aclose()
        self._changed.set()

    def statistics(self) -> PoolStatistics:
        h2_open = [c for c in self.h2 if c.state is not ConnState.CLOSED]
        return PoolStatistics(
            connections=len(h2_open) + len(self.idle) + len(self.busy),
            http2_connections=len(h2_open),
            idle=len(self.idle),
            in_use=len(self.busy),
            active_streams=sum(c.active for c in h2_open),
            opened=self.opened,
            rerouted=self.rerouted,
        )
