"""Blocking facade overhead: ``ailib_sc.sync`` per call against the async API.

``python benchmarks/bench_sync.py [--quick] [--http2] [--chunks N]``

Sequential calls, one at a time, against the fast loopback server
(``_fastserver.py``, in its own process pinned to its own CPU when there are
two): each call of ``ailib_sc.sync.AiClient`` hops into the client's event-loop
thread and back, which is what this measures. For each event loop (asyncio,
trio) and each kind of call (a non-streamed chat completion, and a stream of
``--chunks`` content chunks read to its end):

- async: ``await client.chat_completion(req)`` (or ``async with`` +
  ``async for`` over the stream) in ``anyio.run`` on that loop;
- sync: the same through ``ailib_sc.sync.AiClient(..., backend=loop)``.

Both run in this process, against the same server, alternating: one warm-up
round each, then ``rounds`` measured rounds of ``n`` calls each; the median
round's wall time per call is reported. The ratio is sync / async per call;
the target (issue #12) is below 1.5x. Every call is checked (the reply text,
the chunk count), so a fast wrong answer cannot pass.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anyio
from _common import (
    Summary,
    client_cpus,
    fmt_ratio,
    print_table,
    server_cpus,
    server_kind,
    start_server,
)

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConnectionOptions,
    Message,
    Provider,
)
from ailib_sc import sync as ailib_sync

__all__ = ["main", "run"]

_TARGET = 1.5  # issue #12: sync per call < 1.5x async per call
_TEXT = "Hello! How can I assist you today?"  # _payloads.py's reference reply
_REQ = ChatCompletionRequest("gpt-4o-mini", [Message.user("Hello!")])


def _check_reply(text: str) -> None:
    if text != _TEXT:
        raise RuntimeError(f"unexpected reply {text!r}")


def _check_stream(n: int, chunks: int) -> None:
    # role chunk + content chunks + finish chunk + usage chunk
    if n != chunks + 3:
        raise RuntimeError(f"stream of {n} chunks, expected {chunks + 3}")


async def _async_rounds(
    url: str, backend: str, kind: str, n: int, rounds: int, http2: bool, chunks: int
) -> list[float]:
    headers = {"x-stream-chunks": str(chunks)}
    options = ConnectionOptions(http2=http2)
    out = []
    async with AiClient(Provider.custom("fake", url, api_key="x"), options) as client:
        for r in range(rounds + 1):
            t0 = time.perf_counter()
            for _ in range(n):
                if kind == "plain":
                    _check_reply((await client.chat_completion(_REQ)).first_text())
                else:
                    async with client.chat_completion_stream(
                        _REQ, extra_headers=headers
                    ) as stream:
                        got = 0
                        async for _chunk in stream:
                            got += 1
                    _check_stream(got, chunks)
            if r:  # round 0 warms up
                out.append((time.perf_counter() - t0) / n)
    return out


def _sync_rounds(
    url: str, backend: str, kind: str, n: int, rounds: int, http2: bool, chunks: int
) -> list[float]:
    headers = {"x-stream-chunks": str(chunks)}
    options = ConnectionOptions(http2=http2)
    out = []
    provider = Provider.custom("fake", url, api_key="x")
    with ailib_sync.AiClient(provider, options, backend=backend) as client:
        for r in range(rounds + 1):
            t0 = time.perf_counter()
            for _ in range(n):
                if kind == "plain":
                    _check_reply(client.chat_completion(_REQ).first_text())
                else:
                    with client.chat_completion_stream(
                        _REQ, extra_headers=headers
                    ) as stream:
                        got = sum(1 for _chunk in stream)
                    _check_stream(got, chunks)
            if r:
                out.append((time.perf_counter() - t0) / n)
    return out


def _measure(
    url: str, backend: str, kind: str, n: int, rounds: int, http2: bool, chunks: int
) -> tuple[float, float]:
    """Median seconds per call: (async, sync), rounds interleaved."""
    a: list[float] = []
    s: list[float] = []
    for _ in range(rounds):
        a += anyio.run(
            _async_rounds, url, backend, kind, n, 1, http2, chunks, backend=backend
        )
        s += _sync_rounds(url, backend, kind, n, 1, http2, chunks)
    return statistics.median(a), statistics.median(s)


def run(
    *, quick: bool = False, http2: bool = False, chunks: int = 20, **_: Any
) -> Summary:
    """Run the benchmark and print its table; return summary rows
    ``(what, value, target, met)``."""
    t0 = time.perf_counter()
    n_plain, n_stream, rounds = (200, 50, 3) if quick else (1000, 300, 5)
    cpus, srv = client_cpus(), server_cpus()
    http = "HTTP/2 (h2c)" if http2 else "HTTP/1.1"
    print(
        f"== Blocking facade vs async API: sequential calls over {http}, "
        f"{n_plain} plain / {n_stream} streamed ({chunks} chunks) per round, "
        f"median of {rounds} rounds =="
    )
    print(f"server CPUs {srv}, client CPUs {cpus}")
    rows = []
    summary: Summary = []
    kind_name = server_kind("fast", "--stream-chunks", str(chunks))
    with start_server(kind_name) as (url, _pid):  # pinned to `srv`
        if cpus:
            os.sched_setaffinity(0, cpus)  # then this process (both threads)
        for backend in ("asyncio", "trio"):
            for kind, n in (("plain", n_plain), ("stream", n_stream)):
                a, s = _measure(url, backend, kind, n, rounds, http2, chunks)
                what = "chat_completion" if kind == "plain" else f"stream x{chunks}"
                rows.append(
                    [
                        f"{backend} {what}",
                        f"{a * 1e6:,.0f}",
                        f"{s * 1e6:,.0f}",
                        f"{(s - a) * 1e6:+,.0f}",
                        fmt_ratio(s, a),
                    ]
                )
                summary.append(
                    (
                        f"sync / async per call, {backend} {what}",
                        s / a,
                        f"< {_TARGET:g}",
                        s / a < _TARGET,
                    )
                )
    print_table(
        ["loop / call", "async us/call", "sync us/call", "overhead us", "sync/async"],
        rows,
        title=f"Per-call wall time, target sync/async < {_TARGET:g}x",
    )
    print(f"\n(sync facade benchmark: {time.perf_counter() - t0:.0f} s)")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--http2", action="store_true", help="h2c instead of 1.1")
    parser.add_argument("--chunks", type=int, default=20, help="chunks per stream")
    args = parser.parse_args(argv)
    run(quick=args.quick, http2=args.http2, chunks=args.chunks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
