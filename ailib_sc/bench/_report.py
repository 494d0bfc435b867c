"""A benchmark's report: its configuration and one :class:`RunReport` per
point, with JSON (round trip), CSV, a text table and a plot.
"""

# No `from __future__ import annotations`: msgspec resolves these Structs'
# annotations at run time, when a report is decoded.

import csv
import os
from typing import ClassVar, Final

import msgspec

from ._profile import Profile
from ._records import RequestRecord, RunReport

__all__ = ["BenchmarkConfig", "BenchmarkReport"]

_CSV_COLUMNS: Final = (
    "point",
    "index",
    "phase",
    "status",
    "due",
    "sent",
    "headers",
    "first_token",
    "end",
    "lag",
    "ttft",
    "ttft_from_due",
    "itl",
    "tpot",
    "e2e",
    "e2e_from_due",
    "output_tokens",
    "token_source",
    "prompt_tokens",
    "chunks",
    "error_class",
    "error_status",
    "error_message",
)

_encode = msgspec.json.Encoder().encode


class BenchmarkConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How a benchmark was run.

    Attributes:
        profile: the :class:`Profile`, as given.
        provider: the provider id (``"openai"``, or a custom gateway's name).
        base_url: the API root the client used.
        requests: what the requests were (a :class:`SyntheticRequests` repr,
            or the type and size of the collection).
        backend: ``"asyncio"`` or ``"trio"``.
        version: the ailib_sc version.
        started_at: when the benchmark started, in seconds since the epoch.
    """

    profile: Profile
    provider: str
    base_url: str
    requests: str
    backend: str
    version: str
    started_at: float


class BenchmarkReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`run_benchmark` returns: the configuration, one
    :class:`RunReport` per point (in the order they ran), and every warning.

    Attributes:
        config: see :class:`BenchmarkConfig`.
        runs: the points.
        warnings: each point's warnings, prefixed with its name.
        interrupted: the run was stopped early (``run_benchmark(stop=...)``,
            ``ailib-sc bench`` on SIGINT): ``runs`` holds only the points that
            finished. Default False.
        CSV_COLUMNS: the columns of :meth:`write_csv`, in order (a class
            attribute). Times are seconds from the point's start.
    """

    CSV_COLUMNS: ClassVar[tuple[str, ...]] = _CSV_COLUMNS

    config: BenchmarkConfig
    runs: list[RunReport] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)
    interrupted: bool = False

    def to_json(self) -> bytes:
        """The whole report as JSON: config, every record, the aggregates."""
        return _encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> "BenchmarkReport":
        """Read a report written by :meth:`to_json` or :meth:`write_json`.

        Raises:
            msgspec.DecodeError: ``data`` is not JSON, or not such a report
                (``msgspec.ValidationError``, a subclass).
        """
        return msgspec.json.decode(data, type=cls)

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to ``path`` (replaced if it exists).

        Raises:
            OSError: the file cannot be written.
        """
        with open(path, "wb") as f:
            f.write(self.to_json())

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """Write one row per request record (every point, every phase) with
        the columns of ``CSV_COLUMNS``; empty cells where a value is None.

        Raises:
            OSError: the file cannot be written.
        """
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(_CSV_COLUMNS)
            for run in self.runs:
                for record in run.records:
                    writer.writerow(_row(run.name, record))

    def summary_table(self) -> str:
        """A plain-text table, one row per point: successful requests,
        errors, request and output-token throughput, mean concurrency, and
        p50/p99 of TTFT, ITL, end-to-end latency and scheduling lag in
        milliseconds (all from ``sent``); ``!`` marks a point with warnings,
        ``(interrupted)`` one the run was stopped in."""
        header = (
            "point",
            "ok",
            "errors",
            "req/s",
            "out tok/s",
            "conc",
            "TTFT p50",
            "TTFT p99",
            "ITL p50",
            "ITL p99",
            "E2E p50",
            "E2E p99",
            "lag p99",
            "",
        )
        units = ("", "", "", "", "", "", *("(ms)",) * 7, "")
        rows: list[tuple[str, ...]] = [header, units]
        for run in self.runs:
            a = run.aggregates
            rows.append(
                (
                    run.name + (" (interrupted)" if run.interrupted else ""),
                    str(a.successful),
                    str(a.errors),
                    f"{a.request_throughput:.2f}",
                    f"{a.output_throughput:.1f}",
                    f"{a.concurrency_mean:.1f}",
                    *(
                        f"{value * 1000:.1f}"
                        for value in (
                            a.ttft.p50,
                            a.ttft.p99,
                            a.itl.p50,
                            a.itl.p99,
                            a.e2e.p50,
                            a.e2e.p99,
                            a.lag.p99,
                        )
                    ),
                    "!" if run.warnings else "",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = []
        for row in rows:
            cells = [row[0].ljust(widths[0])]
            cells.extend(
                cell.rjust(width)
                for cell, width in zip(row[1:], widths[1:], strict=True)
            )
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines) + "\n"

    def plot(self, path: str | os.PathLike[str]) -> None:
        """Plot TTFT, ITL and end-to-end latency percentiles (p50, p90, p99)
        against the achieved request throughput of each point, and save the
        figure to ``path`` (the format follows its suffix: ``.png``,
        ``.svg``, ``.pdf``).

        Raises:
            ConfigurationError: matplotlib is not installed (``pip install
                'ailib_sc[plot]'``), or the report has no points.
            OSError: the file cannot be written.
        """
        from ._plot import plot_report

        plot_report(self, path)


def _cell(value: object) -> object:
    return "" if value is None else value


def _row(point: str, r: RequestRecord) -> list[object]:
    return [
        point,
        r.index,
        r.phase,
        r.status,
        r.due,
        r.sent,
        _cell(r.headers),
        _cell(r.first_token),
        r.end,
        r.lag,
        _cell(r.ttft),
        _cell(r.ttft_from_due),
        _cell(r.itl),
        _cell(r.tpot),
        r.e2e,
        r.e2e_from_due,
        r.output_tokens,
        r.token_source,
        _cell(r.prompt_tokens),
        len(r.token_times),
        _cell(r.error_class),
        _cell(r.error_status),
        _cell(r.error_message),
    ]


for _cls in (BenchmarkConfig, BenchmarkReport):
    _cls.__module__ = "ailib_sc.bench"
