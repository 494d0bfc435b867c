"""Live progress of a benchmark, for a terminal view or a log line.

:class:`BenchmarkProgress` is a plain object that :func:`run_benchmark`
updates in place, from the benchmark's own tasks, as requests are sent and
finish. A caller either polls it from another task (the ``ailib-sc bench``
view redraws a few times a second) or gives it a callback, which is called
after every change, synchronously, in the event loop: keep it cheap, and
never block in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["BenchmarkProgress"]


class BenchmarkProgress:
    """Where a running benchmark is; every attribute is read-only for callers.

    Pass one to :func:`run_benchmark` (``progress=``), or pass a callable and
    read the object it receives.

    Args:
        callback: called with this object after every change (synchronously,
            in the event loop: keep it cheap); None, the default: poll it.

    Attributes:
        point: the current point's name (``"constant@10"``); ``""`` before
            the first.
        point_index: its position, from 0.
        points: how many points the profile runs.
        phase: ``"warmup"``, ``"measure"`` or ``"cooldown"`` for time-based
            phases, by the time elapsed; ``"measure"`` otherwise; ``"done"``
            once the benchmark has finished.
        elapsed: seconds since the point started, as of the last update.
        duration: the point's time limit in seconds, or None.
        expected: how many requests the point should send, if known.
        sent: requests sent in this point.
        done: requests finished in this point (successful or not).
        errors: requests of this point that failed.
        in_flight: requests sent and not finished.
        target_rate: the point's rate (requests/s), or None.
        concurrency: the point's concurrency (or cap), or None.
        finished_points: names of the points already done.
    """

    def __init__(
        self, callback: Callable[[BenchmarkProgress], object] | None = None
    ) -> None:
        self.callback = callback
        self.point = ""
        self.point_index = 0
        self.points = 0
        self.phase = "measure"
        self.elapsed = 0.0
        self.duration: float | None = None
        self.expected: int | None = None
        self.sent = 0
        self.done = 0
        self.errors = 0
        self.in_flight = 0
        self.target_rate: float | None = None
        self.concurrency: int | None = None
        self.finished_points: list[str] = []
        self._warmup_end: float | None = None
        self._cooldown_start: float | None = None

    @property
    def current_rate(self) -> float:
        """Requests finished per second in this point so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def __repr__(self) -> str:
        return (
            f"<BenchmarkProgress {self.point or '-'} {self.point_index + 1}/"
            f"{self.points} {self.phase} sent={self.sent} done={self.done} "
            f"errors={self.errors} in_flight={self.in_flight}>"
        )

    # -- updates from the runner (not for callers) ------------------------------

    def start_point(
        self,
        *,
        name: str,
        index: int,
        points: int,
        duration: float | None,
        expected: int | None,
        target_rate: float | None,
        concurrency: int | None,
        warmup_end: float | None,
        cooldown_start: float | None,
    ) -> None:
        """A new point begins (called by :func:`run_benchmark`)."""
        self.point, self.point_index, self.points = name, index, points
        self.duration, self.expected = duration, expected
        self.target_rate, self.concurrency = target_rate, concurrency
        self._warmup_end, self._cooldown_start = warmup_end, cooldown_start
        self.elapsed = 0.0
        self.sent = self.done = self.errors = self.in_flight = 0
        self.phase = "warmup" if warmup_end else "measure"
        self._changed()

    def request_sent(self, elapsed: float) -> None:
        """A request went out, ``elapsed`` seconds into the point."""
        self.sent += 1
        self.in_flight += 1
        self._tick(elapsed)

    def request_done(self, elapsed: float, *, failed: bool) -> None:
        """A request finished (``failed``: with an error)."""
        self.done += 1
        self.in_flight -= 1
        if failed:
            self.errors += 1
        self._tick(elapsed)

    def end_point(self) -> None:
        """The current point finished."""
        self.finished_points.append(self.point)
        self._changed()

    def finish(self) -> None:
        """The benchmark finished."""
        self.phase = "done"
        self._changed()

    def _tick(self, elapsed: float) -> None:
        self.elapsed = elapsed
        if self._cooldown_start is not None and elapsed >= self._cooldown_start:
            self.phase = "cooldown"
        elif self._warmup_end is not None and elapsed < self._warmup_end:
            self.phase = "warmup"
        else:
            self.phase = "measure"
        self._changed()

    def _changed(self) -> None:
        if self.callback is not None:
            self.callback(self)


BenchmarkProgress.__module__ = "ailib_sc.bench"
