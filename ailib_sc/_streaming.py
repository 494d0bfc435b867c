"""Streams: an async context manager whose cancel scope is the cancel handle.

Theory of operation
-------------------
``__aenter__`` enters a :class:`anyio.CancelScope` that spans the caller's whole
``async with`` block, takes the client-wide permit, sends the request and waits for
the response headers (an error status raises here, typed). Iteration is a class
with ``__anext__`` (never a generator: nothing yields inside a scope); each call
reads body bytes, splits SSE events and decodes chunks.

``cancel()`` is a plain call that cancels the scope: whatever the block is
awaiting raises ``Cancelled``, the block unwinds, and ``__aexit__`` absorbs the
cancellation as the scope's own, so the block ends without raising, like
``move_on_after``. Leaving the block for any reason (end, ``break``, exception,
outer cancellation, ``cancel()``) closes the response in shielded, bounded
cleanup: an HTTP/2 stream is reset and its connection kept; an HTTP/1.1
connection goes back to the pool only if its body was read to the end. The permit
is released last. ``partial``, ``usage``, ``finish_reason`` and ``stats`` stay
readable afterwards.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

import anyio

from ._chunks import ChunkAssembler
from ._errors import (
    AiLibError,
    IncompleteStreamError,
    ResponseDecodeError,
    ResponseTooLargeError,
)
from ._retry import retrying

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
    from types import TracebackType

    from ._chunks import ChatCompletionChunk
    from ._engine import Call, Engine
    from ._policy import RetryPolicy
    from ._transport import Response
    from ._types import CallStats, ChatCompletionRequest, ChatCompletionResponse, Usage

__all__ = ["CancelHandle", "ChatCompletionStream", "StreamWithCancel"]


def _checkpoint_if_cancelled() -> Callable[[], Awaitable[None]]:
    """The running backend's ``checkpoint_if_cancelled``, looked up once.

    ``anyio.lowlevel.checkpoint_if_cancelled`` asks sniffio which library runs
    on every call: 1.3 us per chunk on asyncio, half of it the lookup. A stream
    lives on one event loop, so the answer is taken once, when it is entered.
    Falls back to the public function if anyio moves its internals.
    """
    try:
        from anyio._core._eventloop import get_async_backend
    except ImportError:  # pragma: no cover - a future anyio
        return anyio.lowlevel.checkpoint_if_cancelled
    check: Callable[[], Awaitable[None]] = get_async_backend().checkpoint_if_cancelled
    return check


class ChatCompletionStream:
    """A streamed chat completion; use ``async with client.chat_completion_stream(req)``.

    Iterate it for :class:`ChatCompletionChunk` objects, or use :meth:`text` for text
    deltas and :meth:`final` for the assembled response.

    Attributes:
        cancelled: True once :meth:`cancel` was called (the block ended early).
        error: the error that ended the stream, if one did.

    Raises:
        InvalidRequestError: on entry: the request is malformed; nothing was sent.
        ConfigurationError: on entry: a bad ``extra_headers`` entry.
        ApiError: on entry, the provider answered with an error status; while
            iterating, the provider sent an error frame mid-stream.
        TransportError: on entry, connect / timeout / protocol failures; while
            iterating, :class:`ReadTimeoutError` when no bytes arrived for
            ``read_timeout`` seconds between chunks, or
            :class:`RemoteProtocolError` when the server broke off the stream.
        IncompleteStreamError: while iterating, the body ended cleanly but
            before the provider's terminal signal (a cut-off stream is never
            reported as complete).
        ResponseDecodeError: while iterating, a malformed event, or one larger
            than ``max_event_bytes``.

    Every error raised while iterating carries ``partial``: the response
    assembled from what arrived before it.
    """

    def __init__(
        self,
        engine: Engine,
        request: ChatCompletionRequest,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._engine = engine
        self._request = request
        self._retry = retry
        self._extra_headers = extra_headers
        self._attempts = 1
        import anyio.lowlevel  # 3.5 ms to import: deferred to the first stream

        self._checkpoint: Callable[[], Awaitable[None]] = (
            anyio.lowlevel.checkpoint_if_cancelled  # until entered
        )
        self._scope: anyio.CancelScope | None = None
        self._scope_open = False
        self._cancel_requested = False
        self._response: Response | None = None
        self._permit = False
        self._framer = engine.framer()
        self._decoder = engine.codec.stream_decoder()
        self._asm = ChunkAssembler()
        self._pending: deque[ChatCompletionChunk] = deque()
        self._body_done = False
        self._ending = False  # the body ended; the end check is still to come
        self._deferred: AiLibError | None = None  # raised once pending is empty
        self._finished = False
        self._exited = False
        self.cancelled = False
        self.error: AiLibError | None = None
        self._t0 = 0.0
        self._t_headers: float | None = None
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._t_first_chunk: float | None = None
        self._chunks = 0
        self._max_gap = 0.0
        self._stats: CallStats | None = None

    # ------------------------------------------------------------ cancel handle

    def cancel(self) -> None:
        """End the stream now, from any task. Sync and idempotent.

        The ``async with`` block is cancelled at its next await and exits without
        raising; ``cancelled`` becomes True and ``partial`` keeps what arrived.
        """
        self._cancel_requested = True
        self.cancelled = True
        if self._scope is not None and self._scope_open:
            self._scope.cancel()

    # ------------------------------------------------------------ context manager

    async def __aenter__(self) -> ChatCompletionStream:
        engine = self._engine
        try:
            call = engine.prepare(
                self._request, stream=True, extra_headers=self._extra_headers
            )
        except AiLibError as err:
            engine.tag(err)
            raise
        self._asm.model = call.model  # until a chunk names it (Cohere never does)
        self._checkpoint = _checkpoint_if_cancelled()
        scope = self._scope = anyio.CancelScope()
        scope.__enter__()
        self._scope_open = True
        if self._cancel_requested:
            scope.cancel()
        self._t0 = time.monotonic()
        try:
            await self._open(call)
        except BaseException as exc:
            await self._close()
            self._scope_open = False
            if scope.__exit__(type(exc), exc, exc.__traceback__):
                # Our own cancel() arrived before the headers: an empty stream.
                self._body_done = True
                self._exited = True
                self._stats = self._make_stats()
                return self
            if isinstance(exc, AiLibError):
                engine.tag(exc)
            raise
        return self

    async def _open(self, call: Call) -> None:
        engine = self._engine
        # The permit is this stream's (borrower: the stream object), held until
        # the block exits, whichever task opened it.
        self._permit = await engine.acquire_permit(self)
        policy = self._retry if self._retry is not None else engine.retry

        async def attempt(n: int) -> None:
            self._attempts = n
            self._response = await engine.open_stream(call)
            self._t_headers = time.monotonic() - self._t0

        # Retries happen only here, before any chunk reached the caller.
        await retrying(policy, attempt)

    async def _close(self) -> None:
        resp = self._response
        try:
            if resp is not None:
                await resp.aclose()  # shielded and bounded inside
        finally:
            if self._permit:
                self._permit = False
                self._engine.release_permit(self)

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._exited:
            return False
        self._exited = True
        try:
            await self._close()
        finally:
            self._stats = self._make_stats()
            swallowed = False
            if self._scope is not None and self._scope_open:
                self._scope_open = False
                swallowed = bool(self._scope.__exit__(et, e, tb))
        return swallowed

    # ------------------------------------------------------------ iteration

    def __aiter__(self) -> ChatCompletionStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        # Buffered chunks and HTTP/2 frames already queued need no I/O, but a
        # cancellation (ours or an outer one) must land at every chunk, not only
        # when the backlog runs dry. Costs no scheduling round trip otherwise.
        await self._checkpoint()
        pending = self._pending
        if pending:
            return pending.popleft()
        while not self._body_done:
            await self._read_more()
            if pending:
                return pending.popleft()
        self._raise_deferred()
        if self._ending:
            self._end()
        raise StopAsyncIteration

    def _raise_deferred(self) -> None:
        err = self._deferred
        if err is not None:
            self._deferred = None
            raise err

    async def _read_more(self) -> None:
        resp = self._response
        if resp is None or self._exited:
            self._body_done = True
            return
        try:
            data = await resp.receive()
            framing: AiLibError | None = None
            try:
                if data is None:
                    self._body_done = True
                    events = self._framer.end()
                else:
                    events = self._framer.feed(data)
            except AiLibError as err:
                # The events this read completed before the fault still count.
                framing = err
                events = self._framer.salvaged
            now = time.monotonic()
            decoder = self._decoder
            for ev in events:
                try:
                    chunks = decoder.feed(ev)
                except ResponseDecodeError as err:
                    if data is not None or isinstance(err, ResponseTooLargeError):
                        raise
                    # What the body ended on was cut short (an NDJSON line
                    # without its end): the stream is incomplete, not malformed.
                    raise IncompleteStreamError(
                        f"the stream ended inside its last event ({err.message})"
                    ) from err
                for chunk in chunks:
                    self._count(chunk, now)
                    self._pending.append(chunk)
            if framing is not None:
                raise framing
            if data is None:
                self._ending = True  # checked once the chunks above are taken
        except AiLibError as err:
            self._body_done = True
            self._fail(err)
            if self._pending:
                # Chunks decoded before the error in this read reach the caller
                # first, however the network happened to batch the events.
                self._deferred = err
                return
            raise

    def _end(self) -> None:
        """The body ended cleanly: did the stream finish? (The family's
        terminal signal; a cut-off stream is an error, never complete.)"""
        self._ending = False
        try:
            self._decoder.end()
        except AiLibError as err:
            self._fail(err)
            raise
        self._finished = True

    def _fail(self, err: AiLibError) -> None:
        self.error = err
        err.partial = self._asm.response(self._make_stats())
        self._engine.tag(err)

    def _count(self, chunk: ChatCompletionChunk, now: float) -> None:
        last = self._t_last
        if last is None:
            self._t_first_chunk = now
        elif now - last > self._max_gap:
            self._max_gap = now - last
        self._t_last = now
        self._chunks += 1
        if self._asm.add(chunk) and self._t_first is None:
            self._t_first = now - self._t0

    # ------------------------------------------------------------ helpers

    def text(self) -> AsyncIterator[str]:
        """Iterate the first choice's text deltas only (empty deltas skipped)."""
        return _TextDeltas(self)

    async def final(self) -> ChatCompletionResponse:
        """The whole response, assembled (tool-call arguments joined).

        Inside the block it reads the rest of the stream first; after the block it
        returns what was assembled.

        Raises:
            IncompleteStreamError: the stream was cancelled or failed before it
                finished; ``partial`` on the error holds what arrived.
            TransportError: as while iterating.
            ApiError: as while iterating.
        """
        if not self._exited:
            while not self._body_done:
                await self._read_more()
            self._pending.clear()
            self._raise_deferred()
            if self._ending:
                self._end()
        if not self._finished:
            err = IncompleteStreamError(
                "the stream did not finish (cancelled or failed); see .partial",
                provider=self._engine.provider.id,
            )
            err.partial = self.partial
            raise err
        return self._asm.response(self._stats or self._make_stats())

    def _make_stats(self) -> CallStats:
        chunks = self._chunks
        mean = None
        if chunks >= 2 and self._t_last is not None and self._t_first_chunk is not None:
            mean = (self._t_last - self._t_first_chunk) / (chunks - 1)
        resp = self._response
        return self._engine.stats(
            resp.headers if resp is not None else [],
            resp.http_version if resp is not None else "",
            self._t0,
            self._t_headers,
            self._attempts,
            time_to_first_token=self._t_first,
            chunks=chunks,
            max_gap=self._max_gap if chunks >= 2 else None,
            mean_gap=mean,
        )

    @property
    def partial(self) -> ChatCompletionResponse:
        """The response assembled from the chunks received so far."""
        return self._asm.response(self._stats)

    @property
    def usage(self) -> Usage | None:
        """Token usage from the final chunk (``stream_options.include_usage``)."""
        return self._asm.usage

    @property
    def finish_reason(self) -> str | None:
        """The first choice's finish reason, once it arrived."""
        return self._asm.finish_reason()

    @property
    def stats(self) -> CallStats | None:
        """:class:`CallStats` of the finished stream; None while it is open."""
        return self._stats

    @property
    def http_version(self) -> str:
        """``"HTTP/1.1"`` or ``"HTTP/2"`` once the headers arrived."""
        return self._response.http_version if self._response is not None else ""


class _TextDeltas:
    __slots__ = ("_stream",)

    def __init__(self, stream: ChatCompletionStream) -> None:
        self._stream = stream

    def __aiter__(self) -> _TextDeltas:
        return self

    async def __anext__(self) -> str:
        while True:
            chunk = await self._stream.__anext__()
            for choice in chunk.choices:
                if choice.index == 0 and choice.delta.content:
                    return choice.delta.content


class CancelHandle:
    """Cancels one stream from any task: ``handle.cancel()`` (sync, idempotent)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: ChatCompletionStream) -> None:
        self._stream = stream

    def cancel(self) -> None:
        """Cancel the stream; see :meth:`ChatCompletionStream.cancel`."""
        self._stream.cancel()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._stream.cancelled


class StreamWithCancel:
    """``async with client.chat_completion_stream_with_cancel(req) as (stream, handle)``."""

    __slots__ = ("_stream",)

    def __init__(self, stream: ChatCompletionStream) -> None:
        self._stream = stream

    async def __aenter__(self) -> tuple[ChatCompletionStream, CancelHandle]:
        stream = await self._stream.__aenter__()
        return stream, CancelHandle(stream)

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return await self._stream.__aexit__(et, e, tb)


for _cls in (ChatCompletionStream, CancelHandle, StreamWithCancel):
    _cls.__module__ = "ailib_sc"
