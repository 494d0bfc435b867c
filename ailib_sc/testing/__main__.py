"""Run a `FakeProviderServer` until interrupted: ``python -m ailib_sc.testing``.

The first line on stdout is the base URL (flushed at once), so a benchmark can
start the server as a subprocess and read where to connect; with ``--tls`` the
second line is ``ca_file=<path of the test CA's PEM>``.  SIGINT or SIGTERM stops
the server cleanly (the CA file is deleted) with exit status 0.

The reply options (``--reply-text``, ``--echo``, ``--generate``,
``--models-page-size``, ``--stream-chunks``, ``--stream-first-delay``, ...) and the fault options (``--goaway-after``,
``--close-after``, ``--idle-close``, ``--rate-limit-rpm``, ``--failure-rate``,
...) are the constructor arguments of the same names; ``--no-record`` keeps
counters only, for long benchmark runs.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys

import anyio

from ailib_sc.testing._replies import DEFAULT_REPLY_TEXT
from ailib_sc.testing._server import FakeProviderServer

__all__ = ["main"]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ailib_sc.testing",
        description="Serve a fake OpenAI-compatible API on loopback until "
        "interrupted; prints the base URL as the first line.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument(
        "--port", type=int, default=0, help="default: 0 (any free port)"
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a test CA made at run time (needs trustme)",
    )
    parser.add_argument(
        "--http1-only",
        action="store_true",
        help="offer only http/1.1 over TLS and refuse cleartext HTTP/2",
    )
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument(
        "--api-key", default=None, help="require `Authorization: Bearer <KEY>`"
    )
    parser.add_argument("--reply-text", default=DEFAULT_REPLY_TEXT)
    parser.add_argument(
        "--echo",
        action="store_true",
        help='reply "echo: " + the text of the last user message instead',
    )
    parser.add_argument(
        "--models-page-size",
        type=int,
        default=None,
        metavar="N",
        help="paginate GET /v1/models (?limit=, ?after=), N per page by default "
        "(default: one unpaginated list)",
    )
    parser.add_argument("--max-concurrent-streams", type=int, default=100)
    parser.add_argument(
        "--stream-chunks",
        type=int,
        default=None,
        metavar="N",
        help="content chunks per streamed reply (default: one per word)",
    )
    parser.add_argument(
        "--stream-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds between two events of a streamed reply (default: 0; "
        "--generate: between two tokens)",
    )
    parser.add_argument(
        "--stream-first-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds before a streamed reply's headers (default: 0; "
        "--generate: the time to first token)",
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="load-test mode (OpenAI family at /v1): each reply is as many "
        "tokens as the request's max_tokens, one per chunk, with usage to match",
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--goaway-after",
        type=int,
        metavar="N",
        help="HTTP/2: graceful GOAWAY after the Nth stream of each connection",
    )
    faults.add_argument(
        "--close-after",
        type=int,
        metavar="N",
        help="HTTP/1.1: `Connection: close` on the Nth reply of each connection",
    )
    faults.add_argument(
        "--idle-close",
        type=float,
        metavar="S",
        help="close connections idle for S seconds (HTTP/2: GOAWAY first)",
    )
    faults.add_argument(
        "--rate-limit-rpm",
        type=int,
        metavar="N",
        help="429 beyond N requests per minute per API key (token bucket)",
    )
    faults.add_argument(
        "--rate-limit-burst",
        type=int,
        metavar="N",
        help="bucket size (default: one second's worth, at least 1)",
    )
    faults.add_argument(
        "--failure-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="fail each otherwise-successful request with probability P",
    )
    faults.add_argument(
        "--failure-seed",
        type=int,
        metavar="SEED",
        help="seed of the random failures (default: unseeded)",
    )
    faults.add_argument(
        "--failure-status",
        type=int,
        default=500,
        metavar="STATUS",
        help="status of a random failure (default: %(default)s)",
    )
    faults.add_argument(
        "--no-record",
        dest="record",
        action="store_false",
        help="keep counters only, no per-request records (long benchmark runs)",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    server = FakeProviderServer(
        host=args.host,
        port=args.port,
        tls=args.tls,
        alpn=("http/1.1",) if args.http1_only else ("h2", "http/1.1"),
        http2_cleartext=not args.http1_only,
        api_key=args.api_key,
        reply_text=args.reply_text,
        echo=args.echo,
        models_page_size=args.models_page_size,
        max_concurrent_streams=args.max_concurrent_streams,
        stream_chunks=args.stream_chunks,
        stream_delay=args.stream_delay,
        stream_first_delay=args.stream_first_delay,
        generate=args.generate,
        goaway_after=args.goaway_after,
        close_after=args.close_after,
        idle_close=args.idle_close,
        rate_limit_rpm=args.rate_limit_rpm,
        rate_limit_burst=args.rate_limit_burst,
        failure_rate=args.failure_rate,
        failure_seed=args.failure_seed,
        failure_status=args.failure_status,
        record=args.record,
    )
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with server:
            print(server.base_url, flush=True)
            if server.ca_file is not None:
                print(f"ca_file={server.ca_file}", flush=True)
            async for _ in signals:
                return


def main(argv: list[str] | None = None) -> int:
    """Run the server as the command line asks; return the exit status.

    Args:
        argv: Arguments without the program name; None means ``sys.argv[1:]``.
    """
    args = _parse_args(argv)
    try:
        anyio.run(_serve, args, backend=args.backend)
    except KeyboardInterrupt:
        pass  # a second Ctrl-C while shutting down
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"error: port {args.port} on {args.host} is already in use: stop "
                "what is using it, or pick another with --port (--port 0 takes "
                "any free port)",
                file=sys.stderr,
            )
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
