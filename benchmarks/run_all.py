"""Run every benchmark and print a summary of ratios against the budgets.

``python benchmarks/run_all.py [--quick]`` (``nox -s bench`` runs this).

Runs, in order: ``bench_decode`` and ``bench_families`` (in this process),
``bench_import``, ``bench_throughput``, ``bench_stream``, ``bench_batch``,
``bench_cli`` and ``bench_sync`` (fresh interpreters for every sample / client). Loopback only; a full run takes about 10 minutes on 2
cores (``bench_cli`` about 3 of them), ``--quick`` about two. Exit status 1 if a benchmark crashed; missed
targets are reported, not failed on.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_batch
import bench_cli
import bench_decode
import bench_families
import bench_import
import bench_stream
import bench_sync
import bench_throughput
from _common import print_table, verdict_rows

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    summary: list[tuple[str, float | None, str, bool | None]] = []
    crashed = []
    for name, bench in (
        ("decode", bench_decode),
        ("families", bench_families),
        ("import", bench_import),
        ("throughput", bench_throughput),
        ("stream", bench_stream),
        ("batch", bench_batch),
        ("cli", bench_cli),
        ("sync", bench_sync),
    ):
        print()
        try:
            summary += bench.run(quick=args.quick)
        except Exception:
            traceback.print_exc()
            crashed.append(name)
            summary.append((f"{name}: CRASHED", None, "", False))

    print_table(
        ["measure", "value", "target", "verdict"],
        verdict_rows(summary),
        title=f"== Summary ({'quick' if args.quick else 'full'} run, "
        f"{time.perf_counter() - t0:.0f} s) ==",
    )
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
