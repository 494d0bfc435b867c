"""Batches: one task group per batch, bounded by a per-batch ``CapacityLimiter``
under the client-wide one. One result per input, in input order; an item's
failure goes into its slot and never cancels its siblings.

Theory of operation
-------------------
A batch starts at most ``concurrency`` worker tasks (not one task per item, so a
batch of a million costs a million results, not a million tasks); each takes the
next index from a shared iterator and runs it under the batch's limiter.

The smart batch adds a controller. Concurrency follows AIMD: +1 after a full
window of successes, halved (at most once per window) on 429, 503, 529 and
timeouts. A ``Retry-After`` pauses the *whole batch*, not just the item that got
it; ``x-ratelimit-*`` headers, once they show the budget running low, space
request starts at the provider's refill interval. Retryable failures are retried
with full-jitter backoff, keeping the item's ``x-client-request-id``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import msgspec

from ._errors import (
    AiLibError,
    ClientStateError,
    OverloadedError,
    RateLimitError,
    RequestRefusedError,
    RequestTimeoutError,
    TransportTimeoutError,
)
from ._policy import RetryPolicy
from ._retry import retrying
from ._tasks import enter_task_group, leave_task_group
from ._types import ChatCompletionResponse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator
    from types import TracebackType

    from ._engine import Engine
    from ._types import CallStats, ChatCompletionRequest

__all__ = [
    "SMART_POLICY",
    "BatchResults",
    "BatchStatistics",
    "BatchStream",
    "run_batch",
]

BatchItem = ChatCompletionResponse | AiLibError
_THROTTLES = (
    RateLimitError,
    OverloadedError,
    RequestRefusedError,
    RequestTimeoutError,
    TransportTimeoutError,
)
SMART_POLICY = RetryPolicy(max_attempts=6, base_delay=0.25, max_delay=20.0)


class BatchStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """What a batch did. Times in seconds.

    Attributes:
        requests: items in the batch.
        succeeded / failed: items that ended in a response / an error.
        attempts: HTTP attempts made in all (items rejected locally make none).
        retries: attempts that were retries of a failed one.
        throttled: attempts answered 429 / 503 / 529 or timed out.
        initial_concurrency / final_concurrency / peak_concurrency: the limit at
            the start, at the end and its highest value.
        rate_limit_wait: wall-clock seconds the batch was paused by Retry-After,
            plus the time its request starts were spaced out by pacing.
        elapsed: wall time of the batch.
    """

    requests: int
    succeeded: int
    failed: int
    attempts: int
    retries: int
    throttled: int
    initial_concurrency: int
    final_concurrency: int
    peak_concurrency: int
    rate_limit_wait: float
    elapsed: float


class BatchResults(list[BatchItem]):
    """A list with one :class:`ChatCompletionResponse` or :class:`AiLibError` per
    input, in input order.

    Attributes:
        statistics: the batch's :class:`BatchStatistics` once it finished.
    """

    statistics: BatchStatistics | None = None


class _Controller:
    """Concurrency and pacing shared by every item of one batch."""

    def __init__(
        self,
        limiter: anyio.CapacityLimiter,
        *,
        adaptive: bool,
        maximum: int,
        requests_per_minute: float | None = None,
        ratelimit_share: float = 1.0,
    ) -> None:
        self.limiter = limiter
        # A fixed start rate the caller asked for (a share of a budget split
        # across processes); header pacing may only slow it further.
        self.floor = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self.share = ratelimit_share
        self.adaptive = adaptive
        self.maximum = maximum
        self.limit = int(limiter.total_tokens)
        self.initial = self.peak = self.limit
        self.successes = 0
        self.last_decrease = -math.inf  # clocks may start at 0 (trio MockClock)
        self.pause_until = 0.0
        self.last_start = -math.inf
        self.interval = 0.0
        self.rpm: int | None = None
        self.waited = 0.0
        self.attempts = 0
        self.retries = 0
        self.throttled = 0

    def _set_limit(self, value: int) -> None:
        self.limit = value
        self.peak = max(self.peak, value)
        self.limiter.total_tokens = value

    async def wait_turn(self) -> None:
        """Wait out a batch-wide pause and the pacing interval."""
        if not self.adaptive and not self.floor:
            return
        now = anyio.current_time()
        # Spaced from the last start by the interval in force now: a pace set
        # by the answer to the last request already spaces the next one.
        start = max(
            now, self.pause_until, self.last_start + max(self.interval, self.floor)
        )
        self.last_start = start
        self.waited += self.interval  # starts are serialised: wall time, not per task
        if start > now:
            await anyio.sleep(start - now)

    def on_success(self, stats: CallStats | None) -> None:
        if not self.adaptive:
            return
        self.successes += 1
        if self.successes >= self.limit and self.limit < self.maximum:
            self.successes = 0
            self._set_limit(self.limit + 1)
        if stats is None:
            return
        limit, left = stats.ratelimit_limit_requests, stats.ratelimit_remaining_requests
        if limit:
            self.rpm = limit
        if left is not None:
            if left <= self.limit:
                self._pace()  # the budget is nearly spent: start at the refill rate
            elif left > 2 * self.limit:
                self.interval = 0.0

    def _pace(self) -> None:
        # x-ratelimit-limit-requests is a per-minute budget: its steady refill
        # rate, with a 5% margin, is the fastest sustainable start rate. A
        # batch that owns only a share of the budget (one of several processes
        # sharing a key) paces at its share of that rate.
        if self.rpm:
            self.interval = 1.05 * 60.0 / (self.rpm * self.share)

    def statistics(
        self, requests: int, succeeded: int, failed: int, elapsed: float
    ) -> BatchStatistics:
        """The batch's :class:`BatchStatistics`, with this controller's counts."""
        return BatchStatistics(
            requests=requests,
            succeeded=succeeded,
            failed=failed,
            attempts=self.attempts,
            retries=self.retries,
            throttled=self.throttled,
            initial_concurrency=self.initial,
            final_concurrency=self.limit,
            peak_concurrency=self.peak,
            rate_limit_wait=self.waited,
            elapsed=elapsed,
        )

    def count_retry(self) -> None:
        self.retries += 1

    def on_failure(self, err: AiLibError) -> None:
        if not (self.adaptive and isinstance(err, _THROTTLES)):
            return
        self.throttled += 1
        if isinstance(err, RateLimitError):
            self._pace()
        now = anyio.current_time()
        if err.retry_after is not None:
            until = now + min(err.retry_after, SMART_POLICY.max_retry_after)
            if until > self.pause_until:
                self.waited += until - max(now, self.pause_until)  # wall time added
                self.pause_until = until
        # Halve at most once per window: the in-flight requests that started
        # before the decrease will report the same overload.
        if now - self.last_decrease > 0.5 and self.limit > 1:
            self.last_decrease = now
            self.successes = 0
            self._set_limit(max(1, self.limit // 2))


async def _run_item(
    engine: Engine,
    request: ChatCompletionRequest,
    policy: RetryPolicy | None,
    ctrl: _Controller,
) -> BatchItem:
    try:
        call = engine.prepare(request, stream=False)
    except AiLibError as err:  # nothing was sent: attempts=0
        engine.tag(err)
        return err

    async def attempt(n: int) -> ChatCompletionResponse:
        ctrl.attempts += 1
        async with ctrl.limiter:
            # Pace after taking a permit: a start spaced by the pacer must not
            # then queue behind the limiter and leave in a burst.
            await ctrl.wait_turn()
            resp = await engine.attempt(call, n)
        ctrl.on_success(resp.stats)
        return resp

    try:
        # In a smart batch a Retry-After already paused the whole batch, so the
        # item only backs off on top; a plain batch honours it per item.
        return await retrying(
            policy,
            attempt,
            on_failure=ctrl.on_failure,
            on_retry=ctrl.count_retry,
            retry_after_in_backoff=not ctrl.adaptive,
        )
    except AiLibError as err:
        engine.tag(err)
        return err


async def _guarded_item(
    engine: Engine,
    index: int,
    request: ChatCompletionRequest,
    policy: RetryPolicy | None,
    ctrl: _Controller,
) -> BatchItem:
    """:func:`_run_item`, with any other exception (a bug, not an API failure)
    kept in the item's slot rather than cancelling its siblings."""
    try:
        return await _run_item(engine, request, policy, ctrl)
    except Exception as exc:
        err = AiLibError(
            f"unexpected {type(exc).__name__} in batch item {index}: {exc}",
            provider=engine.provider.id,
        )
        err.__cause__ = exc
        return err


async def run_batch(
    engine: Engine,
    requests: Iterable[ChatCompletionRequest],
    *,
    concurrency: int,
    policy: RetryPolicy | None,
    adaptive: bool,
    maximum: int,
    results: list[BatchItem | None] | None,
    requests_per_minute: float | None = None,
    ratelimit_share: float = 1.0,
) -> BatchResults:
    """Run ``requests`` and return one result per input, in order."""
    items = list(requests)  # AiClient checked 1 <= concurrency <= maximum
    out = BatchResults([None] * len(items))  # type: ignore[list-item]
    slots: list[BatchItem | None] = out if results is None else results  # type: ignore[assignment]
    if results is not None:
        results[:] = [None] * len(items)
    limiter = anyio.CapacityLimiter(concurrency)
    ctrl = _Controller(
        limiter,
        adaptive=adaptive,
        maximum=maximum,
        requests_per_minute=requests_per_minute,
        ratelimit_share=ratelimit_share,
    )
    indices = iter(range(len(items)))
    started = anyio.current_time()

    async def worker() -> None:
        for i in indices:
            slots[i] = await _guarded_item(engine, i, items[i], policy, ctrl)

    workers = min(maximum if adaptive else concurrency, len(items))
    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)

    if results is not None:
        out[:] = results  # type: ignore[assignment]
    ok = sum(1 for r in out if isinstance(r, ChatCompletionResponse))
    out.statistics = ctrl.statistics(
        len(items), ok, len(items) - ok, anyio.current_time() - started
    )
    return out


class BatchStream:
    """Results of a batch as they complete: ``async for index, result in stream``.

    ``index`` is the item's position in the input (0 for the first request the
    input yields), whatever order the results complete in. Memory stays bounded
    whatever the input size: at most ``concurrency`` items (``max_concurrency``
    for a smart stream) are in flight and as many finished results wait for
    you; the input (a list, any iterable or an async iterable) is read only as
    fast as results are taken. Leaving the ``async with`` block early cancels
    the items in flight (and closes an async generator given as input); results
    already taken are yours. If reading the input fails, iteration raises that
    exception after the results that completed before it.

    Attributes:
        submitted: requests taken from the input so far.
        completed: results handed to the channel so far.
    """

    def __init__(
        self,
        engine: Engine,
        requests: Iterable[ChatCompletionRequest]
        | AsyncIterable[ChatCompletionRequest],
        concurrency: int,
        policy: RetryPolicy | None,
        *,
        adaptive: bool = False,
        maximum: int | None = None,
        requests_per_minute: float | None = None,
        ratelimit_share: float = 1.0,
    ) -> None:
        self._engine = engine
        self._requests = requests
        self._slots = concurrency if maximum is None else maximum
        self._policy = policy
        self._ctrl = _Controller(
            anyio.CapacityLimiter(concurrency),
            adaptive=adaptive,
            maximum=self._slots,
            requests_per_minute=requests_per_minute,
            ratelimit_share=ratelimit_share,
        )
        self._tg: anyio.abc.TaskGroup | None = None
        self._entered_in: anyio.TaskInfo | None = None
        self._abandoned = False  # left in another task than the entering one
        self._feed_error: BaseException | None = None
        send, recv = anyio.create_memory_object_stream[tuple[int, BatchItem]](
            self._slots
        )
        self._send = send
        self._recv = recv
        self._started: float | None = None
        self._ended: float | None = None
        self.submitted = 0
        self.completed = 0
        self._succeeded = 0

    @property
    def concurrency(self) -> int:
        """The concurrency limit now (fixed for a plain stream, adapting for a
        smart one)."""
        return self._ctrl.limit

    def statistics(self) -> BatchStatistics:
        """What the stream did so far (all of it once iteration ended).

        ``requests`` counts the requests taken from the input, ``succeeded`` and
        ``failed`` the results completed; ``elapsed`` runs from ``__aenter__`` to
        the end of the input's last result (or to now).
        """
        ctrl = self._ctrl
        if self._started is None:
            elapsed = 0.0
        else:
            end = anyio.current_time() if self._ended is None else self._ended
            elapsed = end - self._started
        return ctrl.statistics(
            self.submitted, self._succeeded, self.completed - self._succeeded, elapsed
        )

    async def __aenter__(self) -> BatchStream:
        self._engine.check_open()
        self._tg = await enter_task_group()
        self._entered_in = anyio.get_current_task()
        self._started = anyio.current_time()
        self._tg.start_soon(self._feed)
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Cancel what is in flight and close the stream.

        Raises:
            ClientStateError: called in another task than the one that entered
                the stream (its items are cancelled all the same), with no
                exception in flight.
        """
        tg = self._tg
        here = anyio.get_current_task()
        entered = self._entered_in
        if tg is not None and entered is not None and here.id != entered.id:
            # The task group belongs to the entering task: exiting it here would
            # corrupt both tasks' cancel scopes (that task's own exit still
            # can). Cancelling it is safe; the feed closes the results channel
            # once the items have ended.
            self._abandoned = True
            tg.cancel_scope.cancel()
            if e is None:
                raise ClientStateError(
                    f"this batch stream was entered in task {entered.name!r} and "
                    f"left in task {here.name!r}: its items are cancelled, but only "
                    "the task that entered it can leave it. Use `async with "
                    "client.chat_completion_batch_stream(...) as results:` around "
                    "the loop that reads the results, in one task",
                    provider=self._engine.provider.id,
                )
            return
        self._tg = None
        try:
            await leave_task_group(tg)
        finally:  # also when an outer cancellation reaches us here
            self._recv.close()

    async def _feed(self) -> None:
        try:
            await self._run_items()
        finally:
            if self._abandoned:  # nobody will read the results: close here
                self._recv.close()

    async def _run_items(self) -> None:
        """Run the input's requests on a pool of ``slots`` worker tasks, each
        taking the next request once it has handed its last result over: no
        task per item, and the input is read only as results are taken."""
        engine, policy, ctrl = self._engine, self._policy, self._ctrl
        requests = self._requests
        if isinstance(requests, AsyncIterable):
            source: AsyncIterator[ChatCompletionRequest] | None = aiter(requests)
            items: Iterator[ChatCompletionRequest] | None = None
        else:
            source, items = None, iter(requests)
        reading = anyio.Lock()  # one reader of an async input at a time
        ended = anyio.Event()  # the input ran out or failed

        def numbered(
            request: ChatCompletionRequest,
        ) -> tuple[int, ChatCompletionRequest]:
            i = self.submitted  # the input's order, whatever the workers' order
            self.submitted += 1
            return i, request

        async def take() -> tuple[int, ChatCompletionRequest] | None:
            if ended.is_set():
                return None
            try:
                if items is not None:
                    return numbered(next(items))
                assert source is not None
                async with reading:
                    if ended.is_set():  # while this worker waited for the lock
                        return None
                    return numbered(await anext(source))
            except (StopIteration, StopAsyncIteration):
                ended.set()
            except Exception as exc:  # the input failed: report it after the results
                ended.set()
                self._feed_error = exc
            return None

        async def worker() -> None:
            while (taken := await take()) is not None:
                i, request = taken
                result = await _guarded_item(engine, i, request, policy, ctrl)
                await self._send.send((i, result))
                self.completed += 1
                if isinstance(result, ChatCompletionResponse):
                    self._succeeded += 1

        try:
            async with self._send, anyio.create_task_group() as tg:
                for _ in range(self._slots):
                    tg.start_soon(worker)
        finally:
            # An async generator left early is closed here, not by the
            # garbage collector.
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    def __aiter__(self) -> BatchStream:
        return self

    async def __anext__(self) -> tuple[int, BatchItem]:
        try:
            return await self._recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):  # closed: abandoned
            if self._ended is None:
                self._ended = anyio.current_time()
            if self._feed_error is not None:
                raise self._feed_error from None
            raise StopAsyncIteration from None


for _cls in (BatchStatistics, BatchResults, BatchStream):
    _cls.__module__ = "ailib_sc"
