"""The latency-against-throughput plot of a report; matplotlib loads here,
on first use, and only here.

The figure is built with ``matplotlib.figure.Figure`` directly, not pyplot:
no global state, no GUI backend, safe in a server or a thread.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from .._errors import ConfigurationError

if TYPE_CHECKING:
    import os
    from collections.abc import Callable

    from ._records import Distribution, RunReport
    from ._report import BenchmarkReport

__all__ = ["plot_report"]


def _ttft(run: RunReport) -> Distribution:
    return run.aggregates.ttft


def _itl(run: RunReport) -> Distribution:
    return run.aggregates.itl


def _e2e(run: RunReport) -> Distribution:
    return run.aggregates.e2e


_PANELS: Final[tuple[tuple[str, Callable[[RunReport], Distribution]], ...]] = (
    ("time to first token (ms)", _ttft),
    ("inter-token latency (ms)", _itl),
    ("end-to-end latency (ms)", _e2e),
)


def _figure_class() -> Any:
    try:
        module = importlib.import_module("matplotlib.figure")
    except ImportError as exc:
        raise ConfigurationError(
            "BenchmarkReport.plot needs matplotlib, which is not installed; "
            "install it with: pip install 'ailib_sc[plot]'"
        ) from exc
    return module.Figure


def plot_report(report: BenchmarkReport, path: str | os.PathLike[str]) -> None:
    """See :meth:`BenchmarkReport.plot`."""
    if not report.runs:
        raise ConfigurationError(
            "BenchmarkReport.plot: the report has no points to plot"
        )
    figure = _figure_class()(figsize=(13, 4), layout="constrained")
    axes = figure.subplots(1, len(_PANELS))
    runs: list[RunReport] = sorted(
        report.runs, key=lambda run: run.aggregates.request_throughput
    )
    x = [run.aggregates.request_throughput for run in runs]
    for ax, (title, pick) in zip(axes, _PANELS, strict=True):
        dists: list[Distribution] = [pick(run) for run in runs]
        for label in ("p50", "p90", "p99"):
            ax.plot(
                x, [getattr(d, label) * 1000 for d in dists], marker="o", label=label
            )
        ax.set_title(title)
        ax.set_xlabel("achieved throughput (requests/s)")
        ax.set_ylabel("ms")
        ax.grid(True, alpha=0.3)
        ax.legend()
    figure.suptitle(
        f"{report.config.provider} · {report.config.profile.kind} "
        f"({len(runs)} point{'s' if len(runs) != 1 else ''})"
    )
    figure.savefig(path)
