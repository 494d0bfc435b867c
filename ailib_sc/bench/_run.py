"""``run_benchmark``: a profile's points, one after the other, into one report.

Theory of operation: the profile expands into points (``_profile``); each
runs on its own (``_runner.PointRunner``) with a fresh pass over the requests,
so every point sends the same sequence. A sweep decides its rate points from
the request throughput its synchronous and throughput points achieved. The
requests are read lazily and reused from the start when a point needs more
than there are; a one-shot iterator is kept in memory to be replayed. A
``stop`` event abandons the point running when it is set and returns the
points that finished, marked ``interrupted``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING

import anyio
import sniffio

from .. import __version__
from .._errors import AiLibError, ClientStateError, ConfigurationError
from .._types import ClientState
from ._profile import FLAGS, fixed_points, phase_limits, rate_point, sweep_rates
from ._progress import BenchmarkProgress
from ._report import BenchmarkConfig, BenchmarkReport
from ._runner import PointRunner, scheduled_count
from ._synthetic import SyntheticRequests

if TYPE_CHECKING:
    import ailib_sc

    from .._types import ChatCompletionRequest
    from ._profile import Point, Profile
    from ._records import RunReport

__all__ = ["RequestSource", "run_benchmark"]


class RequestSource:
    """Hands each point an endless iterator over ``requests``, from the start.

    Raises:
        ConfigurationError: ``requests`` holds nothing.
    """

    def __init__(self, requests: Iterable[ChatCompletionRequest]) -> None:
        self._requests = requests
        self._once: Iterator[ChatCompletionRequest] | None = None
        self._cache: list[ChatCompletionRequest] = []
        self._passes = 0
        if iter(requests) is requests:  # a one-shot iterator: replay from memory
            self._once = iter(requests)
            first = next(self._once, None)
            if first is not None:
                self._cache.append(first)
        elif next(iter(requests), None) is not None:
            return
        if not self._cache:
            raise ConfigurationError(
                "run_benchmark: requests is empty; give at least one "
                "ChatCompletionRequest, or a SyntheticRequests"
            )

    def describe(self) -> str:
        """What the requests are, for the report's config."""
        requests = self._requests
        if isinstance(requests, SyntheticRequests):
            return repr(requests)
        if isinstance(requests, Sized):
            return f"{type(requests).__name__} of {len(requests)} requests"
        return type(requests).__name__

    def cycle(self) -> Iterator[ChatCompletionRequest]:
        """Every request in order, then again from the first, forever."""
        if self._once is None:
            while True:
                before = self._passes
                for request in self._requests:
                    self._passes += 1
                    yield request
                if self._passes == before:  # an iterable that ran dry
                    raise ConfigurationError(
                        "run_benchmark: requests gave nothing on a second pass; "
                        "pass a list, or an iterable that can be read again"
                    )
        yield from self._cache
        for request in self._once:
            self._cache.append(request)
            yield request
        while True:
            yield from self._cache


class _StopOn:
    """``on_error`` for the points: when ``predicate`` names a failure, sets
    ``stop`` and cancels the running point at once (before its next send),
    where waiting for the watcher task would let another request out."""

    def __init__(self, predicate: Callable[[AiLibError], bool], stop: anyio.Event):
        self.predicate = predicate
        self.stop = stop
        self.scope: anyio.CancelScope | None = None

    def __call__(self, exc: AiLibError) -> None:
        if self.predicate(exc):
            self.stop.set()
            if self.scope is not None:
                self.scope.cancel()


async def run_benchmark(
    client: ailib_sc.AiClient,
    profile: Profile,
    requests: Iterable[ChatCompletionRequest],
    *,
    progress: BenchmarkProgress | Callable[[BenchmarkProgress], object] | None = None,
    stop: anyio.Event | None = None,
    stop_on: Callable[[AiLibError], bool] | None = None,
) -> BenchmarkReport:
    """Load-test ``client``'s endpoint with ``profile`` and report what happened.

    Every request is streamed (usage is asked for where the wire family needs
    a flag: OpenAI's ``stream_options.include_usage``, which the client
    always sends), so each record has its time to first token and the
    arrival of every content chunk. Failed requests are counted by error
    class, never fatal. See ``docs/explanation/benchmark-metrics.md`` for
    the definitions.

    Args:
        client: an open client (inside ``async with``); its connection
            options (HTTP/2, pool size, ``max_concurrency``, retry policy)
            apply to every request. Keep retries off to measure the endpoint.
        profile: the load and the limits of each point.
        requests: the requests to send, reused from the first when a point
            needs more: a list (e.g. read from a JSONL file), any iterable,
            or :class:`SyntheticRequests`.
        progress: a :class:`BenchmarkProgress` to update in place (poll it
            from another task), or a callable it is given to after every
            change. None: no progress.
        stop: an event that ends the run early when set (from any task of
            the same event loop): the point running then ends at once, its
            requests in flight cancelled (recorded as ``cancelled``), no later
            point runs, and the report says ``interrupted=True``, as does the
            point that was running (its :class:`RunReport` holds what it did
            until then). None (the default): the run goes to its end.
        stop_on: called with the error of each failed request, synchronously
            in the event loop (keep it cheap); returning True stops the run as
            ``stop`` does (the CLI stops on a refused key this way). None: no
            failure stops the run.

    Returns:
        A :class:`BenchmarkReport` with one :class:`RunReport` per point run
        (after a stop, the points finished and the one interrupted).

    Raises:
        ClientStateError: ``client`` is not open.
        ConfigurationError: ``requests`` is empty; or the profile has neither
            ``duration`` nor ``max_requests`` and ``requests`` has no length;
            or its warm-up and cool-down leave nothing to measure.

    Cancellation: every request in flight is cancelled and the call raises;
    there is no partial report (set ``stop`` instead to get one).
    """
    if client.state is not ClientState.OPEN:
        raise ClientStateError(
            "run_benchmark needs an open client: call it inside "
            "`async with AiClient(...) as client:`"
        )
    tracker = (
        progress
        if isinstance(progress, BenchmarkProgress)
        else BenchmarkProgress(progress)
    )
    source = RequestSource(requests)
    max_requests = profile.max_requests
    if profile.duration is None and max_requests is None:
        if not isinstance(requests, Sized):
            raise ConfigurationError(
                f"Profile: give duration ({FLAGS['duration']}) or max_requests "
                f"({FLAGS['max_requests']}): the requests have no end to stop at"
            )
        max_requests = len(requests)
    limits = phase_limits(profile, max_requests)
    config = BenchmarkConfig(
        profile=profile,
        provider=client.provider.id,
        base_url=client.base_url,
        requests=source.describe(),
        backend=sniffio.current_async_library(),
        version=__version__,
        started_at=time.time(),
    )
    total = profile.points()
    runs: list[RunReport] = []

    async def run(point: Point) -> RunReport:
        duration = profile.duration
        expected = max_requests
        if point.rate is not None and duration is not None:
            # k/rate for k >= 1 before the duration: 0.5 s at 20/s is 9, not 10.
            expected = scheduled_count(
                point.kind, point.rate, profile.seed, duration, max_requests
            )
        tracker.start_point(
            name=point.name,
            index=len(runs),
            points=total,
            duration=duration,
            expected=expected,
            target_rate=point.rate,
            concurrency=point.concurrency,
            warmup_end=limits.warmup_seconds,
            cooldown_start=None
            if limits.cooldown_seconds is None or duration is None
            else duration - limits.cooldown_seconds,
        )
        runner = current[0] = PointRunner(
            client,
            point,
            source.cycle(),
            duration=duration,
            max_requests=max_requests,
            limits=limits,
            seed=profile.seed,
            progress=tracker,
            on_error=on_error,
        )
        report = await runner.run()
        current[0] = None
        runs.append(report)
        tracker.end_point()
        return report

    notes: list[str] = []
    current: list[PointRunner | None] = [None]  # the point running now
    on_error = None
    if stop_on is not None:
        stop = stop or anyio.Event()
        on_error = _StopOn(stop_on, stop)

    async def run_all() -> None:
        for point in fixed_points(profile):
            await run(point)
        if profile.kind == "sweep":
            synchronous = runs[0].aggregates.request_throughput
            throughput = runs[1].aggregates.request_throughput
            if synchronous <= 0 and throughput <= 0 and not profile.rates:
                notes.append(
                    "sweep: neither the synchronous nor the throughput point had "
                    "a successful request, so there are no rates to sweep"
                )
            arrivals, cap = profile.sweep_arrivals, profile.max_concurrency
            for rate in sweep_rates(profile, synchronous, throughput):
                await run(rate_point(arrivals, rate, cap))

    finished = False
    if stop is None:
        await run_all()
        finished = True
    else:

        async def watch(event: anyio.Event, scope: anyio.CancelScope) -> None:
            await event.wait()
            scope.cancel()

        # The points run in this task; the watcher cancels only this group's
        # scope, so an outer cancellation still propagates.
        async with anyio.create_task_group() as tg:
            if on_error is not None:
                on_error.scope = tg.cancel_scope
            tg.start_soon(watch, stop, tg.cancel_scope)
            await run_all()
            finished = True
            tg.cancel_scope.cancel()
    interrupted = not finished
    runner = current[0]
    if interrupted and runner is not None:
        partial = runner.interrupted_report()
        if partial is not None:
            runs.append(partial)
    tracker.finish()
    warnings = [f"{r.name}: {w}" for r in runs for w in r.warnings] + notes
    return BenchmarkReport(
        config=config, runs=runs, warnings=warnings, interrupted=interrupted
    )


run_benchmark.__module__ = "ailib_sc.bench"
