"""A TCP forwarder that can silently drop the connections it carries.

What a NAT or a load balancer does when it forgets an idle flow: the sockets on
both ends stay open, nothing says goodbye, and every byte sent from then on is
lost. :meth:`DroppingProxy.blackhole` does that to the connections open at the
time; connections accepted later are forwarded normally, as a fresh flow through
the same middlebox would be.

It runs on the caller's event loop (anyio, both backends) and makes no thread:
it listens on 127.0.0.1 and reaches the upstream by IP address, so it works
under virtual time (tests/_clock.py) too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

import anyio
from anyio.abc import SocketAttribute

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.abc import Listener, SocketStream, TaskGroup

__all__ = ["DroppingProxy"]


@dataclass(eq=False)
class _Flow:
    dropped: bool = False


class DroppingProxy:
    """Forward every TCP connection made to :attr:`port` (on 127.0.0.1) to
    ``upstream_host:upstream_port``, both ways, until :meth:`blackhole`.

    A connection ends when either side closes it (the other side is closed
    too), except that a blackholed connection is never closed towards the
    client: if the upstream hangs up, the client is not told.

    Use it as an async context manager; leaving the block closes every
    connection and the listener.

    Attributes:
        accepted: connections accepted since the start.
        closed: connections ended since the start (client and upstream side
            both closed).
        discarded: bytes the client sent on blackholed connections, read and
            thrown away.
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._flows: set[_Flow] = set()
        self._changed = anyio.Event()
        self._tg: TaskGroup | None = None
        self._port: int | None = None
        self.accepted = 0
        self.closed = 0
        self.discarded = 0

    @property
    def port(self) -> int:
        """The port the proxy listens on (127.0.0.1)."""
        if self._port is None:
            raise RuntimeError("DroppingProxy is not running: use `async with`")
        return self._port

    def url(self, path: str = "") -> str:
        """``http://127.0.0.1:<port>`` followed by ``path`` (e.g. ``"/v1"``)."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def open_connections(self) -> int:
        """Connections carried right now (blackholed ones included)."""
        return len(self._flows)

    def blackhole(self) -> None:
        """From now on, drop everything on the connections open now, in both
        directions: read and discard what the client sends, send it nothing,
        never close it. Connections accepted later are forwarded normally."""
        for flow in self._flows:
            flow.dropped = True

    async def wait_closed(self, count: int) -> None:
        """Wait until :attr:`closed` reaches ``count``."""
        while self.closed < count:
            await self._changed.wait()

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        self._port = listener.extra(SocketAttribute.local_port)
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(self._serve, listener, tg)
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._tg = self._tg, None
        assert tg is not None
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)

    async def _serve(self, listener: Listener[SocketStream], tg: TaskGroup) -> None:
        async with listener:
            await listener.serve(self._handle, tg)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _handle(self, client: SocketStream) -> None:
        self.accepted += 1
        flow = _Flow()
        self._flows.add(flow)
        self._notify()
        try:
            async with client:
                try:
                    upstream = await anyio.connect_tcp(*self._upstream)
                except OSError:
                    return
                async with upstream, anyio.create_task_group() as tg:
                    tg.start_soon(self._pump, client, upstream, flow, tg, True)
                    tg.start_soon(self._pump, upstream, client, flow, tg, False)
        finally:
            self._flows.discard(flow)
            self.closed += 1
            self._notify()

    async def _pump(
        self,
        src: SocketStream,
        dst: SocketStream,
        flow: _Flow,
        tg: TaskGroup,
        from_client: bool,
    ) -> None:
        try:
            async for data in src:
                if not flow.dropped:
                    await dst.send(data)
                elif from_client:
                    self.discarded += len(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        if flow.dropped and not from_client:
            # The upstream hung up on a blackholed connection: the client must
            # not learn it. The connection ends when the client closes it.
            await anyio.sleep_forever()
        tg.cancel_scope.cancel()
