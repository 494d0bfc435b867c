"""Helpers shared by the benchmark client subprocesses (``_tp_client.py``,
``_stream_client.py``, ``_batch_client.py``): argument parsing, ``main()``, loop
selection, JSON result printing, /proc CPU, the openai client."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "MODEL",
    "base_parser",
    "open_openai",
    "percentile",
    "proc_cpu",
    "run_client",
]

MODEL = "gpt-4o-mini"
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu(pid: int | None) -> float | None:
    """utime + stime of process ``pid`` in seconds, or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def open_openai(args: argparse.Namespace) -> Any:
    """An ``openai.AsyncOpenAI`` for ``args.url`` (h2c when ``args.http == 2``),
    no retries."""
    import openai

    http_client = None
    if args.http == 2:
        # h2c by prior knowledge: on http:// httpx(2) only speaks HTTP/2 when
        # HTTP/1.1 is turned off.
        http_client = openai.DefaultAsyncHttpxClient(http1=False, http2=True)
    return openai.AsyncOpenAI(
        base_url=args.url, api_key="x", max_retries=0, http_client=http_client
    )


def base_parser(doc: str | None, clients: Sequence[str]) -> argparse.ArgumentParser:
    """A parser with --client, --backend, --http and --url."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--client", choices=sorted(clients), required=True)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--http", type=int, choices=(1, 2), default=1)
    parser.add_argument("--url", required=True)
    return parser


def run_client(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    clients: Mapping[str, Callable[..., Any]],
    make_body: Callable[[argparse.Namespace], Any],
) -> int:
    """Parse, check, run the chosen client on its loop, print its JSON result."""
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error("--url must be a loopback http:// URL")
    if args.backend == "trio" and args.client != "ailib":
        parser.error("only --client ailib runs on trio")

    client = clients[args.client]
    body = make_body(args)
    if args.backend == "trio":
        import trio

        result = trio.run(client, args, body)
    else:
        import asyncio

        result = asyncio.run(client(args, body))
    result.update(client=args.client, backend=args.backend, http=args.http)
    print(json.dumps(result), flush=True)
    return 0
