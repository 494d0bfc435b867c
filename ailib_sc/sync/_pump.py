"""A blocking context manager and iterator over an async one run in the portal.

Theory of operation
-------------------
The async streams (``ChatCompletionStream``, ``BatchStream``) must be entered,
iterated and left by one task: their cancel scope and task group belong to it.
So a :class:`Pump` does not call their methods one by one through the portal
(each call would be a task of its own); it starts one *driver* task that enters
the async object, reads it, and hands each item to the consumer thread through
a :class:`Handoff`, a bounded queue:

- the driver reads ahead, up to ``WINDOW`` items, then parks until the
  consumer has taken half of them: the consumer's pace still reaches the
  network (flow control, bounded memory) while a fast consumer costs no
  round trip into the loop per item;
- the last item is an :class:`Ended` carrying the error that ended the source,
  or ``aborted`` when the driver was cancelled;
- one thread at a time consumes the pump; another thread can only interrupt
  its wait (``cancel()``).

Leaving early (``break``, an exception, ``close()``) cancels the scope around
the driver's reading (see :func:`leave`), so the driver leaves the async object
with no exception, exactly as ``break`` leaves an async block (HTTP/2 reset,
permit released, batch items cancelled), and the consumer waits for that
cleanup to end. Only a driver still opening is cancelled as a whole. A pump
dropped without being closed (a ``for`` loop over a bare stream, left by
``break``) makes its driver leave when it is garbage collected.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import anyio

from .._errors import ClientStateError
from ._runner import block_on

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine
    from types import TracebackType
    from typing import Self

    from ._runner import Call, Runner

__all__ = ["WINDOW", "Ended", "Handoff", "Pump", "Source"]

T = TypeVar("T")
R = TypeVar("R")
T_co = TypeVar("T_co", covariant=True)

#: Items a driver may read ahead of its consumer.
WINDOW = 64


class Source(Protocol[T_co]):
    """An async context manager that is its own async iterator."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    def __aiter__(self) -> AsyncIterator[T_co]: ...


class _Signal:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


ENTERED = _Signal("entered")
INTERRUPTED = _Signal("interrupted")


class Ended(_Signal):
    """The driver's last item: why the source ended."""

    __slots__ = ("aborted", "error", "snapshot")

    def __init__(self) -> None:
        super().__init__("ended")
        self.error: Exception | None = None
        self.aborted = False  # the driver was cancelled
        self.snapshot: object = None


class Handoff(Generic[T]):
    """Items from one driver task (loop thread) to one consumer thread, at most
    about ``window`` of them waiting."""

    __slots__ = (
        "_high",
        "_interrupted",
        "_items",
        "_lock",
        "_low",
        "_parked",
        "_runner",
        "_signal",
        "_sleeping",
        "ended",
        "opening",
        "reading",
    )

    def __init__(self, runner: Runner, window: int = WINDOW) -> None:
        self._runner = runner
        self._lock = threading.Lock()
        # The consumer sleeps on a bare lock rather than a Condition: a
        # Condition's wait interrupted by Ctrl-C can leave its lock in a wrong
        # state; an interrupted acquire just fails. Locked = no wake-up pending.
        self._signal = threading.Lock()
        self._signal.acquire()
        self._sleeping = False
        self._items: deque[T | _Signal] = deque()
        self._high = max(2, window)
        self._low = self._high // 2
        self._parked: anyio.Event | None = None
        self._interrupted = False
        self.ended: Ended | None = None
        # Loop thread only: the driver's phase, for leave().
        self.opening = True
        self.reading: anyio.CancelScope | None = None

    # ------------------------------------------------------------ loop side

    def offer(self, item: T) -> anyio.Event | None:
        """Queue ``item``; past the window, return an event to wait on until
        the consumer has caught up (None otherwise: no coroutine per item)."""
        with self._lock:
            items = self._items
            items.append(item)
            self._wake()
            if len(items) < self._high:
                return None
            parked = self._parked = anyio.Event()
            return parked

    def post(self, signal: _Signal) -> None:
        """Queue a signal (never waits)."""
        if signal is ENTERED:
            self.opening = False
        with self._lock:
            if isinstance(signal, Ended):
                self.ended = signal
            self._items.append(signal)
            self._wake()

    def _wake(self) -> None:
        # Under self._lock: wake the consumer if it sleeps (once).
        if self._sleeping:
            self._sleeping = False
            self._signal.release()

    # ------------------------------------------------------------ consumer side

    def get(self, *, interruptible: bool) -> T | _Signal:
        """The next item, waiting for it; :data:`INTERRUPTED` once
        :meth:`interrupt` was called and nothing is queued (if
        ``interruptible``)."""
        items = self._items
        while True:
            with self._lock:
                if items:
                    item = items.popleft()
                    parked = self._parked
                    if parked is None or len(items) > self._low:
                        return item
                    self._parked = None
                    break
                if interruptible and self._interrupted:
                    return INTERRUPTED
                self._sleeping = True
            block_on(self._signal)  # until _wake(); a stale wake-up just loops
        self._runner.soon(parked.set)
        return item

    def interrupt(self) -> None:
        """Wake the consumer's wait (any thread)."""
        with self._lock:
            self._interrupted = True
            self._wake()


def leave(handoff: Handoff[Any], driver: Call[None]) -> None:
    """Make the driver leave its source early (loop thread): while it reads,
    stop the reading and leave the source normally, as ``break`` leaves an
    ``async with`` block; while it opens, cancel it. Once the reading is over
    the driver is leaving by itself."""
    reading = handoff.reading
    if reading is not None:
        reading.cancel()
    elif handoff.opening:
        driver.cancel_here()


async def drive(
    source: Source[T],
    handoff: Handoff[T],
    snapshot: Callable[[], object] | None,
) -> None:
    """The driver task: enter ``source``, hand over every item, leave it; post
    :class:`Ended` last, whatever happens. ``snapshot()`` (loop thread) is kept
    in ``Ended.snapshot``."""
    ended = Ended()
    try:
        try:
            async with source:
                handoff.post(ENTERED)
                with anyio.CancelScope() as reading:
                    handoff.reading = reading
                    async for item in source:
                        parked = handoff.offer(item)
                        if parked is not None:
                            await parked.wait()
                handoff.reading = None
        except Exception as exc:  # the consumer's to raise
            ended.error = exc
    except BaseException:  # cancelled: the consumer left, or the client closes
        ended.aborted = True
        raise
    finally:
        if snapshot is not None:
            ended.snapshot = snapshot()
        handoff.post(ended)


class Pump(Generic[T]):
    """A blocking context manager and iterator over an async :class:`Source`
    run in the portal (see the module docstring).

    One thread at a time consumes it (enters, iterates, leaves); other
    threads may only interrupt it.
    """

    _what = "stream"

    def __init__(
        self,
        opener: Callable[[], Runner],
        source: Source[T],
        snapshot: Callable[[], object] | None = None,
    ) -> None:
        self._opener = opener
        self._source = source
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._runner: Runner | None = None
        self._handoff: Handoff[T] | None = None
        self._driver: Call[None] | None = None
        self._closed = False
        self._stopping = False  # interrupted: iteration ends at the next item

    # ------------------------------------------------------------ lifecycle

    def _start(self) -> Handoff[T]:
        if self._driver is not None or self._closed:
            raise ClientStateError(
                f"this {self._what} was opened before; a {self._what} can be "
                "entered or iterated once: make a new one with the client's verb",
            )
        runner = self._opener()
        handoff: Handoff[T] = Handoff(runner)
        with self._lock:
            self._driver = runner.submit(drive, self._source, handoff, self._snapshot)
            self._runner = runner
            self._handoff = handoff
        try:
            first = handoff.get(interruptible=False)
        except BaseException:  # Ctrl-C while the request goes out
            self._closed = True
            self._stop_driver(abort=True)
            raise
        if first is ENTERED:
            return handoff
        self._closed = True
        self._stop_driver(abort=False)
        assert isinstance(first, Ended)
        if first.error is not None:
            raise first.error
        raise runner.closed_error(f"while this {self._what} was opening")

    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the exchange now, as leaving the ``with`` block does; wait for
        its cleanup. Idempotent. Leaving the block calls it for you.

        Raises:
            ClientStateError: called from inside the client's event loop thread.
        """
        self._closed = True
        runner = self._runner
        if runner is not None:
            runner.check_thread()
            self._stop_driver(abort=True)

    def _stop_driver(self, *, abort: bool) -> None:
        driver, runner = self._driver, self._runner
        if driver is None or runner is None or driver.done:
            return
        if abort:
            handoff = self._handoff
            assert handoff is not None
            runner.soon(lambda: leave(handoff, driver))
        driver.wait(runner)

    def _interrupt(self) -> None:
        """End the iteration at the consumer's next item (any thread)."""
        self._stopping = True
        handoff = self._handoff
        if handoff is not None:
            handoff.interrupt()

    def _settled(self) -> bool:
        """Whether the consumer is done and the driver has ended."""
        driver = self._driver
        return self._closed and (driver is None or driver.done)

    def __del__(self) -> None:
        # Dropped while its driver runs (a bare ``for`` left by ``break``):
        # cancel the driver, without waiting (this may run in any thread).
        driver, runner, handoff = self._driver, self._runner, self._handoff
        if driver is not None and runner is not None and handoff is not None:
            try:
                if not driver.done:
                    runner.soon(lambda: leave(handoff, driver))
            except Exception:  # interpreter shutdown: nothing left to cancel
                pass

    # ------------------------------------------------------------ iteration

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        handoff = self._handoff
        if handoff is None:
            if self._closed:
                raise StopIteration
            handoff = self._start()
        if self._closed or self._stopping:
            self._closed = True
            self._stop_driver(abort=False)
            raise StopIteration
        try:
            item = handoff.get(interruptible=True)
        except BaseException:  # Ctrl-C while waiting for the next item
            self._closed = True
            self._stop_driver(abort=True)
            raise
        if not isinstance(item, _Signal):
            return item
        self._closed = True
        self._stop_driver(abort=False)
        if isinstance(item, Ended):
            if item.error is not None:
                raise item.error
            if item.aborted and not self._stopping:
                assert self._runner is not None
                raise self._runner.closed_error(f"while this {self._what} was open")
        raise StopIteration

    def _peek(self, read: Callable[[], R]) -> R:
        """``read()`` in the loop thread while the driver runs (a consistent
        snapshot), directly otherwise."""
        driver, runner = self._driver, self._runner
        if driver is None or runner is None or driver.done:
            return read()
        try:
            return runner.run_sync(read)
        except ClientStateError:  # the loop is gone, and with it the driver
            return read()


def run_settled(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that completes without suspending (one called on an
    async stream that has ended: no I/O is left) and return its value."""
    try:
        coro.send(None)
    except StopIteration as stop:
        value: T = stop.value
        return value
    coro.close()
    raise RuntimeError("the coroutine suspended; the stream had not ended")
