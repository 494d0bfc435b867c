"""The command line's batch: ``ailib-sc batch`` over 20,000 and 200,000 JSONL
lines, lines/s and peak RSS, against the same batch driven from Python.

``python benchmarks/bench_cli.py [--quick] [--concurrency C]``

Each run is a fresh process pinned to the client CPU, against a fresh
``_fastserver.py`` pinned to the other (HTTP/1.1, concurrency 64, asyncio):

1. **CLI**: ``python -m ailib_sc batch in.jsonl -o out.jsonl --base-url URL -m
   gpt-4o-mini -c 64 -q --json`` on a file of prompt strings, one line each. The
   whole command is timed (start-up, the duplicate-id scan, the run), and its
   own summary gives the pipeline's part. Every line of the results must be an
   ok line.
2. **Python**: this script with ``--python-baseline``: the same file read line
   by line into ``client.chat_completion_batch_stream(requests, concurrency=64)``
   (an async generator), each result written as one JSON line (id, text,
   finish reason, usage, stats) with ``os.write``: what the CLI does, minus the
   resume bookkeeping, the id checks and the error lines.

Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``. Printed ratios: the
CLI's lines/s over Python's on the same 20,000 lines (the CLI's overhead), and
the CLI's peak RSS at 200,000 lines over 20,000 (budget: <= 1.2: the input is
streamed, never loaded). ``--quick``: 5,000 and 50,000 lines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    PROJECT_ROOT,
    Summary,
    client_cpus,
    fmt_ratio,
    print_table,
    start_server,
    subprocess_env,
)

__all__ = ["main", "run"]

_RSS_BUDGET = 1.2
_MODEL = "gpt-4o-mini"


def _write_input(path: Path, lines: int) -> None:
    with path.open("w") as f:
        for i in range(lines):
            f.write(json.dumps(f"prompt number {i}") + "\n")


def _timed(args: list[str]) -> dict[str, Any]:
    """Run ``python *args`` pinned to the client CPU; its wall time, peak RSS
    (from ``wait4``) and the JSON object on its last stdout line."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=subprocess_env(),
            cwd=PROJECT_ROOT,
        )
        cpus = client_cpus()
        if cpus:
            os.sched_setaffinity(proc.pid, cpus)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:3]} exited {proc.returncode}: {errors[-2000:]}")
    result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def _check(path: Path, lines: int) -> None:
    data = path.read_bytes()
    ok = data.count(b'"ok":true')
    if data.count(b"\n") != lines or ok != lines:
        raise RuntimeError(f"{path}: {ok} ok lines of {lines} expected")


def _cli(tmp: Path, lines: int, concurrency: int) -> dict[str, Any]:
    src, out = tmp / f"in-{lines}.jsonl", tmp / f"out-{lines}.jsonl"
    if not src.exists():
        _write_input(src, lines)
    out.unlink(missing_ok=True)
    with start_server("fast") as (url, _pid):
        r = _timed(
            [
                "-m",
                "ailib_sc",
                "batch",
                str(src),
                "-o",
                str(out),
                "--base-url",
                url,
                "-m",
                _MODEL,
                "-c",
                str(concurrency),
                "-q",
                "--json",
            ]
        )
    _check(out, lines)
    r["lines"] = lines
    return r


def _python(tmp: Path, lines: int, concurrency: int) -> dict[str, Any]:
    src, out = tmp / f"in-{lines}.jsonl", tmp / f"py-{lines}.jsonl"
    if not src.exists():
        _write_input(src, lines)
    with start_server("fast") as (url, _pid):
        r = _timed(
            [__file__, "--python-baseline", url, str(src), str(out), str(concurrency)]
        )
    _check(out, lines)
    r["lines"] = lines
    return r


async def _baseline(url: str, src: str, dst: str, concurrency: int) -> dict[str, Any]:
    import msgspec

    from ailib_sc import (
        AiClient,
        ChatCompletionRequest,
        ChatCompletionResponse,
        Message,
        Provider,
    )

    decode, encoder = msgspec.json.decode, msgspec.json.Encoder()

    async def requests() -> Any:
        with open(src, "rb") as f:  # noqa: ASYNC230 - a local file, line by line
            for line in f:
                yield ChatCompletionRequest(_MODEL, [Message.user(decode(line))])

    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    t0 = time.perf_counter()
    async with (
        AiClient(Provider.custom("fast", url)) as client,
        client.chat_completion_batch_stream(
            requests(), concurrency=concurrency
        ) as results,
    ):
        async for index, result in results:
            if isinstance(result, ChatCompletionResponse):
                line = {
                    "id": index + 1,
                    "ok": True,
                    "text": result.first_text(),
                    "finish_reason": result.choices[0].finish_reason,
                    "usage": result.usage,
                    "stats": result.stats,
                }
            else:
                line = {"id": index + 1, "ok": False, "error": str(result)}
            os.write(fd, encoder.encode(line) + b"\n")
    wall = time.perf_counter() - t0
    os.close(fd)
    return {"wall_s": wall}


def run(*, quick: bool = False, concurrency: int = 64) -> Summary:
    """Run the measurements and print them; return ``run_all.py``'s rows."""
    small, large = (5_000, 50_000) if quick else (20_000, 200_000)
    print(
        f"== CLI batch: {small:,} and {large:,} JSONL lines through `ailib-sc "
        f"batch` vs {small:,} through chat_completion_batch_stream from Python; "
        f"server _fastserver.py, HTTP/1.1, concurrency {concurrency}, asyncio =="
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        py = _python(tmp, small, concurrency)
        cli_small = _cli(tmp, small, concurrency)
        cli_large = _cli(tmp, large, concurrency)
    rows = []
    for what, r in (
        ("Python: chat_completion_batch_stream", py),
        ("CLI: ailib-sc batch", cli_small),
        ("CLI: ailib-sc batch", cli_large),
    ):
        rows.append(
            [
                what,
                f"{r['lines']:,}",
                f"{r['lines'] / r['process_wall_s']:,.0f}",
                f"{r['lines'] / r['wall_s']:,.0f}",
                f"{r['process_wall_s']:.1f}",
                f"{r['peak_rss_mb']:.1f}",
            ]
        )
    print_table(
        [
            "driver",
            "lines",
            "lines/s (process)",
            "lines/s (batch)",
            "wall s",
            "peak RSS MB",
        ],
        rows,
    )
    speed = cli_small["lines"] / cli_small["process_wall_s"]
    base = py["lines"] / py["process_wall_s"]
    inner = cli_small["lines"] / cli_small["wall_s"]
    inner_base = py["lines"] / py["wall_s"]
    rss = cli_large["peak_rss_mb"] / cli_small["peak_rss_mb"]
    print(
        f"\nCLI / Python lines/s on {small:,} lines: {fmt_ratio(speed, base)} "
        f"(whole process), {fmt_ratio(inner, inner_base)} (batch only)"
    )
    print(
        f"CLI peak RSS {large:,} / {small:,} lines: {rss:.2f}x (budget <= "
        f"{_RSS_BUDGET}x)"
    )
    return [
        ("cli: lines/s CLI/Python (whole process)", speed / base, "info", None),
        ("cli: lines/s CLI/Python (batch only)", inner / inner_base, "info", None),
        (
            f"cli: peak RSS {large // 1000}k/{small // 1000}k lines",
            rss,
            f"<= {_RSS_BUDGET}",
            rss <= _RSS_BUDGET,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--python-baseline", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.python_baseline:
        import anyio

        url, src, dst, conc = args.python_baseline
        result = anyio.run(_baseline, url, src, dst, int(conc))
        print(json.dumps(result))
        return 0
    summary = run(quick=args.quick, concurrency=args.concurrency)
    return 0 if all(met is not False for *_, met in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
