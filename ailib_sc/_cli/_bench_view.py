"""The live view of ``ailib-sc bench`` on stderr, drawn from the engine's
:class:`~ailib_sc.bench.BenchmarkProgress`, which a ticker polls.

With ``rich`` (the ``cli`` extra) on a terminal: one bar per point, the points
that finished kept above the running one. Otherwise plain ``bench:`` lines,
every two seconds and at the end of each point. Each says the point (its
position, name and phase), requests sent (of those expected), done, failed and
in flight, the time elapsed (of the point's ``--duration``) and the rate of
finished requests (against the target rate, or the concurrency).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from ._progress import pick_display

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from ..bench import BenchmarkProgress

__all__ = ["BenchView", "make_view", "status"]


def _elapsed_text(p: BenchmarkProgress, elapsed: float) -> str:
    if p.duration is not None:
        return f"{min(elapsed, p.duration):.1f}/{p.duration:g} s"
    return f"{elapsed:.1f} s"


def status(p: BenchmarkProgress, elapsed: float, phase: str = "") -> tuple[str, str]:
    """The point (``2/10 constant@4``) and where it is, in words (``measure;
    sent 9/40, done 8, errors 0, in flight 1; 2.1/10 s; 3.81 req/s of 4``)."""
    name = f"{p.point_index + 1}/{p.points} {p.point}"
    sent = f"sent {p.sent}" + (f"/{p.expected}" if p.expected is not None else "")
    rate = f"{p.current_rate:.2f} req/s"
    if p.target_rate is not None:
        rate += f" of {p.target_rate:g}"
    elif p.concurrency is not None:
        rate += f", concurrency {p.concurrency}"
    info = (
        f"{phase or p.phase}; {sent}, done {p.done}, errors {p.errors}, in flight "
        f"{p.in_flight}; {_elapsed_text(p, elapsed)}; {rate}"
    )
    return name, info


class BenchView(Protocol):
    """A progress display: refreshed by a ticker, closed at the end;
    ``observe`` is the engine's progress callback."""

    interval: float

    def observe(self, p: BenchmarkProgress) -> None: ...

    def update(self, p: BenchmarkProgress) -> None: ...

    def close(self, p: BenchmarkProgress, *, stopped: bool) -> None: ...


class _Clock:
    """What the ticker cannot see by polling: when each point started (the
    engine's ``elapsed`` moves only when a request is sent or ends), and the
    last numbers of each point that finished (the next one resets them).

    :meth:`observe` is the engine's callback, run after every change: cheap."""

    def __init__(self) -> None:
        self.key: tuple[int, str] = (-1, "")
        self.start = time.monotonic()
        self.ended: list[tuple[str, str]] = []  # (name, info), not yet shown
        self._finished = 0

    def observe(self, p: BenchmarkProgress) -> None:
        key = (p.point_index, p.point)
        if key != self.key:
            self.key = key
            self.start = time.monotonic() - p.elapsed
        if len(p.finished_points) > self._finished:
            self._finished = len(p.finished_points)
            self.ended.append(status(p, p.elapsed, "done"))

    def elapsed(self, p: BenchmarkProgress) -> float:
        return max(p.elapsed, time.monotonic() - self.start)


class PlainView:
    """A ``bench:`` line on stderr every two seconds, one when a point ends,
    and one at the end."""

    interval = 2.0

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._clock = _Clock()
        self.observe = self._clock.observe

    def _print(self, text: str) -> None:
        print(f"bench: {text}", file=self._stream, flush=True)

    def update(self, p: BenchmarkProgress) -> None:
        ended = self._clock.ended
        for name, info in ended:
            self._print(f"{name}: {info}")
        ended.clear()
        if p.point and p.point not in p.finished_points:
            name, info = status(p, self._clock.elapsed(p))
            self._print(f"{name}: {info}")

    def close(self, p: BenchmarkProgress, *, stopped: bool) -> None:
        self.update(p)
        end = "stopped" if stopped else "done"
        self._print(f"{end}: {len(p.finished_points)} of {p.points} points finished")


class RichView:
    """One live bar per point on a terminal (``rich``), the points that
    finished kept above the running one."""

    interval = 0.25

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            TextColumn("{task.fields[info]}"),
            console=Console(file=stream),
            auto_refresh=False,  # refreshed by our ticker, no thread
            transient=False,
        )
        self._tasks: dict[str, Any] = {}  # point name -> rich task id
        self._clock = _Clock()
        self.observe = self._clock.observe
        self._bar.start()

    def _task(self, name: str) -> Any:
        task = self._tasks.get(name)
        if task is None:
            task = self._tasks[name] = self._bar.add_task(name, total=None, info="")
        return task

    def update(self, p: BenchmarkProgress) -> None:
        ended = self._clock.ended
        for name, info in ended:
            self._bar.update(self._task(name), total=1, completed=1, info=info)
        ended.clear()
        if p.point and p.point not in p.finished_points:
            elapsed = self._clock.elapsed(p)
            name, info = status(p, elapsed)
            if p.duration is not None:
                total: float | None = p.duration
                completed = min(elapsed, p.duration)
            elif p.expected is not None:
                total, completed = float(p.expected), float(p.done)
            else:
                total, completed = None, float(p.done)
            self._bar.update(
                self._task(name), total=total, completed=completed, info=info
            )
        self._bar.refresh()

    def close(self, p: BenchmarkProgress, *, stopped: bool) -> None:
        self.update(p)
        if stopped and p.point and p.point not in p.finished_points:
            name, info = status(p, self._clock.elapsed(p), "stopped")
            self._bar.update(self._task(name), info=info)
        self._bar.refresh()
        self._bar.stop()


def make_view(forced: bool | None, *, quiet: bool) -> BenchView | None:
    """``bench``'s display (see :func:`~ailib_sc._cli._progress.pick_display`)."""
    rich: Callable[[TextIO], BenchView] = RichView
    return pick_display(forced, quiet=quiet, rich=rich, plain=PlainView)
