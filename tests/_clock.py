"""Virtual time on both anyio backends, for tests of deadlines, backoff and pacing.

Everything in ``ailib_sc`` that decides a deadline, a backoff or a pace reads
``anyio.current_time()`` (STYLE.md rule 23), so a test can run it on a clock that
jumps instead of waiting: a 60 s ``Retry-After`` then takes milliseconds.

- trio: ``trio.testing.MockClock(autojump_threshold=0)``.
- asyncio: :class:`VirtualTimeEventLoop` below, passed to anyio's asyncio backend
  as its ``loop_factory``.

Both clocks start at 0 and jump in the same situation: every task is blocked,
no socket is ready (polled with a zero timeout), and a timer is pending; the
clock then moves to that timer's deadline. With no timer pending they block
for real (waiting for a socket or a thread), as an ordinary loop would.

Real loopback I/O keeps working: on Linux, bytes written to a loopback TCP
socket are readable by the peer when ``send()`` returns (a connect completes
within ``connect()``), and the zero-timeout poll runs before every jump, so an
in-process :class:`~ailib_sc.testing.FakeProviderServer` and the client trade
bytes without virtual time passing. Measured: 36,000 requests over HTTP/1.1 and
h2c, 1 to 32 concurrent, on both backends (a third of them with two busy-loop
processes competing for the two CPUs), and not one saw the clock move.

Threads are the limit. A task waiting on a thread looks idle, so trio's clock
jumps past that task's timeouts: a TLS ``FakeProviderServer`` is reached by the
name ``localhost``, whose lookup runs in a thread, and the connect may time
out (it did in about half of our trio runs).
Use cleartext servers (their ``base_url`` is an IP literal, looked up without a
thread) under virtual time. The asyncio loop here waits for real while work it
handed to ``run_in_executor`` (``getaddrinfo``) is running, so it does not
jump then; it cannot see ``anyio.to_thread`` workers.

Usage, per test (both backends, ids ``asyncio-virtual`` and ``trio-virtual``)::

    @virtual_time()
    async def test_x(anyio_backend: object) -> None: ...

or for a whole module, with a fresh clock per test::

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(request: pytest.FixtureRequest) -> VirtualBackend:
        return virtual_backend(request.param)

Fixtures that take ``anyio_backend`` (``h1_server``, ``h2_server``, ``served``)
then run on the virtual clock too.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

import pytest
import sniffio
import trio.lowlevel
import trio.testing

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable, Mapping

__all__ = [
    "VirtualBackend",
    "VirtualTimeEventLoop",
    "approx_time",
    "jump",
    "virtual_backend",
    "virtual_time",
]

VirtualBackend = tuple[str, dict[str, Any]]
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class _JumpingSelector(selectors.BaseSelector):
    """A selector that, instead of sleeping, moves its loop's clock forward.

    ``select(timeout)`` first polls with a zero timeout. If a socket is ready its
    events are returned and no virtual time passes. Otherwise, with a finite
    timeout (the loop's next timer), the virtual clock advances by it and the
    call returns at once with no events, so the loop runs that timer next. A
    ``None`` timeout (no timer pending), or a thread still working for the
    loop, waits for real instead.
    """

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualTimeEventLoop):
        self._inner = inner
        self._loop = loop

    def select(
        self, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._inner.select(0)
        if events or timeout == 0:
            return events
        if timeout is None or self._loop.threads_busy:
            return self._inner.select(timeout)  # a thread will wake us
        self._loop.advance(timeout)
        return []

    def register(
        self, fileobj: Any, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(
        self, fileobj: Any, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose ``time()`` is virtual and which jumps when idle.

    ``time()`` starts at 0.0 and moves only when the loop would otherwise sleep
    until a timer: it then jumps to that timer (see :class:`_JumpingSelector`).
    ``asyncio.sleep``, ``call_later``, ``anyio.sleep``, ``anyio.fail_after`` and
    ``anyio.current_time()`` all follow it. The trio equivalent is
    ``MockClock(autojump_threshold=0)``. While a ``run_in_executor`` call is
    running (e.g. ``getaddrinfo``) the loop does not jump: threads take no
    virtual time.
    """

    def __init__(self) -> None:
        self._virtual_now = 0.0
        self._threads_busy = 0
        super().__init__(_JumpingSelector(selectors.DefaultSelector(), self))

    def time(self) -> float:
        return self._virtual_now

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[*Ts], T],
        *args: *Ts,
    ) -> asyncio.Future[T]:
        # A task waiting on a thread looks idle: count the threads at work so
        # the selector waits for them (for real) instead of jumping.
        future = super().run_in_executor(executor, func, *args)
        self._threads_busy += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _: object) -> None:
        self._threads_busy -= 1

    @property
    def threads_busy(self) -> int:
        """``run_in_executor`` calls not finished yet."""
        return self._threads_busy

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError(f"time can't go backwards (advance({seconds}))")
        self._virtual_now += seconds


def virtual_backend(name: str) -> VirtualBackend:
    """The ``anyio_backend`` value running backend ``name`` on a fresh virtual
    clock: ``"asyncio"`` or ``"trio"``."""
    if name == "trio":
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    if name == "asyncio":
        return ("asyncio", {"loop_factory": VirtualTimeEventLoop})
    raise ValueError(f"backend {name!r}: use 'asyncio' or 'trio'")


def virtual_time() -> pytest.MarkDecorator:
    """Parametrise a test's ``anyio_backend`` over both backends on virtual time.

    Call it once per test (``@virtual_time()``): each call makes its own clocks.
    A clock carries on from where it stopped if the same test item is run again,
    so measure virtual time from ``anyio.current_time()`` at the start of the
    test, never from 0.
    """
    return pytest.mark.parametrize(
        "anyio_backend",
        [
            pytest.param(virtual_backend(name), id=f"{name}-virtual")
            for name in ("asyncio", "trio")
        ],
    )


def approx_time(seconds: float) -> object:
    """Compare equal to ``seconds`` of virtual time, to within the float rounding
    of the clock's jumps (1 ns): ``assert elapsed == approx_time(40.0)``."""
    return pytest.approx(seconds, abs=1e-9)


def jump(seconds: float) -> None:
    """Move the running virtual clock ``seconds`` forward at once, as if the
    process had been suspended: every deadline passed meanwhile is then late.

    Raises:
        RuntimeError: the test is not running on virtual time.
    """
    if sniffio.current_async_library() == "trio":
        clock = trio.lowlevel.current_clock()
        if isinstance(clock, trio.testing.MockClock):
            clock.jump(seconds)
            return
    else:
        loop = asyncio.get_running_loop()
        if isinstance(loop, VirtualTimeEventLoop):
            loop.advance(seconds)
            return
    raise RuntimeError("jump() needs virtual time: decorate the test @virtual_time()")
