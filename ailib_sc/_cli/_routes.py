"""A batch *route*: one provider's client and the task that runs its requests.

A route takes its jobs from a *taker*: the input itself for the flags' own
provider (:class:`~ailib_sc._cli._pipeline.Source` reads a line each time the
batch verb has a free slot), or a channel the source pushes to for a provider
named by the lines. ``take(wait=False)`` returns :data:`NOT_NOW` rather than
wait, which lets a smart window start with what is ready: a window that waited
for more jobs could wait on the lines it holds back itself (``--ordered``).
"""

from __future__ import annotations

import enum
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
    "NOT_NOW",
    "ChannelTaker",
    "Job",
    "NotNow",
    "Result",
    "Route",
    "RouteOptions",
    "Sink",
    "Taker",
]

Result = ChatCompletionResponse | AiLibError
# Jobs pushed ahead to a route of another provider (bounds their memory).
_CHANNEL_BUFFER = 64


class NotNow(enum.Enum):
    """``take(wait=False)``: a job would need waiting for."""

    NOT_NOW = "not now"


NOT_NOW = NotNow.NOT_NOW


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
    window: int
    smart_retry: RetryPolicy | None = None  # None: the smart batch's default


class Taker(Protocol):
    """Where a route's jobs come from; None: no more."""

    async def take(self, *, wait: bool) -> Job | NotNow | None: ...


class Sink(Protocol):
    """Where a route's results go."""

    def deliver(self, route: Route, job: Job, result: Result) -> None: ...


class ChannelTaker:
    """Jobs pushed by the source to a route of another provider."""

    def __init__(self) -> None:
        send, receive = anyio.create_memory_object_stream[Job](_CHANNEL_BUFFER)
        self.send: MemoryObjectSendStream[Job] = send
        self.receive: MemoryObjectReceiveStream[Job] = receive

    async def take(self, *, wait: bool) -> Job | NotNow | None:
        try:
            if wait:
                return await self.receive.receive()
            return self.receive.receive_nowait()
        except anyio.WouldBlock:
            return NOT_NOW
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
        job = await self._taker.take(wait=True)
        if not isinstance(job, Job):
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
        async with self.client:
            if self._options.smart:
                await self._run_smart()
            else:
                await self._run_stream()

    async def _run_stream(self) -> None:
        feed = _Feed(self.taker)
        async with self.client.chat_completion_batch_stream(
            feed, concurrency=self._options.concurrency
        ) as results:
            async for index, result in results:
                self._sink.deliver(self, feed.jobs.pop(index), result)

    async def _window(self) -> list[Job]:
        """The next window: waits for a first job, then takes what is ready."""
        first = await self.taker.take(wait=True)
        if not isinstance(first, Job):
            return []
        jobs = [first]
        while len(jobs) < self._options.window:
            job = await self.taker.take(wait=False)
            if not isinstance(job, Job):
                break
            jobs.append(job)
        return jobs

    async def _run_smart(self) -> None:
        options, stats = self._options, self._stats
        concurrency = min(options.concurrency, options.max_concurrency)
        while jobs := await self._window():
            slots: list[Result | None] = []
            stats.concurrency = concurrency
            try:
                out = await self.client.chat_completion_batch_smart(
                    [job.request for job in jobs],
                    initial_concurrency=concurrency,
                    max_concurrency=options.max_concurrency,
                    retry=options.smart_retry,
                    results=slots,
                )
            finally:
                # Cancelled or not, what finished is written.
                for job, result in zip(jobs, slots, strict=False):
                    if result is not None:
                        self._sink.deliver(self, job, result)
            if out.statistics is not None:
                concurrency = out.statistics.final_concurrency
                stats.concurrency = concurrency
