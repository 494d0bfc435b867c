"""Memory over a long batch: client RSS after 200,000 requests vs after 20,000.

``python benchmarks/bench_rss.py [--requests N] [--concurrency C]
[--http2 | --http1] [--backend asyncio|trio] [--quick]``

Pushes ``--requests`` (default 200,000) non-streamed chat completions through one
``client.chat_completion_batch_stream(requests, concurrency=C)`` (default C =
64) against ``_fastserver.py`` in a separate process, over h2c (``--http2``, the
default) or HTTP/1.1 (``--http1``, ``pool_size = max(100, C)``), on asyncio (the
default) or trio. The inputs come from a generator (distinct requests, built
one at a time as the batch reads them, never a list) and every result is checked
(the expected reply text) and dropped as it arrives, so whatever the client
process gains is the client's own.

The client runs in a fresh interpreter (this script with ``--child``), pinned
to its own CPU when there are two. It samples its resident set size
(``/proc/self/statm``) after every tenth of the requests (20,000, 40,000, ...),
with Python's allocated blocks (``sys.getallocatedblocks()``) and objects
tracked by the garbage collector (``len(gc.get_objects())``) alongside, so that
a real leak (objects, blocks growing) can be told from allocator noise. No
``gc.collect()`` is forced: the process runs as an application would.

Budget (issue #9): RSS(200k) / RSS(20k) <= 1.2; exit status 1 if missed (or if a
request failed). ``--quick``: 20,000 requests,
sampled every 2,000 (same budget, on a tenth of the run).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, run_json, start_server

__all__ = ["main", "run"]

_BUDGET = 1.2
_REQUESTS = 200_000
_CONCURRENCY = 64
_SAMPLES = 10
_MODEL = "gpt-4o-mini"
_REPLY = "Hello! How can I assist you today?"  # _payloads.RESPONSE_BODY's text
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    """This process's resident set size, in bytes (peak RSS off Linux)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------- client side


async def _client(args: argparse.Namespace) -> dict[str, Any]:
    from ailib_sc import (
        AiClient,
        ChatCompletionRequest,
        ChatCompletionResponse,
        ConnectionOptions,
        Message,
        Provider,
        Role,
    )

    n, every = args.requests, args.sample_every

    def requests() -> Any:
        for i in range(n):
            yield ChatCompletionRequest(
                model=_MODEL, messages=[Message(role=Role.USER, content=f"Hello {i}")]
            )

    provider = Provider.custom("fast", args.child, api_key="x")
    if args.http == 2:
        options = ConnectionOptions(http2=True)
    else:
        options = ConnectionOptions(http2=False, pool_size=max(100, args.concurrency))
    done = ok = 0
    failures: Counter[str] = Counter()
    first_error: str | None = None
    versions: Counter[str] = Counter()
    samples: list[dict[str, float]] = []
    rss_start = _rss_bytes()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    async with AiClient(provider, options) as client:
        batch = client.chat_completion_batch_stream(
            requests(), concurrency=args.concurrency
        )
        async with batch as results:
            async for _index, result in results:
                done += 1
                if (
                    isinstance(result, ChatCompletionResponse)
                    and result.first_text() == _REPLY
                ):
                    ok += 1
                    if done % every == 1 and result.stats is not None:
                        versions[result.stats.http_version] += 1
                else:
                    failures[type(result).__name__] += 1
                    if first_error is None:
                        first_error = repr(result)[:300]
                del result
                if done % every == 0:
                    samples.append(
                        {
                            "requests": done,
                            "elapsed_s": time.perf_counter() - t0,
                            "cpu_s": time.process_time() - cpu0,
                            "rss": _rss_bytes(),
                            "blocks": sys.getallocatedblocks(),
                            "gc_objects": len(gc.get_objects()),
                        }
                    )
        stats = client.statistics()
    wall = time.perf_counter() - t0
    return {
        "requests": n,
        "completed": done,
        "submitted": batch.submitted,
        "ok": ok,
        "failures": dict(failures),
        "first_error": first_error,
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu0,
        "rss_start": rss_start,
        "samples": samples,
        "http_versions": dict(versions),
        "connections_opened": stats.opened,
        "backend": args.backend,
        "http": args.http,
        "concurrency": args.concurrency,
    }


def _child_main(args: argparse.Namespace) -> int:
    if not args.child.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise SystemExit("--child must be a loopback http:// URL")
    if args.backend == "trio":
        import trio

        result = trio.run(_client, args)
    else:
        import asyncio

        result = asyncio.run(_client(args))
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------- driver side


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def _measure(
    *, requests: int, concurrency: int, http: int, backend: str
) -> dict[str, Any]:
    every = max(1, requests // _SAMPLES)
    with start_server("fast") as (url, _pid):
        args = [
            str(Path(__file__).resolve()),
            "--child",
            url,
            "--requests",
            str(requests),
            "--concurrency",
            str(concurrency),
            "--http1" if http == 1 else "--http2",
            "--backend",
            backend,
            "--sample-every",
            str(every),
        ]
        # Generous: a slow machine does ~2,000 requests/s.
        return run_json(args, timeout=max(300.0, requests / 500))


def _report(r: dict[str, Any]) -> float | None:
    """Print one run's table; return RSS(last sample) / RSS(first sample)."""
    samples = r["samples"]
    proto = "HTTP/2 (h2c)" if r["http"] == 2 else "HTTP/1.1"
    print(
        f"{r['completed']:,} of {r['requests']:,} requests over {proto} on "
        f"{r['backend']}, concurrency {r['concurrency']}: {r['wall_s']:.1f} s "
        f"({r['completed'] / r['wall_s']:,.0f} req/s, client CPU "
        f"{r['cpu_s']:.1f} s), {r['ok']:,} ok, "
        f"{sum(r['failures'].values()):,} failed; "
        f"{r['connections_opened']} connection(s) opened; "
        f"RSS before the batch {_mib(r['rss_start'])} MiB"
    )
    if r["failures"]:
        print(f"  failures: {r['failures']}; first: {r['first_error']}")
    if not samples:
        print("  no samples")
        return None
    base = samples[0]
    rows = [
        [
            f"{s['requests']:,}",
            f"{s['elapsed_s']:.1f}",
            _mib(s["rss"]),
            f"{s['rss'] / base['rss']:.3f}x",
            f"{s['blocks']:,}",
            f"{s['blocks'] - base['blocks']:+,}",
            f"{s['gc_objects']:,}",
        ]
        for s in samples
    ]
    print_table(
        [
            "requests",
            "elapsed s",
            "RSS MiB",
            "RSS / first",
            "alloc. blocks",
            "blocks vs first",
            "gc objects",
        ],
        rows,
    )
    ratio = float(samples[-1]["rss"] / base["rss"])
    ok = r["ok"] == r["requests"] and len(samples) >= 2
    verdict = "PASS" if ok and ratio <= _BUDGET else "FAIL"
    print(
        f"RSS({samples[-1]['requests']:,}) / RSS({base['requests']:,}) = "
        f"{ratio:.3f}x (budget <= {_BUDGET}x): {verdict}"
        + ("" if r["ok"] == r["requests"] else " (not every request succeeded)")
    )
    return ratio


def run(
    *,
    quick: bool = False,
    requests: int | None = None,
    concurrency: int = _CONCURRENCY,
    http: int = 2,
    backend: str = "asyncio",
) -> list[tuple[str, float | None, str, bool | None]]:
    """Run the benchmark, print its table; return summary rows
    ``(what, value, target, met)`` for ``run_all.py``."""
    n = requests or (_REQUESTS // 10 if quick else _REQUESTS)
    proto = "h2c" if http == 2 else "HTTP/1.1"
    print(
        f"== RSS: {n:,} chat completions through chat_completion_batch_stream "
        f"(lazy generator input), concurrency {concurrency}, {proto}, {backend}; "
        f"server benchmarks/_fastserver.py in its own process =="
    )
    what = f"RSS after {n:,} / after {n // _SAMPLES:,} requests ({backend} {proto})"
    try:
        r = _measure(requests=n, concurrency=concurrency, http=http, backend=backend)
    except RuntimeError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return [(what, None, f"<= {_BUDGET}", False)]
    ratio = _report(r)
    met = ratio is not None and ratio <= _BUDGET and r["ok"] == r["requests"]
    return [(what, ratio, f"<= {_BUDGET}", met)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        metavar="N",
        help=f"requests in the batch (default {_REQUESTS:,}; --quick: a tenth)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=_CONCURRENCY,
        metavar="C",
        help="items in flight (default %(default)s)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--http2",
        dest="http",
        action="store_const",
        const=2,
        default=2,
        help="h2c by prior knowledge (the default)",
    )
    group.add_argument(
        "--http1", dest="http", action="store_const", const=1, help="HTTP/1.1"
    )
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument(
        "--quick", action="store_true", help="20,000 requests unless --requests"
    )
    # Internal: run the client side in this process against the given server URL.
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument(
        "--sample-every", type=int, default=None, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.requests is not None and args.requests < _SAMPLES:
        parser.error(f"--requests must be >= {_SAMPLES}")
    if args.concurrency < 1:
        parser.error("--concurrency must be >= 1")
    if args.child is not None:
        args.requests = args.requests or _REQUESTS
        args.sample_every = args.sample_every or max(1, args.requests // _SAMPLES)
        return _child_main(args)
    t0 = time.perf_counter()
    summary = run(
        quick=args.quick,
        requests=args.requests,
        concurrency=args.concurrency,
        http=args.http,
        backend=args.backend,
    )
    print(f"(rss benchmark: {time.perf_counter() - t0:.0f} s)")
    return 0 if all(met for _, _, _, met in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
