"""The ``ailib-sc`` entry point: the flags' environment fallbacks, the dispatch
to a command, and the one place where every failure becomes one line on
stderr and an exit status (the table is in ``_parser`` and ``--help``)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import TYPE_CHECKING, Any

from .._errors import AiLibError
from ._bench_parser import bench_concurrency
from ._common import ClientSpec, CliFailure, ExitCode, failure_for
from ._parser import build_parser, positive_int

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._common import RunContext

__all__ = ["main"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _env_bad(name: str, value: str, wanted: str) -> CliFailure:
    return CliFailure(
        f"{name}={value!r}: expected {wanted}; fix or unset it", ExitCode.USAGE
    )


def _from_env(args: argparse.Namespace) -> None:
    """Fill the flags left unset from their ``AILIB_*`` variables."""
    for flag, name in (
        ("provider", "AILIB_PROVIDER"),
        ("model", "AILIB_MODEL"),
        ("base_url", "AILIB_BASE_URL"),
        ("api_key_env", "AILIB_API_KEY_ENV"),
        ("backend", "AILIB_BACKEND"),
    ):
        if getattr(args, flag) is None:
            setattr(args, flag, _env(name))
    if args.backend is None:
        args.backend = "asyncio"
    elif args.backend not in ("asyncio", "trio"):
        raise _env_bad("AILIB_BACKEND", args.backend, "asyncio or trio")
    if args.http2 is None and (raw := _env("AILIB_HTTP2")) is not None:
        if raw.lower() not in _TRUE | _FALSE:
            raise _env_bad("AILIB_HTTP2", raw, "1 or 0")
        args.http2 = raw.lower() in _TRUE
    if args.command == "batch" and args.concurrency is None:
        raw = _env("AILIB_CONCURRENCY")
        if raw is not None:
            try:
                args.concurrency = positive_int(raw)
            except argparse.ArgumentTypeError:
                raise _env_bad(
                    "AILIB_CONCURRENCY", raw, "a whole number >= 1"
                ) from None
    if args.retries is not None and args.retries < 0:
        raise CliFailure("--retries: expected a whole number >= 0", ExitCode.USAGE)


def _spec(args: argparse.Namespace) -> ClientSpec:
    concurrency = 0
    if args.command == "batch":
        concurrency = args.max_concurrency if args.smart else (args.concurrency or 16)
    elif args.command == "bench":
        concurrency = bench_concurrency(args)
    return ClientSpec(
        provider=args.provider,
        model=args.model or "auto",
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        http2=args.http2,
        timeout=args.timeout,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        retries=args.retries or 0,
        pool_size=max(100, concurrency),
    )


def _run(args: argparse.Namespace) -> int:
    import anyio

    from ._common import run_interruptible

    _from_env(args)
    spec = _spec(args)
    if args.command == "batch":
        return _run_batch(args, spec)
    if args.command == "bench":
        from ._bench_command import run_bench_command

        return run_bench_command(spec, args, args.backend)
    from . import _commands

    body: Callable[[RunContext], Awaitable[int]]
    if args.command == "chat":
        chat_args = _commands.ChatArgs(
            prompt=args.prompt,
            system=args.system,
            stream=args.stream,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            json=args.json,
        )
        body = functools.partial(_commands.chat, spec, chat_args)
    elif args.command == "models":
        body = functools.partial(_commands.models, spec, json=args.json)
    elif args.command == "serve-fake":
        options: dict[str, Any] = {
            "echo": args.echo,
            "failure_rate": args.failure_rate,
            "failure_seed": args.failure_seed,
            "stream_delay": args.stream_delay,
            "stream_first_delay": args.stream_first_delay,
            "generate": args.generate,
        }
        if args.reply_text is not None:
            options["reply_text"] = args.reply_text
        body = functools.partial(
            _commands.serve_fake,
            family=args.family,
            host=args.host,
            port=args.port,
            key_env=args.api_key_env,
            server_options=options,
            json=args.json,
        )
    else:
        body = _commands.demo
    code: int = anyio.run(run_interruptible, body, backend=args.backend)
    return code


def _run_batch(args: argparse.Namespace, spec: ClientSpec) -> int:
    from ._batch_command import BatchArgs, run_batch_command
    from ._pipeline import BatchOptions

    default = min(8, args.max_concurrency) if args.smart else 16
    options = BatchOptions(
        concurrency=args.concurrency or default,
        smart=args.smart,
        max_concurrency=args.max_concurrency,
        ordered=args.ordered,
        reorder_buffer=args.reorder_buffer,
        retries=args.retries,
        requests_per_minute=args.requests_per_minute,
    )
    if args.smart and options.concurrency > options.max_concurrency:
        raise CliFailure(
            f"--concurrency {options.concurrency} is above --max-concurrency "
            f"{options.max_concurrency}; raise --max-concurrency",
            ExitCode.USAGE,
        )
    batch = BatchArgs(
        input=args.input,
        output=args.output,
        options=options,
        full=args.full,
        retry_failed=args.retry_failed,
        progress=args.progress,
        quiet=args.quiet,
        json=args.json,
    )
    return run_batch_command(spec, batch, args.backend)


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside nested single-exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _quiet_stdout() -> None:
    """stdout's reader went away (``| head``): drop what is still buffered
    without the "Exception ignored" message at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _fail(failure: CliFailure) -> int:
    print(f"error: {failure.message}", file=sys.stderr, flush=True)
    return int(failure.code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ailib-sc`` script. Returns the exit status (see
    ``ailib-sc --help``)."""
    args = build_parser().parse_args(argv)  # exits 2 on bad usage
    try:
        try:
            code = _run(args)
            sys.stdout.flush()
            return code
        except BaseException as exc:
            leaf = _leaf(exc)
            if leaf is exc:
                raise
            raise leaf from None
    except CliFailure as failure:
        return _fail(failure)
    except AiLibError as exc:
        return _fail(failure_for(exc))
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        _quiet_stdout()
        return int(ExitCode.OK)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        return _fail(CliFailure(f"{exc.strerror or exc}{where}"))
