"""The JSONL batch engine behind ``ailib-sc batch``.

Theory of operation
-------------------
The :class:`Source` reads the input a line at a time, on demand: each time the
batch verb of the flags' own provider has a free slot, it asks for the next
request (``chat_completion_batch_stream`` over an async iterable), so the
input is read only as fast as requests complete and memory is bounded by the
concurrency, never by the input. On its way to that next request the source
skips the ids the results file already holds, writes an error line for each
bad line, and pushes the lines that name another provider to that provider's
route (a task with its own client and batch, fed through a small channel).
Pulling rather than pushing saves a task switch per line for the common case
of one provider.

Results come back as they complete and the :class:`Writer` writes each as one
line (one ``os.write``). With ``--ordered`` it holds early results until the
lines before them are written, and the source admits no new line while
``--reorder-buffer`` lines are pending, which bounds that buffer too.

``--smart`` runs the same through ``chat_completion_batch_stream_smart``:
results are still written as they complete, while concurrency adapts.

A 401 (and a connection refused before any success) stops the run: those
results are not written, so the rerun after the fix does those lines. SIGINT and
SIGTERM cancel what is in flight; finished results are already written (and
early ones held for ``--ordered`` are written then, out of order).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import msgspec

from .._batch import SMART_POLICY
from .._errors import AuthenticationError, ConfigurationError, ConnectError
from .._types import ChatCompletionResponse
from ._common import CliFailure, ExitCode, failure_for
from ._jsonl import line_id, parse_line, read_lines, write_line
from ._routes import ChannelTaker, Job, Route, RouteOptions

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

    from anyio.abc import TaskGroup

    from .._client import AiClient
    from .._errors import AiLibError
    from .._types import ChatCompletionRequest
    from ._common import ClientSpec
    from ._jsonl import IdSet, Key, LineEncoder
    from ._progress import Progress, RunStats
    from ._routes import Result

__all__ = ["BatchOptions", "Pipeline", "Source", "Writer"]

# Lines skipped (already done) between two checkpoints: a long resume skip
# still lets the progress ticker and Ctrl-C in.
_SKIP_CHECKPOINT = 1024


@dataclass(frozen=True)
class BatchOptions:
    """The ``batch`` flags the engine needs (see ``ailib-sc batch --help``)."""

    concurrency: int = 16
    smart: bool = False
    max_concurrency: int = 64
    ordered: bool = False
    reorder_buffer: int | None = None
    retries: int | None = None  # None: --smart's own default (5 retries)
    requests_per_minute: float | None = None

    @property
    def reorder_limit(self) -> int:
        """Most lines admitted and not yet written, with ``ordered``."""
        if self.reorder_buffer is not None:
            return self.reorder_buffer
        return 4 * (self.max_concurrency if self.smart else self.concurrency)

    def route_options(self) -> RouteOptions:
        retry = None
        if self.smart and self.retries is not None:
            retry = msgspec.structs.replace(SMART_POLICY, max_attempts=self.retries + 1)
        return RouteOptions(
            concurrency=self.concurrency,
            smart=self.smart,
            max_concurrency=self.max_concurrency,
            smart_retry=retry,
            requests_per_minute=self.requests_per_minute,
        )


class Writer:
    """Writes result lines, one ``os.write`` each; with ``ordered``, in input
    order, holding results that came early."""

    def __init__(
        self,
        fd: int,
        encoder: LineEncoder,
        stats: RunStats,
        *,
        ordered: bool,
        limit: int,
    ) -> None:
        self._fd = fd
        self._encoder = encoder
        self._stats = stats
        self._ordered = ordered
        self._limit = max(1, limit)
        self._expected: collections.deque[int] = collections.deque()
        self._early: dict[int, bytes] = {}
        self._room = anyio.Event()

    def has_room(self) -> bool:
        """Whether another line may be admitted now (always, unless ordered)."""
        return not self._ordered or len(self._expected) < self._limit

    async def wait_room(self) -> None:
        """Wait until :meth:`has_room`."""
        while not self.has_room():
            self._room = anyio.Event()
            await self._room.wait()

    def admit(self, lineno: int) -> None:
        """Reserve line ``lineno``'s place in the output order (no-op unless
        ordered); call when :meth:`has_room`."""
        if self._ordered:
            self._expected.append(lineno)

    def put(self, lineno: int, key: Key, result: Result) -> None:
        """Write (or, ordered, hold) the result of line ``lineno``."""
        if isinstance(result, ChatCompletionResponse):
            data = self._encoder.ok(key, result)
            self._stats.add_ok(result)
        else:
            data = self._encoder.error(key, result)
            self._stats.add_error(result)
        if not self._ordered:
            write_line(self._fd, data)
            return
        expected = self._expected
        if expected[0] != lineno:
            self._early[lineno] = data
            return
        write_line(self._fd, data)
        expected.popleft()
        while expected and expected[0] in self._early:
            write_line(self._fd, self._early.pop(expected.popleft()))
        self._room.set()

    def flush_early(self) -> None:
        """Write the held results now, out of order (the run is ending early)."""
        for lineno in sorted(self._early):
            write_line(self._fd, self._early.pop(lineno))
        self._expected.clear()


@dataclass(slots=True)
class _Line:
    """A line read and parsed, waiting for its turn: a job for ``route``, or
    the ``error`` its result line reports."""

    lineno: int
    key: Key
    request: ChatCompletionRequest | None
    route: Route | None
    error: AiLibError | None


class Source:
    """The input, read on demand; see the module docstring."""

    def __init__(self, pipeline: Pipeline, source: BinaryIO) -> None:
        self._pipeline = pipeline
        self._lines: Iterator[tuple[int, bytes]] = read_lines(source)
        self._held: _Line | None = None
        self._exhausted = False  # every line read
        self._ended = False

    def _read(self, budget: int) -> _Line | None:
        """The next line that needs work; None at the end (then
        :attr:`_exhausted`) or after ``budget`` lines skipped as done (time
        for a checkpoint)."""
        p = self._pipeline
        for lineno, raw in self._lines:
            key = line_id(raw, lineno)
            if key in p.done:
                budget -= 1
                if not budget:
                    return None
                continue
            parsed = parse_line(raw, lineno, p.model)
            if parsed.error is not None:
                return _Line(lineno, key, None, None, parsed.error)
            route = p.route(parsed.provider)
            if isinstance(route, ConfigurationError):
                err = ConfigurationError(f"line {lineno}: {route.message}", attempts=0)
                return _Line(lineno, key, None, None, err)
            return _Line(lineno, key, parsed.request, route, None)
        self._exhausted = True
        return None

    def end(self) -> None:
        """No more lines: the other routes finish what they were given."""
        if not self._ended:
            self._ended = True
            self._pipeline.close_channels()

    async def take(self) -> Job | None:
        """The main route's next job (see :class:`~ailib_sc._cli._routes.Taker`)."""
        p, writer = self._pipeline, self._pipeline.writer
        while not self._ended:
            line = self._held
            if line is None:
                line = self._read(_SKIP_CHECKPOINT)
                if line is None and not self._exhausted:
                    await anyio.lowlevel.checkpoint()
                    continue
                if line is None or p.fatal is not None:
                    break
                self._held = line
            if not writer.has_room():
                await writer.wait_room()
                continue
            self._held = None
            writer.admit(line.lineno)
            if line.error is not None:
                writer.put(line.lineno, line.key, line.error)
                continue
            assert line.request is not None
            assert line.route is not None
            job = Job(line.lineno, line.key, line.request)
            if line.route is p.main:
                return job
            channel = line.route.taker
            assert isinstance(channel, ChannelTaker)
            await channel.send.send(job)
        self.end()
        return None


class Pipeline:
    """One run of ``ailib-sc batch`` over an opened input and results file."""

    def __init__(
        self,
        *,
        spec: ClientSpec,
        client: AiClient,
        model: str,
        source: BinaryIO,
        done: IdSet,
        writer: Writer,
        stats: RunStats,
        options: BatchOptions,
        progress: Progress | None,
    ) -> None:
        self.spec = spec
        self.model = model
        self.done = done
        self.writer = writer
        self.stats = stats
        self.progress = progress
        self.fatal: CliFailure | None = None
        self.scope = anyio.CancelScope()
        self._route_options = options.route_options()
        self.source = Source(self, source)
        self.main = self._new_route(client, self.source)
        self._routes: dict[str, Route | ConfigurationError] = {}
        self._tg: TaskGroup | None = None

    def _new_route(self, client: AiClient, taker: Source | ChannelTaker) -> Route:
        return Route(
            client, taker, sink=self, options=self._route_options, stats=self.stats
        )

    async def run(self) -> None:
        """Send every pending line and write its result; returns when all are
        written, or early after :attr:`scope` was cancelled (interrupt) or a
        fatal error (:attr:`fatal`)."""
        try:
            async with anyio.create_task_group() as outer:
                if self.progress is not None:
                    outer.start_soon(self._tick, self.progress)
                with self.scope:
                    async with anyio.create_task_group() as tg:
                        self._tg = tg
                        try:
                            await self.main.run()
                        finally:
                            self.source.end()
                outer.cancel_scope.cancel()
        finally:
            self.writer.flush_early()  # nothing when the run completed

    async def _tick(self, progress: Progress) -> None:
        while True:
            await anyio.sleep(progress.interval)
            progress.update(self.stats)

    def deliver(self, route: Route, job: Job, result: Result) -> None:
        """A route's result: written, or, for a run-ending error, kept out of
        the file (the rerun does that line) while the run stops."""
        if isinstance(result, ChatCompletionResponse):
            route.successes += 1
        elif isinstance(result, AuthenticationError) or (
            isinstance(result, ConnectError) and not route.successes
        ):
            self._stop(failure_for(result, route.client.provider))
            return
        self.writer.put(job.lineno, job.key, result)

    def _stop(self, failure: CliFailure) -> None:
        if self.fatal is None:
            self.fatal = failure
            self.scope.cancel()

    def route(self, provider: str | None) -> Route | ConfigurationError:
        """The route for a line naming ``provider`` (None: the flags' own),
        started on first use; a ConfigurationError for a provider that cannot
        be used (the line's error). A missing key stops the run."""
        if provider is None:
            return self.main
        route = self._routes.get(provider)
        if route is None:
            try:
                client = self.spec.client(provider)
            except CliFailure as exc:
                if exc.code is ExitCode.AUTH:
                    self._stop(exc)
                route = ConfigurationError(
                    exc.message.partition(": ")[2] or exc.message
                )
            else:
                route = self._new_route(client, ChannelTaker())
                assert self._tg is not None
                self._tg.start_soon(route.run)
            self._routes[provider] = route
        return route

    def close_channels(self) -> None:
        for route in self._routes.values():
            if isinstance(route, Route) and isinstance(route.taker, ChannelTaker):
                route.taker.send.close()
