"""Blocking streams: ``with client.chat_completion_stream(req) as stream``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._chunks import ChatCompletionChunk
from ._pump import Pump, run_settled

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from .. import ChatCompletionStream as AsyncChatCompletionStream
    from .._errors import AiLibError
    from .._types import CallStats, ChatCompletionResponse, Usage
    from ._runner import Runner

__all__ = ["CancelHandle", "ChatCompletionStream", "StreamWithCancel"]


class ChatCompletionStream(Pump[ChatCompletionChunk]):
    """A streamed chat completion, blocking: a context manager and an iterator of
    :class:`~ailib_sc.ChatCompletionChunk`::

        with client.chat_completion_stream(request) as stream:
            for chunk in stream:
                ...
        print(stream.usage, stream.stats)

    Entering sends the request and waits for the response headers (an error
    status raises there). Iterating without ``with`` works too: the first
    ``next()`` opens the stream and the end of the iteration closes it (a loop
    left by ``break`` closes it when the stream object is garbage collected;
    call :meth:`close` to close it at once).

    The chunks are read in the client's event loop thread, up to 64 ahead of
    you; past that the stream waits for you, so a slow reader slows the
    network, not memory.

    Thread safety: one thread at a time uses the stream (enters, iterates,
    leaves); :meth:`cancel` may be called from any thread.

    Cancellation: :meth:`cancel` ends the iteration: the next ``next()`` (or
    the one waiting) stops it cleanly, without raising. Unlike the async
    stream, the rest of the ``with`` block still runs (Python cannot skip it
    without raising). Leaving the block early, for any reason, ends the
    exchange at once (HTTP/2 stream reset, or an unfinished HTTP/1.1
    connection closed) and waits for that cleanup. ``KeyboardInterrupt`` while
    waiting for a chunk ends the exchange the same way, then propagates.

    Raises:
        The errors of the async :class:`~ailib_sc.ChatCompletionStream`,
        unchanged: on entry, ``InvalidRequestError``, ``ApiError``,
        ``TransportError``; while iterating, ``ApiError``, ``TransportError``,
        ``IncompleteStreamError`` and ``ResponseDecodeError``, with ``partial``.
        ClientClosedError: the client was closed while the stream was open.
        ClientStateError: the stream was entered twice, or used from inside
            the client's own event loop thread.
    """

    def __init__(
        self, opener: Callable[[], Runner], stream: AsyncChatCompletionStream
    ) -> None:
        super().__init__(opener, stream)
        self._stream = stream

    def cancel(self) -> None:
        """End the stream now, from any thread. Non-blocking and idempotent.

        The iteration stops at the next item without raising; ``cancelled``
        becomes True and ``partial`` keeps what arrived. Called before the
        stream was entered, entering gives an empty stream.
        """
        stream = self._stream
        with self._lock:
            runner = self._runner
            # Outside the loop the async stream only sets flags (its scope is
            # not open yet); inside, its scope must be cancelled in the loop.
            if runner is None or not runner.soon(stream.cancel):
                stream.cancel()
        self._interrupt()

    def text(self) -> Iterator[str]:
        """Iterate the first choice's text deltas only (empty deltas skipped)."""
        return _TextDeltas(self)

    def final(self) -> ChatCompletionResponse:
        """The whole response, assembled (tool-call arguments joined).

        Before the stream ended it reads the rest first; after, it returns what
        was assembled.

        Raises:
            IncompleteStreamError: the stream was cancelled or failed before it
                finished; ``partial`` on the error holds what arrived.
            ApiError: as while iterating.
            TransportError: as while iterating.
        """
        if not self._closed:
            for _ in self:
                pass
        self._stop_driver(abort=False)
        return run_settled(self._stream.final())

    # ------------------------------------------------------------ what arrived

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._stream.cancelled

    @property
    def error(self) -> AiLibError | None:
        """The error that ended the stream, if one did."""
        return self._stream.error

    @property
    def partial(self) -> ChatCompletionResponse:
        """The response assembled from the chunks received so far (read ahead
        included)."""
        stream = self._stream
        return self._peek(lambda: stream.partial)

    @property
    def usage(self) -> Usage | None:
        """Token usage from the final chunk (``stream_options.include_usage``)."""
        stream = self._stream
        return self._peek(lambda: stream.usage)

    @property
    def finish_reason(self) -> str | None:
        """The first choice's finish reason, once it arrived."""
        stream = self._stream
        return self._peek(lambda: stream.finish_reason)

    @property
    def stats(self) -> CallStats | None:
        """:class:`~ailib_sc.CallStats` of the exchange once it ended and the
        stream was closed (iteration over, or the block left); None before."""
        return self._stream.stats if self._settled() else None

    @property
    def http_version(self) -> str:
        """``"HTTP/1.1"`` or ``"HTTP/2"`` once the headers arrived."""
        return self._stream.http_version


class _TextDeltas:
    __slots__ = ("_stream",)

    def __init__(self, stream: ChatCompletionStream) -> None:
        self._stream = stream

    def __iter__(self) -> _TextDeltas:
        return self

    def __next__(self) -> str:
        while True:
            chunk = next(self._stream)
            for choice in chunk.choices:
                if choice.index == 0 and choice.delta.content:
                    return choice.delta.content


class CancelHandle:
    """Cancels one blocking stream from any thread: ``handle.cancel()``
    (non-blocking, idempotent)."""

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
    """``with client.chat_completion_stream_with_cancel(req) as (stream, handle)``;
    ``handle`` can go to another thread. See :class:`ChatCompletionStream`."""

    __slots__ = ("_stream",)

    def __init__(self, stream: ChatCompletionStream) -> None:
        self._stream = stream

    def __enter__(self) -> tuple[ChatCompletionStream, CancelHandle]:
        stream = self._stream.__enter__()
        return stream, CancelHandle(stream)

    def __exit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stream.__exit__(et, e, tb)
