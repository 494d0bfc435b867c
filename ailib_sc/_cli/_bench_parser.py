"""The flags of ``ailib-sc bench``: the profile, the run limits, the requests
and the outputs.

The load flags carry the names of ``ailib_sc.bench.Profile``'s fields as its
``FLAGS`` lists them, so the engine's errors name the right flag. The parser
checks only the syntax of a value (a number, a comma-separated list); its range
is the engine's to check, so that the command and the Python API refuse the
same values with the same words.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["BENCH_EPILOG", "add_bench_flags", "bench_concurrency"]

# Requests in flight of a throughput point without --max-concurrency (the
# engine's DEFAULT_THROUGHPUT_CONCURRENCY, GuideLLM's).
_THROUGHPUT = 512

# Shown by --help, so plain text: no reST markup.
BENCH_EPILOG = """\
profiles (--profile):
  synchronous   one request at a time
  concurrent    --concurrency N[,N...] requests in flight, one point each
  throughput    as fast as the endpoint allows (--max-concurrency in flight,
                default 512)
  constant      --rates R[,R...] requests per second, evenly spaced
  poisson       --rates R[,R...] requests per second, exponential gaps (--seed)
  sweep         synchronous, throughput, then --sweep-points - 2 rates evenly
                spaced between the two (or --rates)
Each point runs until --duration seconds or --requests requests, whichever
comes first. With --prompts and neither, each point sends the file once.

requests: --prompts FILE (JSONL, the line formats of batch: a prompt string, a
messages list or a request object; any bad line stops the command before
anything is sent), or synthetic prompts of random common words
(--prompt-tokens, --output-tokens, --distribution, --spread). Every request is
streamed. --ignore-eos (vLLM, SGLang: generate exactly max_tokens tokens) is
sent by default to -p custom and --base-url gateways only.

output: the summary table on stdout (on stderr with --json, which prints the
report without its per-request records on stdout), warnings on stderr, the
whole report with every request in --out, one row per request in --csv, and
latency percentiles against throughput in --plot (pip install
'ailib_sc[plot]'). Failed requests are counted, not fatal (exit 0); a refused
key stops the run (exit 3), and so does a connection refused before any
request got an answer (exit 1). SIGINT or SIGTERM stops the run, writes the
points that finished and the one it cut short to --out, prints their table,
and exits 130.
"""


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def _bad_list(text: str, what: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(
        f"expected a comma-separated list of {what}, e.g. 1,2,4, got {text!r}"
    )


def _rates(text: str) -> list[float]:
    try:
        return [float(part) for part in _split(text)]
    except ValueError:
        raise _bad_list(text, "requests per second") from None


def _counts(text: str) -> list[int]:
    try:
        return [int(part) for part in _split(text)]
    except ValueError:
        raise _bad_list(text, "whole numbers") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def add_bench_flags(
    bench: argparse.ArgumentParser, positive_int: Callable[[str], int]
) -> None:
    """Add the ``bench`` flags to its subparser."""
    load = bench.add_argument_group("load (each rate or concurrency is one point)")
    load.add_argument(
        "--profile",
        required=True,
        choices=(
            "synchronous",
            "concurrent",
            "throughput",
            "constant",
            "poisson",
            "sweep",
        ),
        metavar="KIND",
        help="synchronous, concurrent, throughput, constant, poisson or sweep "
        "(see below)",
    )
    load.add_argument(
        "--rates",
        type=_rates,
        metavar="LIST",
        help="requests per second, comma-separated (constant, poisson; sweep: "
        "instead of the evenly spaced rates)",
    )
    load.add_argument(
        "--concurrency",
        type=_counts,
        metavar="LIST",
        help="requests in flight, comma-separated (concurrent)",
    )
    load.add_argument(
        "--sweep-points",
        type=_int,
        metavar="N",
        help="points of a sweep, synchronous and throughput included (default 10)",
    )
    load.add_argument(
        "--sweep-arrivals",
        choices=("constant", "poisson"),
        help="how a sweep's rate points send (default constant)",
    )
    load.add_argument(
        "--max-concurrency",
        type=_int,
        metavar="N",
        help="most requests in flight for constant, poisson and sweep (arrivals "
        "wait, and their lag shows it), and the concurrency of throughput "
        "(default: no cap; throughput 512)",
    )
    limits = bench.add_argument_group("limits (of each point)")
    limits.add_argument(
        "--duration",
        type=_float,
        metavar="S",
        help="seconds each point runs; requests in flight then are cancelled",
    )
    limits.add_argument(
        "--requests", type=_int, metavar="N", help="requests each point sends"
    )
    limits.add_argument(
        "--warmup",
        type=_float,
        metavar="X",
        help="start of each point left out of the aggregates: below 1 a fraction "
        "of --duration (else of --requests), else seconds (else requests); "
        "default 0",
    )
    limits.add_argument(
        "--cooldown",
        type=_float,
        metavar="X",
        help="end of each point left out, read like --warmup (default 0)",
    )
    limits.add_argument(
        "--seed",
        type=_int,
        metavar="N",
        help="seed of Poisson arrivals and synthetic prompts (default 42)",
    )
    reqs = bench.add_argument_group("requests")
    reqs.add_argument(
        "--prompts",
        metavar="FILE",
        help="JSONL file of requests (the formats of batch); default: synthetic",
    )
    reqs.add_argument(
        "--prompt-tokens",
        type=positive_int,
        metavar="N",
        help="synthetic: mean prompt length in tokens (default 256)",
    )
    reqs.add_argument(
        "--output-tokens",
        type=positive_int,
        metavar="N",
        help="max_tokens of every request: synthetic, the mean (default 128); "
        "with --prompts, for the lines that set none",
    )
    reqs.add_argument(
        "--distribution",
        choices=("constant", "uniform", "normal"),
        help="synthetic: how lengths vary around their mean (default constant)",
    )
    reqs.add_argument(
        "--spread",
        type=_float,
        metavar="X",
        help="synthetic: uniform from mean*(1-X) to mean*(1+X), or normal with "
        "standard deviation X*mean (default 0)",
    )
    reqs.add_argument(
        "--ignore-eos",
        dest="ignore_eos",
        action="store_const",
        const=True,
        help="ask the server to generate exactly max_tokens tokens (vLLM, "
        "SGLang); default: on with synthetic prompts to -p custom and to a "
        "gateway named by --base-url alone, else off",
    )
    reqs.add_argument(
        "--no-ignore-eos",
        dest="ignore_eos",
        action="store_const",
        const=False,
        help="never send ignore_eos",
    )
    out = bench.add_argument_group("output")
    out.add_argument(
        "--out", metavar="FILE", help="the whole report as JSON (every request)"
    )
    out.add_argument("--csv", metavar="FILE", help="one row per request")
    out.add_argument(
        "--plot",
        metavar="FILE",
        help="latency percentiles against throughput, .png/.svg/.pdf "
        "(pip install 'ailib_sc[plot]')",
    )
    out.add_argument(
        "--progress",
        dest="progress",
        action="store_const",
        const=True,
        help="progress on stderr even when it is not a terminal",
    )
    out.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        help="no progress display",
    )


def bench_concurrency(args: argparse.Namespace) -> int:
    """The most requests the profile can keep in flight, to size the client's
    connection pool: the largest ``--concurrency``, else ``--max-concurrency``,
    else 512 for the profiles that send without a cap."""
    if args.concurrency:
        return max(int(n) for n in args.concurrency)
    if args.max_concurrency:
        return int(args.max_concurrency)
    if args.profile == "synchronous":
        return 1
    return _THROUGHPUT
