"""The event-loop thread of a blocking client, and the one path every call takes
into it.

Theory of operation
-------------------
A blocking client owns one event loop: ``anyio.run`` (asyncio or trio) in a
daemon thread of its own, which is what ``anyio.from_thread.start_blocking_portal``
does too. We do not use the portal's own API to reach it: ``portal.call`` and
``portal.start_task`` go through ``trio.from_thread.run_sync``, which refuses to
run in any thread that is itself running trio ("this is a blocking function;
call it from a thread"), so a trio portal could not even be started or stopped
from code inside ``trio.run``; and each ``portal.call`` costs two thread hops.
In that loop one *host* task enters the async resource (the async
``AiClient``), opens a task group for the calls, and sleeps until the client
closes; leaving the resource is that same task's job, since the async client
must be left by the task that entered it.

A blocking call is a :class:`Call`. The calling thread hands the loop one
callback through the loop's token (``run_sync_soon``: one hop, where
``portal.call`` takes two, one to spawn the task and one to wait for it); the
callback starts a task in the host's group, which runs the coroutine inside a
cancel scope of its own and stores the outcome. The calling thread waits on the
call's ``threading.Event``, which is set only when the task has *ended*: a
cancelled call has finished its cleanup (permit given back, HTTP/2 stream
reset) by the time its caller sees the outcome.

An exception raised in the calling thread while it waits (``KeyboardInterrupt``
from Ctrl-C) cancels the call's scope, waits for the task to end, and
propagates. Closing cancels the host's group: calls in flight end as
*aborted*, and their callers get :class:`ClientClosedError`, never the loop's
own ``Cancelled``. A callback queued just as the loop stopped never runs; the
loop thread aborts those calls once its loop is gone, so no caller waits for
ever.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from .._errors import ClientClosedError, ClientStateError, ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextlib import AbstractAsyncContextManager

    from anyio.abc import TaskGroup

__all__ = ["BACKENDS", "Call", "Runner", "block_on"]

T = TypeVar("T")

#: Event loops a blocking client can run on.
BACKENDS = ("asyncio", "trio")

_PENDING, _OK, _FAILED, _ABORTED = range(4)

#: Seconds between two checks for a Ctrl-C while the main thread waits.
POLL = 0.1
_MAIN_THREAD = threading.main_thread().ident


def block_on(lock: threading.Lock) -> None:
    """Acquire ``lock``, however long it takes.

    A signal normally interrupts a lock wait, but one that lands just as the
    wait begins is only handled once the wait ends, so Ctrl-C could go unseen
    for ever. The main thread (the only one signals reach) therefore waits in
    slices of ``POLL`` seconds; other threads simply block.
    """
    if threading.get_ident() != _MAIN_THREAD:
        lock.acquire()
        return
    while not lock.acquire(timeout=POLL):
        pass


class Call(Generic[T]):
    """One coroutine run in the portal for a waiting thread.

    Loop side: :meth:`run` is the task body. Caller side: :meth:`result` waits.
    """

    __slots__ = (
        "_cancelled",
        "_done",
        "_error",
        "_finished",
        "_outcome",
        "_scope",
        "_value",
    )

    def __init__(self) -> None:
        # Held until the task ends. A bare lock, not a threading.Event: an
        # Event (a Condition) interrupted by Ctrl-C mid-wait can be left with
        # its lock in a wrong state; an interrupted acquire just fails.
        self._done = threading.Lock()
        self._done.acquire()
        self._finished = False
        self._outcome = _PENDING
        self._value: T | None = None
        self._error: BaseException | None = None
        self._scope: anyio.CancelScope | None = None
        self._cancelled = False

    # ------------------------------------------------------------ loop side

    async def run(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        """Await ``fn(*args, **kwargs)`` and keep its outcome; release the
        waiter when the task ends."""
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._cancelled:
                    scope.cancel()
                value = await fn(*args, **kwargs)
                self._value = value
                self._outcome = _OK
        except Exception as exc:  # the caller's to raise, not the task group's
            self._error = exc
            self._outcome = _FAILED
        except BaseException:  # the host's group was cancelled: the client closes
            self._outcome = _ABORTED
            raise
        finally:
            if self._outcome is _PENDING:  # our own scope caught a cancel()
                self._outcome = _ABORTED
            self._scope = None
            self._finish()

    def run_sync(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Call ``fn(*args, **kwargs)`` now (in the loop thread) and keep its
        outcome."""
        try:
            self._value = fn(*args, **kwargs)
            self._outcome = _OK
        except Exception as exc:
            self._error = exc
            self._outcome = _FAILED
        finally:
            self._finish()

    def cancel_here(self) -> None:
        """Cancel the task (loop thread only); before it started, it starts
        cancelled."""
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()

    def abort(self) -> None:
        """End a call whose task never ran (the loop is gone)."""
        if not self._finished:
            self._outcome = _ABORTED
            self._finish()

    def _finish(self) -> None:
        self._finished = True
        self._done.release()

    # ------------------------------------------------------------ caller side

    @property
    def done(self) -> bool:
        """Whether the task has ended."""
        return self._finished

    def wait(self, runner: Runner) -> None:
        """Block until the task ended. If the wait is interrupted (Ctrl-C), cancel
        the task, wait for its end, and let the interruption propagate."""
        if self._finished:
            return
        done = self._done
        try:
            block_on(done)
            done.release()
        except BaseException:
            # Interrupted: either the acquire failed (we do not hold the lock)
            # or the task had ended (then it is finished; nothing to do).
            if not self._finished and runner.soon(self.cancel_here):
                # Bounded by the call's shielded cleanup (close_timeout); a
                # second Ctrl-C abandons the wait.
                block_on(done)
                done.release()
            raise

    def result(self, runner: Runner) -> T:
        """Wait (see :meth:`wait`), then return the value or raise the error the
        coroutine raised, unchanged.

        Raises:
            ClientClosedError: the client was closed while the call was running.
        """
        self.wait(runner)
        outcome = self._outcome
        if outcome is _OK:
            return self._value  # type: ignore[return-value]
        if outcome is _FAILED:
            error = self._error
            assert error is not None
            self._error = None  # no cycle through the traceback
            raise error
        raise runner.closed_error("while this call was running")


class Runner:
    """An event loop in a thread of its own, a host task in it holding an async
    resource, and the calls made into it from other threads.

    Args:
        backend: ``"asyncio"`` or ``"trio"``.
        backend_options: passed to ``anyio.run``.
        provider: provider id, for error messages.

    Raises:
        ConfigurationError: an unknown ``backend``.
    """

    def __init__(
        self, backend: str, backend_options: dict[str, Any] | None, provider: str
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigurationError(
                f"backend must be one of {', '.join(map(repr, BACKENDS))}, "
                f"got {backend!r}",
                provider=provider,
            )
        self.backend = backend
        self._backend_options = backend_options
        self.provider = provider
        self._thread: threading.Thread | None = None
        self._host_error: BaseException | None = None
        self._abandoned = False
        self._tg: TaskGroup | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self.loop_thread: int | None = None
        self._pending: set[Call[Any]] = set()

    # ------------------------------------------------------------ lifecycle

    def start(self, resource: AbstractAsyncContextManager[object]) -> None:
        """Start the loop thread and enter ``resource`` in its host task; return
        once it is entered.

        Raises:
            Whatever entering ``resource`` raises (the thread has ended then).
        """
        if not hasattr(anyio.lowlevel, "current_token"):  # pragma: no cover
            raise ConfigurationError(
                "ailib_sc.sync needs anyio >= 4.11; run `pip install -U anyio`",
                provider=self.provider,
            )
        ready: Future[None] = Future()
        thread = threading.Thread(
            target=self._main,
            args=(resource, ready),
            name=f"ailib_sc.sync-{self.backend}",
            daemon=True,  # a client never closed must not hang the interpreter's exit
        )
        self._thread = thread
        thread.start()
        try:
            ready.result()
        except BaseException:
            # Failed, or Ctrl-C while opening: make sure the host does not stay.
            self._abandoned = True
            if ready.done() and ready.exception() is None:
                with contextlib.suppress(Exception):  # the first error wins
                    self.stop()
            else:
                thread.join()
            raise

    def _main(
        self, resource: AbstractAsyncContextManager[object], ready: Future[None]
    ) -> None:
        try:
            anyio.run(
                self._run_host,
                resource,
                ready,
                backend=self.backend,
                backend_options=self._backend_options,
            )
        except BaseException as exc:  # reported to start() or stop(), not lost
            if not ready.done():
                ready.set_exception(exc)
            else:
                self._host_error = exc
        finally:
            # The loop is gone: later calls fail to schedule, and a callback
            # queued before it ended never ran, so its caller is released here.
            self.loop_thread = None
            self._token = None
            for call in list(self._pending):
                call.abort()

    async def _run_host(
        self, resource: AbstractAsyncContextManager[object], ready: Future[None]
    ) -> None:
        async with resource, anyio.create_task_group() as tg:
            self._tg = tg
            self._token = anyio.lowlevel.current_token()
            self.loop_thread = threading.get_ident()
            ready.set_result(None)
            if not self._abandoned:  # start() was interrupted: leave at once
                await anyio.sleep_forever()

    def stop(self) -> None:
        """Cancel every call, leave the resource in the host task, end the loop
        and join its thread. Call once.

        Raises:
            Whatever leaving the resource raised.
        """
        self.soon(self._cancel_all)
        thread = self._thread
        if thread is not None:
            thread.join()
        error, self._host_error = self._host_error, None
        if error is not None:
            raise error

    def _cancel_all(self) -> None:
        tg = self._tg
        if tg is not None:
            self._tg = None  # no new task; late spawns are aborted
            tg.cancel_scope.cancel()

    # ------------------------------------------------------------ calls

    def check_thread(self) -> None:
        """Refuse a blocking call from the loop's own thread (a deadlock).

        Raises:
            ClientStateError: called from inside the client's event loop thread.
        """
        if threading.get_ident() == self.loop_thread:
            raise ClientStateError(
                "a blocking ailib_sc.sync call was made from inside the client's "
                "own event loop thread (from code the client runs there, such as "
                "a request iterator), where it would wait for itself for ever. "
                "Use the async client there: `async with ailib_sc.AiClient(...)` "
                "and `await` its verbs",
                provider=self.provider,
            )

    def closed_error(self, when: str) -> ClientClosedError:
        """The error for a call that met a closed client."""
        return ClientClosedError(
            f"this ailib_sc.sync.AiClient was closed {when}; create a new one",
            provider=self.provider,
        )

    def submit(
        self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> Call[T]:
        """Start ``await fn(*args, **kwargs)`` in the loop; return at once.

        Raises:
            ClientStateError: called from the loop's own thread.
            ClientClosedError: the loop is gone.
        """
        self.check_thread()
        call: Call[T] = Call()
        self._schedule(call, self._spawn, call, fn, args, kwargs)
        return call

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``await fn(*args, **kwargs)`` in the loop; block until it ended;
        return its value or raise its error unchanged.

        Raises:
            ClientStateError: called from the loop's own thread.
            ClientClosedError: the client was closed before or during the call.
        """
        return self.submit(fn, *args, **kwargs).result(self)

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the loop thread (a consistent snapshot of
        loop state); in that thread already, called directly.

        Raises:
            ClientClosedError: the loop is gone.
        """
        if threading.get_ident() == self.loop_thread:
            return fn(*args, **kwargs)
        call: Call[T] = Call()
        self._schedule(call, self._run_here, call, fn, args, kwargs)
        return call.result(self)

    def soon(self, fn: Callable[[], object]) -> bool:
        """Run ``fn()`` in the loop thread soon, without waiting (directly when
        called from it). Returns False if the loop is gone."""
        if threading.get_ident() == self.loop_thread:
            fn()
            return True
        token = self._token
        if token is None:
            return False
        try:
            token.backend_class.run_sync_soon(fn, (), token.native_token)
        except (anyio.RunFinishedError, RuntimeError):
            return False
        return True

    def _schedule(self, call: Call[Any], fn: Callable[..., None], *args: Any) -> None:
        token = self._token
        if token is None:
            raise self.closed_error("before this call")
        pending = self._pending
        pending.add(call)
        try:
            token.backend_class.run_sync_soon(fn, args, token.native_token)
        except (anyio.RunFinishedError, RuntimeError):
            pending.discard(call)
            raise self.closed_error("before this call") from None

    def _run_here(
        self,
        call: Call[T],
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._pending.discard(call)
        call.run_sync(fn, args, kwargs)

    def _spawn(
        self,
        call: Call[T],
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        # A loop callback: it must never raise (trio would crash the whole run).
        self._pending.discard(call)
        tg = self._tg
        if tg is None:
            call.abort()
            return
        try:
            tg.start_soon(call.run, fn, args, kwargs)
        except Exception:  # the group is closing
            call.abort()
