"""One benchmark point: send on schedule, time every chunk, keep a record each.

Theory of operation
-------------------
A point runs inside a cancel scope whose deadline is its ``duration``; when it
fires, the sender and every request in flight are cancelled, and those
requests are recorded as ``cancelled``. Each request runs in a task of its own
(:meth:`PointRunner.send`): it notes ``sent``, streams the reply, notes the
headers and each content chunk as they arrive, and appends one
:class:`RequestRecord`. An :class:`~ailib_sc.AiLibError` becomes an error
record; nothing else is caught, so a bug stops the benchmark.

Rate points (``constant``, ``poisson``) are open loops: one sender task
computes every arrival in absolute time from the point's start (``t0 + k /
rate``, or ``t0`` plus a running sum of seeded exponential gaps) and sleeps
*until* it with ``anyio.sleep_until``, never *for* a gap after a send, so a
slow send delays only itself and the lag (``sent - due``) is measured, not
compounded. A ``max_concurrency`` cap makes the sender wait for a free slot
after the arrival is due; the wait shows as lag. Closed loops
(``synchronous``, ``concurrent``, ``throughput``) run one worker task per
slot, each sending its next request as soon as its last one ended (``due`` is
that moment).

Every time comes from the backend's clock (``anyio.current_time()``), looked
up once per point, so trio's ``MockClock`` and the test suite's virtual
asyncio loop make a run exact and instant.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import msgspec

from .._errors import AiLibError
from ._records import RequestRecord, RunReport
from ._stats import aggregate, classify

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from anyio.abc import TaskGroup

    from .._chunks import ChatCompletionChunk
    from .._client import AiClient
    from .._types import ChatCompletionRequest, Usage
    from ._profile import PhaseLimits, Point
    from ._progress import BenchmarkProgress

__all__ = ["LAG_LIMIT", "RATE_SHORTFALL", "PointRunner", "arrivals", "scheduled_count"]

#: Scheduling lag (seconds) above which a point's p99 raises a warning.
LAG_LIMIT = 0.005
#: A rate point whose sends fell more than this fraction behind warns.
RATE_SHORTFALL = 0.02
_MESSAGE_LIMIT = 300


def _clock() -> Callable[[], float]:
    """The running backend's ``current_time``, looked up once: the public
    ``anyio.current_time()`` asks sniffio which backend runs on every call."""
    try:
        from anyio._core._eventloop import get_async_backend
    except ImportError:  # pragma: no cover - a future anyio
        return anyio.current_time
    now: Callable[[], float] = get_async_backend().current_time
    return now


def arrivals(kind: str, rate: float, seed: int) -> Iterator[float]:
    """Arrival times (seconds from the point's start) of a rate point, as
    GuideLLM schedules them: ``constant`` sends the k-th request (from 1) at
    ``k / rate``; ``poisson`` adds ``random.Random(seed).expovariate(rate)``
    gaps, starting from 0."""
    if kind == "constant":
        k = 1
        while True:
            yield k / rate
            k += 1
    rng = random.Random(seed)
    t = 0.0
    while True:
        t += rng.expovariate(rate)
        yield t


def scheduled_count(
    kind: str, rate: float, seed: int, duration: float | None, limit: int | None
) -> int:
    """How many arrivals of a rate point fall before ``duration`` (seconds),
    at most ``limit``: exact for ``constant`` and for a seeded ``poisson``.

    Raises:
        ValueError: neither ``duration`` nor ``limit`` bounds the count.
    """
    if duration is None and limit is None:
        raise ValueError("an endless schedule has no count")
    end = math.inf if duration is None else duration
    top = math.inf if limit is None else limit
    count = 0
    for offset in arrivals(kind, rate, seed):
        if count >= top or offset >= end:
            break
        count += 1
    return count


def _has_content(chunk: ChatCompletionChunk) -> bool:
    for choice in chunk.choices:
        d = choice.delta
        if d.content or d.reasoning_content or d.tool_calls or d.function_call:
            return True
    return False


class PointRunner:
    """Runs one point of a profile against ``client`` and reports it.

    Args:
        client: an open client.
        point: the point (kind, rate, concurrency).
        requests: an endless iterator of requests for this point.
        duration: the point's time limit in seconds, or None.
        max_requests: the most requests it sends, or None.
        limits: its warm-up and cool-down.
        seed: seeds Poisson arrivals.
        progress: updated as requests go out and finish.
        on_error: called with each failed request's error, synchronously in
            the event loop, before its record is kept.
    """

    def __init__(
        self,
        client: AiClient,
        point: Point,
        requests: Iterator[ChatCompletionRequest],
        *,
        duration: float | None,
        max_requests: int | None,
        limits: PhaseLimits,
        seed: int,
        progress: BenchmarkProgress,
        on_error: Callable[[AiLibError], object] | None = None,
    ) -> None:
        self._client = client
        self._point = point
        self._requests = requests
        self._duration = duration
        self._max_requests = max_requests
        self._limits = limits
        self._seed = seed
        self._progress = progress
        self._on_error = on_error
        self._now = _clock()
        self._cancelled = anyio.get_cancelled_exc_class()
        self._t0 = 0.0
        self._claimed = 0
        self._records: list[RequestRecord] = []

    # -- running -----------------------------------------------------------------

    async def run(self) -> RunReport:
        """Run the point to its end and return its report.

        Cancellation: cancels every request in flight and propagates; there is
        no report.
        """
        point = self._point
        self._t0 = t0 = self._now()
        deadline = math.inf if self._duration is None else t0 + self._duration
        with anyio.CancelScope(deadline=deadline) as scope:
            async with anyio.create_task_group() as tg:
                if point.rate is not None:
                    await self._open_loop(tg, point.rate)
                else:
                    for _ in range(point.concurrency or 1):
                        tg.start_soon(self._worker)
        elapsed = self._now() - t0
        if scope.cancelled_caught and self._duration is not None:
            elapsed = self._duration
        return self._report(elapsed)

    def interrupted_report(self) -> RunReport | None:
        """The report of a point whose :meth:`run` was cancelled: the requests
        that finished, and those in flight as ``cancelled``, up to now
        (``interrupted=True``); None if none had been sent."""
        if not self._records:
            return None
        elapsed = self._now() - self._t0
        if self._duration is not None:
            elapsed = min(elapsed, self._duration)
        return msgspec.structs.replace(self._report(elapsed), interrupted=True)

    def _claim(self) -> int | None:
        """The next request's index, or None once ``max_requests`` went out."""
        index = self._claimed
        if self._max_requests is not None and index >= self._max_requests:
            return None
        self._claimed = index + 1
        return index

    async def _worker(self) -> None:
        now = self._now
        due = now()
        while (index := self._claim()) is not None:
            await self.send(index, due, next(self._requests), None)
            due = now()
            # A request refused before any I/O never checkpoints: let the
            # deadline land anyway.
            await anyio.lowlevel.checkpoint()

    async def _open_loop(self, tg: TaskGroup, rate: float) -> None:
        now, t0 = self._now, self._t0
        cap = self._point.concurrency
        slots = anyio.Semaphore(cap) if cap is not None else None
        duration = self._duration
        for offset in arrivals(self._point.kind, rate, self._seed):
            if duration is not None and offset >= duration:
                return
            index = self._claim()
            if index is None:
                return
            due = t0 + offset
            if now() < due:
                await anyio.sleep_until(due)
            if slots is not None:
                await slots.acquire()
            tg.start_soon(self.send, index, due, next(self._requests), slots)

    async def send(
        self,
        index: int,
        due: float,
        request: ChatCompletionRequest,
        slots: anyio.Semaphore | None,
    ) -> None:
        """Send one request, stream its reply, and keep its record."""
        now, t0 = self._now, self._t0
        sent = now()
        self._progress.request_sent(sent - t0)
        headers: float | None = None
        times: list[float] = []
        usage: Usage | None = None
        failure: AiLibError | None = None
        status = "ok"
        try:
            async with self._client.chat_completion_stream(request) as stream:
                headers = now()
                # A loop, not a comprehension: an error mid-stream keeps the
                # times that arrived before it.
                async for chunk in stream:
                    if _has_content(chunk):
                        times.append(now())  # noqa: PERF401
                end = now()
            usage = stream.usage
        except AiLibError as exc:
            end = now()
            failure = exc
            status = "error"
            if self._on_error is not None:
                self._on_error(exc)
        except self._cancelled:
            # The duration ran out: keep what arrived, then let it unwind.
            self._keep(index, "cancelled", due, sent, headers, times, now(), None, None)
            raise
        finally:
            if slots is not None:
                slots.release()
        self._keep(index, status, due, sent, headers, times, end, usage, failure)

    def _keep(
        self,
        index: int,
        status: str,
        due: float,
        sent: float,
        headers: float | None,
        times: list[float],
        end: float,
        usage: Usage | None,
        failure: AiLibError | None,
    ) -> None:
        t0 = self._t0
        chunks = len(times)
        if usage is not None and (usage.completion_tokens > 0 or chunks == 0):
            output, source = usage.completion_tokens, "usage"
        else:
            output, source = chunks, "chunks"
        record = RequestRecord(
            index=index,
            status=status,  # type: ignore[arg-type]
            due=due - t0,
            sent=sent - t0,
            headers=None if headers is None else headers - t0,
            first_token=times[0] - t0 if times else None,
            end=end - t0,
            token_times=[t - t0 for t in times],
            output_tokens=output,
            token_source=source,  # type: ignore[arg-type]
            prompt_tokens=None if usage is None else usage.prompt_tokens,
            error_class=None if failure is None else type(failure).__name__,
            error_status=None if failure is None else failure.status,
            error_message=None if failure is None else failure.message[:_MESSAGE_LIMIT],
        )
        self._records.append(record)
        self._progress.request_done(end - t0, failed=failure is not None)

    # -- reporting ---------------------------------------------------------------

    def _scheduled(self, sent: int) -> int:
        """Requests the schedule asked for before the point ended."""
        point = self._point
        if point.rate is None:
            return sent
        return scheduled_count(
            point.kind, point.rate, self._seed, self._duration, self._max_requests
        )

    def _report(self, elapsed: float) -> RunReport:
        point = self._point
        records, start, end = classify(
            self._records, self._limits, elapsed=elapsed, duration=self._duration
        )
        aggregates = aggregate(records, start, end)
        sent = len(records)
        last_sent = max((r.sent for r in records), default=0.0)
        last_due = max((r.due for r in records), default=0.0)
        achieved = sent / last_sent if last_sent > 0 else 0.0
        scheduled = self._scheduled(sent)
        warnings: list[str] = []
        lag = aggregates.lag
        lag_warning = lag.count > 0 and lag.p99 > LAG_LIMIT
        if lag_warning:
            warnings.append(
                f"p99 scheduling lag is {lag.p99 * 1000:.1f} ms, over "
                f"{LAG_LIMIT * 1000:g} ms: the client did not keep to the schedule "
                "(lower the rate, or free the CPU)"
            )
        rate_warning = False
        if point.rate is not None:
            if sent < scheduled:
                rate_warning = True
                warnings.append(
                    f"only {sent} of the {scheduled} scheduled requests went out "
                    f"({achieved:.2f}/s of {point.rate:g}/s): the client fell "
                    "behind, or max_concurrency held them back"
                )
            elif last_sent > 0 and last_due / last_sent < 1 - RATE_SHORTFALL:
                rate_warning = True
                warnings.append(
                    f"requests went out at {achieved:.2f}/s, behind the schedule's "
                    f"{sent / last_due:.2f}/s: the client fell behind, or "
                    "max_concurrency held them back"
                )
        if aggregates.requests and aggregates.successful == 0 and aggregates.errors:
            failed = next(r for r in records if r.status == "error")
            warnings.append(
                f"every measured request failed, e.g. {failed.error_class}: "
                f"{failed.error_message}"
            )
        return RunReport(
            name=point.name,
            kind=point.kind,
            target_rate=point.rate,
            concurrency=point.concurrency,
            elapsed=elapsed,
            measure_start=start,
            measure_end=end,
            scheduled=scheduled,
            sent=sent,
            achieved_rate=achieved,
            lag_warning=lag_warning,
            rate_warning=rate_warning,
            warnings=warnings,
            aggregates=aggregates,
            records=records,
        )
