"""Blocking batch streams: ``with client.chat_completion_batch_stream(reqs) as results``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._batch import BatchStatistics
from .._errors import AiLibError
from .._types import ChatCompletionResponse
from ._pump import Pump

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._batch import BatchStream as AsyncBatchStream
    from ._runner import Runner

__all__ = ["BatchStream"]

BatchItem = tuple[int, ChatCompletionResponse | AiLibError]


class BatchStream(Pump[BatchItem]):
    """Results of a batch as they complete, blocking: a context manager and an
    iterator of ``(index, result)``::

        with client.chat_completion_batch_stream(requests) as results:
            for index, result in results:
                ...

    ``index`` is the item's position in the input; ``result`` a
    :class:`~ailib_sc.ChatCompletionResponse` or an
    :class:`~ailib_sc.AiLibError`. As with the async
    :class:`~ailib_sc.BatchStream`, memory stays bounded: at most
    ``concurrency`` items in flight, and up to 64 finished results read ahead
    of you. The requests are read lazily, in the client's event loop thread:
    keep the iterable cheap (no blocking I/O) and never call the client from it.
    Iterating without ``with`` works too: the first ``next()`` starts the batch,
    the end of the iteration closes it.

    Thread safety: one thread at a time uses the stream (enters, iterates,
    leaves).

    Cancellation: leaving the block early (``break``, an exception,
    ``KeyboardInterrupt``) cancels the items in flight and waits for them;
    results already taken are yours.

    Raises:
        ClientClosedError: the client was closed while the batch ran.
        ClientStateError: entered twice, or used from the client's own event
            loop thread.
        Exception: an exception raised by the requests iterable, after the
            results that completed before it.
    """

    _what = "batch stream"

    def __init__(self, opener: Callable[[], Runner], batch: AsyncBatchStream) -> None:
        super().__init__(opener, batch, batch.statistics)
        self._batch = batch

    @property
    def concurrency(self) -> int:
        """The concurrency limit now (fixed for a plain stream, adapting for a
        smart one)."""
        return self._batch.concurrency

    @property
    def submitted(self) -> int:
        """Requests taken from the input so far."""
        return self._batch.submitted

    @property
    def completed(self) -> int:
        """Results completed so far (read ahead included)."""
        return self._batch.completed

    def statistics(self) -> BatchStatistics:
        """What the stream did so far (all of it once it ended): a
        :class:`~ailib_sc.BatchStatistics`, as the async stream's
        ``statistics()``; ``elapsed`` in seconds."""
        handoff = self._handoff
        ended = handoff.ended if handoff is not None else None
        if ended is not None and isinstance(ended.snapshot, BatchStatistics):
            return ended.snapshot
        return self._peek(self._batch.statistics)
