"""``ailib-sc bench``: check everything that can be checked before a request is
sent (the profile, the plot's matplotlib, the output paths, the key, the model,
every line of ``--prompts``), then run :func:`ailib_sc.bench.run_benchmark` with
a live view, and write the report.

Stops: SIGINT and SIGTERM set the engine's ``stop`` event, so the run returns
the points that finished (``interrupted``), which are written and shown, exit
130. A refused key (401) or a connection refused before any request got an
answer stops the run the same way, but is reported as the failure (exit 3 or
1) and nothing is written: :class:`Watch` is the engine's ``stop_on``
predicate, which sees every failed request.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from .._client import AiClient
from .._errors import (
    AiLibError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    MissingApiKeyError,
)
from ..bench import (
    BenchmarkProgress,
    BenchmarkReport,
    Profile,
    SyntheticRequests,
    accepts_ignore_eos,
    run_benchmark,
)
from ._bench_view import make_view
from ._common import CliFailure, ExitCode, failure_for, run_interruptible
from ._jsonl import parse_line, read_lines

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

    from .._types import ChatCompletionRequest
    from ._bench_view import BenchView
    from ._common import ClientSpec, RunContext

__all__ = ["Watch", "cli_message", "run_bench_command"]

_PLOT_HINT = "pip install 'ailib_sc[plot]'"
# "Profile.rates (--rates): ..." -> "--rates: ..."; "duration (--duration)" -> "--duration"
_FIELD_FLAG = re.compile(r"(?:Profile\.)?\w+ \((--[\w-]+)\)")
_PY_TERMS = (("use kind='concurrent'", "use --profile concurrent"),)
_SYNTHETIC_FIELD = re.compile(r"SyntheticRequests\.(\w+)")


def cli_message(text: str) -> str:
    """An engine message about a profile field, in flags."""
    text = _FIELD_FLAG.sub(r"\1", text).removeprefix("Profile: ")
    for api, flag in _PY_TERMS:
        text = text.replace(api, flag)
    return text


# -- stopping on a failure that every later request would share -------------------


class Watch:
    """``run_benchmark``'s ``stop_on``: a refused key, or a connection refused
    before any request got an answer, stops the run (every later request would
    fail alike) and is kept as ``fatal``."""

    def __init__(self, progress: BenchmarkProgress) -> None:
        self.fatal: AiLibError | None = None
        self._progress = progress

    def __call__(self, exc: AiLibError) -> bool:
        p = self._progress
        answered = bool(p.finished_points) or p.done > p.errors
        if isinstance(exc, AuthenticationError | MissingApiKeyError) or (
            isinstance(exc, ConnectError) and not answered
        ):
            if self.fatal is None:
                self.fatal = exc
            return True
        return False


# -- what is checked before anything is sent ---------------------------------------


def _profile(args: argparse.Namespace) -> Profile:
    fields: dict[str, Any] = {
        "rates": args.rates,
        "concurrencies": args.concurrency,
        "sweep_points": args.sweep_points,
        "sweep_arrivals": args.sweep_arrivals,
        "duration": args.duration,
        "max_requests": args.requests,
        "warmup": args.warmup,
        "cooldown": args.cooldown,
        "seed": args.seed,
        "max_concurrency": args.max_concurrency,
    }
    try:
        return Profile(
            kind=args.profile, **{k: v for k, v in fields.items() if v is not None}
        )
    except ConfigurationError as exc:
        raise CliFailure(cli_message(str(exc)), ExitCode.USAGE) from None


def _check_plot(path: str) -> None:
    """Fail now, not after the run, when the plot cannot be drawn."""
    import importlib

    try:
        importlib.import_module("matplotlib.figure")
        bases: Any = importlib.import_module("matplotlib.backend_bases")
    except ImportError:
        raise CliFailure(
            f"--plot needs matplotlib, which is not installed: {_PLOT_HINT} (or "
            "drop --plot); nothing was sent",
            ExitCode.USAGE,
        ) from None
    formats = bases.FigureCanvasBase.get_supported_filetypes()
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    if suffix not in formats:
        known = ", ".join(f".{f}" for f in sorted(formats))
        raise CliFailure(
            f"--plot {path}: matplotlib writes the format its suffix names; end "
            f"the name with one of {known}",
            ExitCode.USAGE,
        )


def _check_output(flag: str, path: str | None) -> None:
    if path is None:
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliFailure(
            f"{flag} {path}: the directory {directory} does not exist; create it "
            "or give another path",
            ExitCode.USAGE,
        )
    if not os.access(directory, os.W_OK):
        raise CliFailure(
            f"{flag} {path}: cannot write in {directory}; give another path",
            ExitCode.USAGE,
        )


def _client(spec: ClientSpec) -> AiClient:
    config = spec.config()
    try:
        return AiClient(config, spec.options())
    except AiLibError as exc:
        raise failure_for(exc, config) from None


_SYNTHETIC_ONLY = (
    ("prompt_tokens", "--prompt-tokens"),
    ("distribution", "--distribution"),
    ("spread", "--spread"),
)


def _requests(
    args: argparse.Namespace, client: AiClient, model: str
) -> Iterable[ChatCompletionRequest]:
    config = client.provider
    if args.ignore_eos and not accepts_ignore_eos(config):
        raise CliFailure(
            f"--ignore-eos: provider {config.id!r} does not take ignore_eos; only "
            "an OpenAI-compatible endpoint named with -p custom --base-url URL "
            "(vLLM, SGLang) does; drop --ignore-eos",
            ExitCode.USAGE,
        )
    if args.prompts is not None:
        for field, flag in _SYNTHETIC_ONLY:
            if getattr(args, field) is not None:
                raise CliFailure(
                    f"{flag} shapes synthetic prompts; drop it, or drop --prompts",
                    ExitCode.USAGE,
                )
        return _read_prompts(args.prompts, model, args.output_tokens, args.ignore_eos)
    try:
        return SyntheticRequests(
            model,
            prompt_tokens=args.prompt_tokens or 256,
            output_tokens=args.output_tokens or 128,
            distribution=args.distribution or "constant",
            spread=0.0 if args.spread is None else args.spread,
            seed=42 if args.seed is None else args.seed,
            ignore_eos=args.ignore_eos,
            provider=config,
        )
    except ConfigurationError as exc:
        text = _SYNTHETIC_FIELD.sub(lambda m: "--" + m[1].replace("_", "-"), str(exc))
        raise CliFailure(text, ExitCode.USAGE) from None


def _read_prompts(
    path: str, model: str, output_tokens: int | None, ignore_eos: bool | None
) -> list[ChatCompletionRequest]:
    """Every line of ``path`` as a request; a bad line stops the command."""
    try:
        source = sys.stdin.buffer if path == "-" else open(path, "rb")
    except OSError as exc:
        raise CliFailure(
            f"--prompts {path}: cannot read it: {exc.strerror}", ExitCode.USAGE
        ) from None
    requests: list[ChatCompletionRequest] = []
    with source:
        for lineno, raw in read_lines(source):
            parsed = parse_line(raw, lineno, model)
            if parsed.error is not None:
                problem = parsed.error.message
            elif parsed.provider is not None:
                problem = (
                    f"line {lineno}: provider: bench sends every line to the "
                    "command's provider; remove the field"
                )
            else:
                assert parsed.request is not None
                requests.append(_shaped(parsed.request, output_tokens, ignore_eos))
                continue
            raise CliFailure(
                f"--prompts {path}: {problem}; fix the line (a benchmark with holes "
                "measures something else); nothing was sent",
                ExitCode.USAGE,
            )
    if not requests:
        raise CliFailure(
            f"--prompts {path}: no request in it; give one JSONL line per request",
            ExitCode.USAGE,
        )
    return requests


def _shaped(
    request: ChatCompletionRequest, output_tokens: int | None, ignore_eos: bool | None
) -> ChatCompletionRequest:
    changes: dict[str, Any] = {}
    if (
        output_tokens is not None
        and request.max_tokens is None
        and request.max_completion_tokens is None
    ):
        changes["max_tokens"] = output_tokens
    if ignore_eos:
        changes["extra"] = {**(request.extra or {}), "ignore_eos": True}
    return msgspec.structs.replace(request, **changes) if changes else request


# -- the run ---------------------------------------------------------------------


@dataclass
class _Outcome:
    report: BenchmarkReport | None = None


def run_bench_command(spec: ClientSpec, args: argparse.Namespace, backend: str) -> int:
    """Run ``ailib-sc bench``; return its exit status.

    Raises:
        CliFailure: a problem found before anything was sent (exit 2 or 3), a
            run-ending failure (exit 1 or 3), an output that cannot be written.
    """
    import anyio

    profile = _profile(args)
    if args.plot is not None:
        _check_plot(args.plot)
    for flag, path in (("--out", args.out), ("--csv", args.csv), ("--plot", args.plot)):
        _check_output(flag, path)
    client = _client(spec)
    model = spec.model_for(client)
    requests = _requests(args, client, model)
    view = make_view(args.progress, quiet=args.quiet)
    outcome = _Outcome()
    tracker = BenchmarkProgress(None if view is None else view.observe)
    watch = Watch(tracker)

    async def body(ctx: RunContext) -> int:
        stop = anyio.Event()
        ctx.on_interrupt(stop.set)
        try:
            async with client, anyio.create_task_group() as tg:
                if view is not None:
                    tg.start_soon(_tick, view, tracker)
                try:
                    outcome.report = await run_benchmark(
                        client,
                        profile,
                        requests,
                        progress=tracker,
                        stop=stop,
                        stop_on=watch,
                    )
                except ConfigurationError as exc:
                    raise CliFailure(cli_message(str(exc)), ExitCode.USAGE) from None
                tg.cancel_scope.cancel()
        finally:
            if view is not None:
                view.close(tracker, stopped=ctx.interrupted or watch.fatal is not None)
        return ExitCode.INTERRUPTED if ctx.interrupted else ExitCode.OK

    code = int(anyio.run(run_interruptible, body, backend=backend))
    if watch.fatal is not None:
        failure = failure_for(watch.fatal, client.provider)
        raise CliFailure(
            f"{failure.message}; the benchmark stopped, nothing was written",
            failure.code,
        )
    if outcome.report is None:  # interrupted before the client was open
        return code
    _finish(args, outcome.report)
    return code


async def _tick(view: BenchView, tracker: BenchmarkProgress) -> None:
    import anyio

    while True:
        await anyio.sleep(view.interval)
        view.update(tracker)


def _write(flag: str, path: str, write: Any) -> None:
    try:
        write(path)
    except OSError as exc:
        raise CliFailure(f"{flag} {path}: cannot write it: {exc.strerror}") from None


def _finish(args: argparse.Namespace, report: BenchmarkReport) -> None:
    """Write the files, then the table, the warnings and the notes."""
    if args.out is not None:
        _write("--out", args.out, report.write_json)
    if args.csv is not None:
        _write("--csv", args.csv, report.write_csv)
    plotted = args.plot is not None and bool(report.runs)
    if plotted:
        try:
            _write("--plot", args.plot, report.plot)
        except ConfigurationError as exc:
            raise CliFailure(
                f"--plot: {exc}; the other outputs were written", ExitCode.USAGE
            ) from None
    table = report.summary_table()
    if args.json:
        sys.stdout.write(msgspec.json.encode(_summary(report)).decode() + "\n")
        sys.stdout.flush()
        if not args.quiet:
            sys.stderr.write(table)
    else:
        sys.stdout.write(table)
        sys.stdout.flush()
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report.interrupted and not args.quiet:
        points = report.config.profile.points()
        finished = sum(not run.interrupted for run in report.runs)
        cut = (
            ", and the one running was cut short" if finished < len(report.runs) else ""
        )
        kept = f"; written to {args.out}" if args.out is not None else ""
        print(
            f"interrupted: {finished} of {points} points finished{cut}{kept}",
            file=sys.stderr,
        )
    if args.plot is not None and not plotted and not args.quiet:
        print(f"no point finished: {args.plot} not drawn", file=sys.stderr)
    sys.stderr.flush()


def _summary(report: BenchmarkReport) -> dict[str, Any]:
    """The report without its per-request records (the ``--json`` output)."""
    data: dict[str, Any] = msgspec.to_builtins(report)
    for run in data["runs"]:
        del run["records"]
    return data
