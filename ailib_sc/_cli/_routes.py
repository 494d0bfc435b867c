"""A batch *route*: one provider's client and the task that runs its requests.

A route takes its jobs from a *taker*: the input itself for the flags' own
provider (:class:`~ailib_sc._cli._pipeline.Source` reads a line each time the
batch verb has a free slot), or a channel the source pushes to for a provider
named by the lines. Either way the jobs go through the as-completed batch verb
(``chat_completion_batch_stream``, or its ``_smart`` form with ``--smart``), so
each result is written the moment it completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio

from .._errors import AiLibError
from .._types import ChatCompletionResponse

if TYPE_CHECKING:
    from anyio.streams.memory import (
        MemoryObjectReceiveStream,
        MemoryObjectSendStream,
    )

    from .._client import AiClient
    from .._policy import RetryPolicy
    from .._types import ChatCompletionRequest
    from ._jsonl import Key
    from ._progress import RunStats

__all__ = [
    "ChannelTaker",
    "Job",
    "Result",
    "Route",
    "RouteOptions",
    "Sink",
    "Taker",
]

Result = ChatCompletionResponse | AiLibError
# Jobs pushed ahead to a route of another provider (bounds their memory).
_CHANNEL_BUFFER = 64


@dataclass(frozen=True, slots=True)
class Job:
    """A request of input line ``lineno``, whose result line carries ``key``."""

    lineno: int
    key: Key
    request: ChatCompletionRequest


@dataclass(frozen=True)
class RouteOptions:
    """How a route runs its requests."""

    concurrency: int
    smart: bool
    max_concurrency: int
    smart_retry: RetryPolicy | None = None  # None: the smart batch's default
    requests_per_minute: float | None = None


class Taker(Protocol):
    """Where a route's jobs come from; None: no more."""

    async def take(self) -> Job | None: ...


class Sink(Protocol):
    """Where a route's results go."""

    def deliver(self, route: Route, job: Job, result: Result) -> None: ...


class ChannelTaker:
    """Jobs pushed by the source to a route of another provider."""

    def __init__(self) -> None:
        send, receive = anyio.create_memory_object_stream[Job](_CHANNEL_BUFFER)
        self.send: MemoryObjectSendStream[Job] = send
        self.receive: MemoryObjectReceiveStream[Job] = receive

    async def take(self) -> Job | None:
        try:
            return await self.receive.receive()
        except anyio.EndOfStream:
            return None


class _Feed:
    """A route's jobs as the batch verb's async iterable of requests. The
    k-th request handed out is the batch's index k, which maps back to its job."""

    def __init__(self, taker: Taker) -> None:
        self._taker = taker
        self.jobs: dict[int, Job] = {}
        self._next = 0

    def __aiter__(self) -> _Feed:
        return self

    async def __anext__(self) -> ChatCompletionRequest:
        job = await self._taker.take()
        if job is None:
            raise StopAsyncIteration
        self.jobs[self._next] = job
        self._next += 1
        return job.request


class Route:
    """One provider's client, run in its own task by :meth:`run`."""

    def __init__(
        self,
        client: AiClient,
        taker: Taker,
        *,
        sink: Sink,
        options: RouteOptions,
        stats: RunStats,
    ) -> None:
        self.client = client
        self.taker = taker
        self.successes = 0
        self._sink = sink
        self._options = options
        self._stats = stats

    async def run(self) -> None:
        options, stats = self._options, self._stats
        feed = _Feed(self.taker)
        async with self.client:
            if options.smart:
                results = self.client.chat_completion_batch_stream_smart(
                    feed,
                    initial_concurrency=min(
                        options.concurrency, options.max_concurrency
                    ),
                    max_concurrency=options.max_concurrency,
                    retry=options.smart_retry,
                    requests_per_minute=options.requests_per_minute,
                )
            else:
                results = self.client.chat_completion_batch_stream(
                    feed,
                    concurrency=options.concurrency,
                    requests_per_minute=options.requests_per_minute,
                )
            async with results:
                async for index, result in results:
                    if options.smart:  # the progress line shows it as it adapts
                        stats.concurrency = results.concurrency
                    self._sink.deliver(self, feed.jobs.pop(index), result)
