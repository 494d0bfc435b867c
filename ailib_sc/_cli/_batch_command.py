"""``ailib-sc batch``: check everything that can be checked before a request is
sent (the key, the model, the input's ids, the results file), then run the
:class:`~ailib_sc._cli._pipeline.Pipeline` and print its summary.

Resuming: the results file is the only state. A rerun with the same ``-o``
cuts off a torn last line (a run killed mid-write), skips every id that has a
line, and appends the rest. ``--retry-failed`` first rewrites the file without
its error lines (a copy that atomically replaces it), so the file holds exactly
one line per id at every moment, and readers need no "last line wins" rule.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from ._common import CliFailure, ExitCode, run_interruptible
from ._jsonl import LineEncoder, open_results, scan_input
from ._pipeline import BatchOptions, Pipeline, Writer
from ._progress import RunStats, make_progress

if TYPE_CHECKING:
    from typing import BinaryIO

    from ._common import ClientSpec, RunContext
    from ._jsonl import Results

__all__ = ["BatchArgs", "run_batch_command"]


@dataclass(frozen=True)
class BatchArgs:
    """The ``batch`` command line."""

    input: str
    output: str
    options: BatchOptions
    full: bool = False
    retry_failed: bool = False
    progress: bool | None = None  # None: on when stderr is a terminal
    quiet: bool = False
    json: bool = False


def _open_input(path: str) -> BinaryIO:
    """The input, as a file we can read twice: ``-`` (stdin) is copied to a
    temporary file first (on disk, not in memory)."""
    if path == "-":
        spool = tempfile.TemporaryFile()
        shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        spool.seek(0)
        return spool
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CliFailure(
            f"cannot read {path}: {exc.strerror}", ExitCode.USAGE
        ) from None


def _note(args: BatchArgs, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


def _prepare(args: BatchArgs, name: str, source: BinaryIO) -> tuple[Results, RunStats]:
    existed = os.path.exists(args.output)
    results = open_results(args.output, retry_failed=args.retry_failed)
    try:
        scan = scan_input(source, results.done, name)
    except BaseException:
        results.close()
        if not existed and os.path.getsize(args.output) == 0:
            os.unlink(args.output)
        raise
    source.seek(0)
    if results.repaired:
        _note(
            args,
            f"repaired {args.output}: cut off a torn last line ({results.repaired} "
            "bytes) left by a killed run",
        )
    if results.dropped:
        _note(args, f"retrying {results.dropped} failed lines of {args.output}")
    skipped = scan.lines - scan.pending
    if skipped:
        _note(args, f"resuming: {skipped} of {scan.lines} lines already done")
    stats = RunStats(total=scan.pending, skipped=skipped, kept_failed=results.failed)
    return results, stats


def run_batch_command(spec: ClientSpec, args: BatchArgs, backend: str) -> int:
    """Run ``ailib-sc batch``; return its exit status.

    Raises:
        CliFailure: a problem found before anything was sent (exit 2 or 3), a
            run-ending error (exit 1 or 3).
    """
    import anyio

    client = spec.client()
    model = spec.model_for(client)
    name = "stdin" if args.input == "-" else args.input
    fatal: CliFailure | None = None
    with _open_input(args.input) as source:
        results, stats = _prepare(args, name, source)
        progress = make_progress(args.progress, quiet=args.quiet)

        async def body(ctx: RunContext) -> int:
            nonlocal fatal
            writer = Writer(
                results.fd,
                LineEncoder(full=args.full),
                stats,
                ordered=args.options.ordered,
                limit=args.options.reorder_limit,
            )
            pipeline = Pipeline(
                spec=spec,
                client=client,
                model=model,
                source=source,
                done=results.done,
                writer=writer,
                stats=stats,
                options=args.options,
                progress=progress,
            )
            ctx.on_interrupt(pipeline.scope.cancel)
            try:
                await pipeline.run()
            finally:
                fatal = pipeline.fatal
                if progress is not None:
                    progress.close(stats)
            return ExitCode.INTERRUPTED if ctx.interrupted else ExitCode.OK

        try:
            code = anyio.run(run_interruptible, body, backend=backend)
        finally:
            results.close()
    interrupted = code == ExitCode.INTERRUPTED
    _finish(args, stats, interrupted=interrupted)
    if fatal is not None:
        raise CliFailure(
            f"{fatal.message}; stopped, the lines written so far are kept: rerun "
            "the same command to do the rest",
            fatal.code,
        )
    if interrupted:
        _note(args, f"interrupted: rerun the same command to finish {args.output}")
        return ExitCode.INTERRUPTED
    if stats.failed or stats.kept_failed:
        _note(
            args,
            f"{stats.failed + stats.kept_failed} lines of {args.output} are errors; "
            "rerun with --retry-failed to retry them",
        )
        return ExitCode.PARTIAL
    return ExitCode.OK


def _finish(args: BatchArgs, stats: RunStats, *, interrupted: bool) -> None:
    if args.json:
        summary = stats.summary(interrupted=interrupted)
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
        sys.stdout.flush()
    _note(args, stats.summary_text(interrupted=interrupted))
