"""The event-loop side of a Ray worker: one *lane* per provider, each a client
and one as-completed batch that lives as long as the worker.

Theory of operation
-------------------
A Ray actor calls the worker with one batch of rows at a time, from several
threads at once when Ray sends it several batches (``ChatWorker`` asks for
four). Running each batch as a batch of its own would leave the worker's
concurrency idle while a batch's slowest requests finish, and would restart the
smart batch's controller (its AIMD limit, its Retry-After pause, its pacing)
for every batch. So a lane runs *one* ``chat_completion_batch_stream`` (or its
``_smart`` form) for the worker's whole life, fed through a channel: every
batch pushes its jobs into the lane's channel and waits for its own results,
which the lane hands back as they complete. The stream's limiter is therefore
the worker's own limiter, shared by every batch in flight on it, and its
controller sees every request the worker makes.

A job's result is also passed to ``on_result`` the moment it completes (the
journal writes it there), before the batch it belongs to has finished.

The lane of the worker's own provider is opened when the worker starts, so a
missing key or a bad option fails the actor at once; a lane for a provider
named by some rows opens on the first such row, and if its client cannot be
built every row for it gets that error as its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from .._client import AiClient
from .._errors import AiLibError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from anyio.abc import TaskGroup, TaskStatus
    from anyio.streams.memory import MemoryObjectSendStream

    from .._config import ConnectionOptions
    from .._policy import RetryPolicy
    from .._registry import Provider, ProviderConfig
    from .._types import ChatCompletionRequest, ChatCompletionResponse

    Result = ChatCompletionResponse | AiLibError

__all__ = ["Job", "LaneOptions", "Lanes", "Ticket"]


@dataclass(frozen=True)
class LaneOptions:
    """How every lane of a worker runs its requests."""

    concurrency: int
    smart: bool
    initial_concurrency: int | None
    retry: RetryPolicy | None
    requests_per_minute: float | None
    ratelimit_share: float


class Ticket:
    """One Ray batch's results, filled in as they complete."""

    def __init__(self, size: int) -> None:
        self.results: list[Result | None] = [None] * size
        self._left = size
        self.done = anyio.Event()
        if not size:
            self.done.set()

    def put(self, slot: int, result: Result) -> None:
        self.results[slot] = result
        self._left -= 1
        if not self._left:
            self.done.set()


@dataclass(frozen=True, slots=True)
class Job:
    """Row ``slot`` of the batch of ``ticket``, with the id its result carries."""

    ticket: Ticket
    slot: int
    key: Any
    request: ChatCompletionRequest


class _Feed:
    """A lane's channel as the batch verb's async iterable of requests; the
    k-th request handed out is the stream's index k, which maps to its job."""

    def __init__(self, lane: _Lane) -> None:
        self._receive = lane.receive
        self.jobs: dict[int, Job] = {}
        self._next = 0

    def __aiter__(self) -> _Feed:
        return self

    async def __anext__(self) -> ChatCompletionRequest:
        try:
            job = await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        self.jobs[self._next] = job
        self._next += 1
        return job.request


class _Lane:
    def __init__(self, client: AiClient) -> None:
        self.client = client
        send, receive = anyio.create_memory_object_stream[Job]()
        self.send: MemoryObjectSendStream[Job] = send
        self.receive = receive

    def close(self) -> None:
        """Close both ends of the channel (a lane that never ran)."""
        self.send.close()
        self.receive.close()

    async def run(
        self,
        options: LaneOptions,
        on_result: Callable[[Job, Result], None],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        feed = _Feed(self)
        client = self.client
        with self.receive:
            async with client:
                if options.smart:
                    stream = client.chat_completion_batch_stream_smart(
                        feed,
                        initial_concurrency=options.initial_concurrency,
                        max_concurrency=options.concurrency,
                        retry=options.retry,
                        requests_per_minute=options.requests_per_minute,
                        ratelimit_share=options.ratelimit_share,
                    )
                else:
                    stream = client.chat_completion_batch_stream(
                        feed,
                        concurrency=options.concurrency,
                        retry=options.retry,
                        requests_per_minute=options.requests_per_minute,
                    )
                async with stream:
                    task_status.started()
                    async for index, result in stream:
                        job = feed.jobs.pop(index)
                        on_result(job, result)
                        job.ticket.put(job.slot, result)


class Lanes:
    """A worker's lanes, entered and left by the loop's host task.

    Args:
        provider / options: the worker's own provider and connection options.
        lane_options: how the lanes run their requests.
        on_result: called in the loop thread with each job and its result as
            it completes.
    """

    def __init__(
        self,
        provider: Provider | ProviderConfig | str,
        options: ConnectionOptions | None,
        lane_options: LaneOptions,
        on_result: Callable[[Job, Result], None],
    ) -> None:
        self._provider = provider
        self._options = options
        self._lane_options = lane_options
        self._on_result = on_result
        self._lanes: dict[str | None, _Lane | AiLibError] = {}
        self._tg: TaskGroup | None = None
        self._opening: dict[str, anyio.Event] = {}

    async def _start(
        self,
        tg: TaskGroup,
        provider: Provider | ProviderConfig | str,
        options: ConnectionOptions | None,
    ) -> _Lane:
        """A lane for ``provider``, running in ``tg`` once its stream is open.

        Raises:
            AiLibError: the client cannot be built or its options are bad.
        """
        lane = _Lane(AiClient(provider, options))
        try:
            await tg.start(lane.run, self._lane_options, self._on_result)
        except BaseException:
            lane.close()  # it never ran: nothing else closes its channel
            raise
        return lane

    async def __aenter__(self) -> Lanes:
        # The worker's own lane opens now: a bad key or option fails the actor
        # at start, not row by row, and with the error itself (not a group).
        tg = anyio.create_task_group()
        await tg.__aenter__()
        failed: BaseException | None = None
        try:
            lane = await self._start(tg, self._provider, self._options)
        except BaseException as exc:
            failed = exc
            tg.cancel_scope.cancel()
        if failed is not None:
            try:
                await tg.__aexit__(type(failed), failed, failed.__traceback__)
            except BaseExceptionGroup as group:
                if failed in group.exceptions:
                    raise failed from None
                raise
            raise failed
        self._tg = tg
        self._lanes[None] = lane
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        # The worker is closing: the batches waiting on the lanes were
        # cancelled already, so cancel what they left in flight too. Each
        # lane's client closes its connections (shielded) on its way out.
        for lane in self._lanes.values():
            if isinstance(lane, _Lane):
                lane.send.close()
        tg, self._tg = self._tg, None
        assert tg is not None
        tg.cancel_scope.cancel()
        return await tg.__aexit__(et, e, tb)

    async def _lane(self, provider: str | None) -> _Lane | AiLibError:
        found = self._lanes.get(provider)
        if found is not None:
            return found
        assert provider is not None  # the own lane opened in __aenter__
        opening = self._opening.get(provider)
        if opening is not None:  # another batch is opening it
            await opening.wait()
            return self._lanes[provider]
        self._opening[provider] = opened = anyio.Event()
        try:
            lane: _Lane | AiLibError
            # The worker's base URL and key are its own provider's; another
            # provider takes its own from its environment variables.
            options = self._options
            if options is not None:
                options = msgspec.structs.replace(options, base_url=None, api_key=None)
            assert self._tg is not None
            try:
                lane = await self._start(self._tg, provider, options)
            except AiLibError as err:  # an unknown provider, a missing key
                lane = err
            self._lanes[provider] = lane
        finally:
            opened.set()
            del self._opening[provider]
        return lane

    async def run(
        self, requests: list[tuple[str | None, Any, ChatCompletionRequest]]
    ) -> list[Result]:
        """Send each ``(provider, id, request)`` to its provider's lane (None:
        the worker's own) and return their results, in order, once all are
        in. Cancelling it leaves the requests already sent running."""
        ticket = Ticket(len(requests))
        for slot, (provider, key, request) in enumerate(requests):
            job = Job(ticket, slot, key, request)
            lane = await self._lane(provider)
            if isinstance(lane, AiLibError):
                # Each row its own error; nothing was sent for it.
                err = type(lane)(lane.message, provider=lane.provider, attempts=0)
                self._on_result(job, err)
                ticket.put(slot, err)
            else:
                await lane.send.send(job)
        await ticket.done.wait()
        return [r for r in ticket.results if r is not None]
