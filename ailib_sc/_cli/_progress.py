"""Counting a batch run, showing its progress on stderr, and its summary.

Progress goes to stderr: with ``rich`` (the ``cli`` extra) as a live bar when
stderr is a terminal, otherwise as plain ``progress:`` lines (``--progress``
forces them on where stderr is no terminal). Latency percentiles come from a
histogram of ``CallStats.latency`` with 1% wide buckets: constant memory
whatever the batch size, percentiles within 1%.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from .._errors import AiLibError
    from .._types import ChatCompletionResponse

__all__ = ["LatencyHistogram", "Progress", "RunStats", "make_progress", "pick_display"]

T = TypeVar("T")

_GROWTH = math.log(1.01)
_FLOOR = 1e-6  # seconds: the first bucket's lower edge


class LatencyHistogram:
    """Latencies in buckets 1% wide, from 1 us up."""

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0

    def add(self, seconds: float) -> None:
        bucket = int(math.log(max(seconds, _FLOOR) / _FLOOR) / _GROWTH)
        self._counts[bucket] = self._counts.get(bucket, 0) + 1
        self.count += 1

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile (0-100) in seconds: the middle of its bucket."""
        if not self.count:
            return None
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for bucket in sorted(self._counts):
            seen += self._counts[bucket]
            if seen >= rank:
                return _FLOOR * math.exp((bucket + 0.5) * _GROWTH)
        raise AssertionError("unreachable")  # pragma: no cover


class RunStats:
    """What a batch run did so far.

    Attributes:
        total: lines this run has to do (after the ones already done).
        skipped: lines found done in the results file.
        ok / failed: lines written this run, by outcome.
        kept_failed: error lines kept from earlier runs (not retried).
        concurrency: the smart batch's concurrency, when it adapts.
    """

    def __init__(self, *, total: int, skipped: int, kept_failed: int) -> None:
        self.total = total
        self.skipped = skipped
        self.kept_failed = kept_failed
        self.ok = 0
        self.failed = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.total_tokens = 0
        self.latency = LatencyHistogram()
        self.concurrency: int | None = None
        self.started = time.perf_counter()

    @property
    def done(self) -> int:
        return self.ok + self.failed

    def add_ok(self, resp: ChatCompletionResponse) -> None:
        self.ok += 1
        usage = resp.usage
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.total_tokens += usage.total_tokens
        if resp.stats is not None:
            self.latency.add(resp.stats.latency)

    def add_error(self, err: AiLibError) -> None:
        del err
        self.failed += 1

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def summary(self, *, interrupted: bool) -> dict[str, Any]:
        """The run in numbers (the ``--json`` summary)."""
        wall = self.elapsed()
        p50, p99 = self.latency.percentile(50), self.latency.percentile(99)
        return {
            "total": self.total,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "kept_failed": self.kept_failed,
            "not_done": self.total - self.done,
            "interrupted": interrupted,
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.total_tokens,
            },
            "wall_s": round(wall, 3),
            "req_per_s": round(self.done / wall, 1) if wall > 0 else None,
            "latency_p50_ms": None if p50 is None else round(p50 * 1e3, 1),
            "latency_p99_ms": None if p99 is None else round(p99 * 1e3, 1),
        }

    def summary_text(self, *, interrupted: bool) -> str:
        """The run in one human paragraph (stderr)."""
        s = self.summary(interrupted=interrupted)
        head = "batch interrupted" if interrupted else "batch done"
        parts = [f"{s['ok']} ok", f"{s['failed']} failed"]
        if s["skipped"]:
            parts.append(f"{s['skipped']} already done")
        if s["not_done"]:
            parts.append(f"{s['not_done']} not done")
        tokens = s["tokens"]
        lat = "n/a"
        if s["latency_p50_ms"] is not None:
            lat = f"p50 {s['latency_p50_ms']} ms, p99 {s['latency_p99_ms']} ms"
        rate = s["req_per_s"] if s["req_per_s"] is not None else "n/a"
        return (
            f"{head}: {', '.join(parts)}; tokens {tokens['total']} (prompt "
            f"{tokens['prompt']}, completion {tokens['completion']}); "
            f"{s['wall_s']:.2f} s, {rate} req/s; latency {lat}"
        )


class Progress(Protocol):
    """A progress display: refreshed by a ticker, closed at the end."""

    interval: float

    def update(self, stats: RunStats) -> None: ...

    def close(self, stats: RunStats) -> None: ...


def _eta(stats: RunStats) -> str:
    left = stats.total - stats.done
    elapsed = stats.elapsed()
    if not stats.done or elapsed <= 0:
        return "?"
    seconds = left / (stats.done / elapsed)
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _line(stats: RunStats) -> str:
    elapsed = stats.elapsed()
    pct = 100 * stats.done / stats.total if stats.total else 100.0
    rate = stats.done / elapsed if elapsed > 0 else 0.0
    text = (
        f"progress: {stats.done}/{stats.total} ({pct:.0f}%), {rate:.1f}/s, ETA "
        f"{_eta(stats)}, errors {stats.failed}, tokens {stats.total_tokens}"
    )
    if stats.concurrency is not None:
        text += f", concurrency {stats.concurrency}"
    return text


class PlainProgress:
    """A ``progress:`` line on stderr every two seconds, and one at the end."""

    interval = 2.0

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def update(self, stats: RunStats) -> None:
        print(_line(stats), file=self._stream, flush=True)

    def close(self, stats: RunStats) -> None:
        self.update(stats)


class RichProgress:
    """A live bar on a terminal (``rich``)."""

    interval = 0.2

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(file=stream),
            auto_refresh=False,  # refreshed by our ticker, no thread
            transient=False,
        )
        self._task = self._bar.add_task("batch", total=None, info="")
        self._bar.start()

    def update(self, stats: RunStats) -> None:
        elapsed = stats.elapsed()
        rate = stats.done / elapsed if elapsed > 0 else 0.0
        info = f"{rate:.1f}/s errors {stats.failed} tokens {stats.total_tokens}"
        if stats.concurrency is not None:
            info += f" concurrency {stats.concurrency}"
        self._bar.update(self._task, total=stats.total, completed=stats.done, info=info)
        self._bar.refresh()

    def close(self, stats: RunStats) -> None:
        self.update(stats)
        self._bar.stop()


def pick_display(
    forced: bool | None,
    *,
    quiet: bool,
    rich: Callable[[TextIO], T],
    plain: Callable[[TextIO], T],
) -> T | None:
    """The display for this run, on stderr: None when ``quiet`` or forced off
    (``forced`` is ``--progress`` / ``--no-progress``, None when neither); the
    ``rich`` one when stderr is a terminal and rich is installed (it raises
    ImportError otherwise); ``plain`` lines when forced on, or rich is missing
    on a terminal."""
    stream = sys.stderr
    if quiet or forced is False:
        return None
    tty = stream.isatty()
    if not tty and not forced:
        return None
    if tty:
        try:
            return rich(stream)
        except ImportError:
            pass
    return plain(stream)


def make_progress(forced: bool | None, *, quiet: bool) -> Progress | None:
    """``batch``'s display (see :func:`pick_display`)."""
    rich: Callable[[TextIO], Progress] = RichProgress
    return pick_display(forced, quiet=quiet, rich=rich, plain=PlainProgress)
