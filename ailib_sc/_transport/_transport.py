"""The transport: pools per origin, the TLS context, the proxy and the task group
that runs HTTP/2 reader tasks. It is an async context manager; leaving it closes
every connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import anyio.abc

from .._errors import ClientClosedError, ClientStateError
from .._tasks import ONE_TASK_FIX, enter_task_group, leave_task_group, task_running
from .._types import PoolStatistics
from ._connect import Origin, Proxy, bypass_proxy, make_ssl_context, network_backend
from ._pool import Mode, OriginPool

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

    import httpcore

    from .._config import Settings, Timeouts
    from ._response import Response

__all__ = ["Transport"]


class Transport:
    """Sends requests over pooled HTTP/1.1 and HTTP/2 connections."""

    def __init__(self, settings: Settings) -> None:
        opts = settings.options
        self._http2 = opts.http2
        self._pool_size = opts.pool_size
        self._idle_timeout = opts.idle_timeout
        self._close_timeout = opts.close_timeout
        self.timeouts: Timeouts = settings.timeouts
        self._proxy = Proxy.from_url(settings.proxy) if settings.proxy else None
        self._no_proxy = settings.no_proxy
        alpn = ["http/1.1"] if opts.http2 is False else ["h2", "http/1.1"]
        self._ssl_context: ssl.SSLContext | None = None
        if settings.base_url.startswith("https://") or opts.ssl_context is not None:
            self._ssl_context = make_ssl_context(
                verify=opts.verify,
                ca_file=opts.ca_file,
                context=opts.ssl_context,
                alpn=alpn,
            )
        self._ssl_args = (opts.verify, opts.ca_file, opts.ssl_context, alpn)
        self._pools: dict[Origin, OriginPool] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._owner: anyio.TaskInfo | None = None  # the task that entered _tg
        self._backend: httpcore.AsyncNetworkBackend | None = None
        self._closed = False

    async def __aenter__(self) -> Transport:
        self._backend = network_backend()
        self._tg = await enter_task_group()
        self._owner = anyio.get_current_task()
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
        tg, self._tg = self._tg, None
        await leave_task_group(tg)

    async def aclose(self) -> None:
        """Close every connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        for pool in list(self._pools.values()):
            await pool.aclose()

    def _pool_for(self, origin: Origin) -> OriginPool:
        pool = self._pools.get(origin)
        if pool is not None:
            return pool
        if self._closed or self._tg is None or self._backend is None:
            raise ClientClosedError("the client is closed; open a new AiClient")
        proxy = self._proxy
        if proxy is not None and bypass_proxy(origin, self._no_proxy):
            proxy = None
        if origin.scheme == "https":
            mode = Mode.H1 if self._http2 is False else Mode.UNKNOWN
            ctx = self._ssl_context
            if ctx is None:
                verify, ca_file, context, alpn = self._ssl_args
                ctx = self._ssl_context = make_ssl_context(
                    verify=verify, ca_file=ca_file, context=context, alpn=alpn
                )
        else:
            mode = Mode.H2 if self._http2 is True else Mode.H1
            ctx = None
        pool = OriginPool(
            origin,
            mode=mode,
            tg=self._tg,
            backend=self._backend,
            ssl_context=ctx,
            proxy=proxy,
            pool_size=self._pool_size,
            idle_timeout=self._idle_timeout,
            close_timeout=self._close_timeout,
            check_tg=self._check_owner,
        )
        self._pools[origin] = pool
        return pool

    def _check_owner(self) -> None:
        """Before tasks are started in the task group: raise if the task that
        entered it has ended (a task group whose task is gone cannot run them).

        Raises:
            ClientStateError: that task ended without leaving the client.
        """
        owner = self._owner
        if owner is not None and not task_running(owner):
            raise ClientStateError(
                f"this AiClient was entered in task {owner.name!r}, which ended "
                "without leaving it, so it cannot open HTTP/2 connections (their "
                "reader and writer tasks belong to that task's task group). "
                + ONE_TASK_FIX
            )

    async def request(
        self,
        origin: Origin,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Timeouts | None = None,
    ) -> Response:
        """Send a request to ``origin`` and return when response headers arrive.

        The caller must close the returned :class:`Response`.

        Raises:
            ClientClosedError: the transport is closed.
            TransportError subclasses: connect, timeout and protocol failures.
        """
        if self._closed:
            raise ClientClosedError("the client is closed; open a new AiClient")
        return await self._pool_for(origin).request(
            method, target, headers, body, timeouts or self.timeouts
        )

    def statistics(self) -> PoolStatistics:
        """Totals over all origins."""
        total = PoolStatistics()
        for pool in self._pools.values():
            s = pool.statistics()
            total = PoolStatistics(
                connections=total.connections + s.connections,
                http2_connections=total.http2_connections + s.http2_connections,
                idle=total.idle + s.idle,
                in_use=total.in_use + s.in_use,
                active_streams=total.active_streams + s.active_streams,
                opened=total.opened + s.opened,
                rerouted=total.rerouted + s.rerouted,
            )
        return total
