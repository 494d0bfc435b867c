"""Throughput: non-streamed chat completions at concurrency 64 on a loopback server.

``python benchmarks/bench_throughput.py [--quick] [--server fake-asyncio|fake-trio|fast]
[--n N] [--concurrency C] [--profile]``

1. Server probe: the cheapest client we can write (``_driver.py tp --client
   raw``) measures how many requests/s each candidate server answers over
   HTTP/1.1 and h2c. The server used for the client runs is the fastest one (or
   ``--server``), so that the numbers below are client-bound, not server-bound;
   the server's CPU share during each run is printed to show it.
2. Client runs: for each configuration a fresh server process and a fresh client
   process (pinned to separate CPUs when there are two), 200 warm-up requests, then
   ``--n`` requests measured three times; the median run is reported. Client CPU
   is ``time.process_time()`` in the client process over the measured run, per
   request.

Ratios are against the openai SDK (asyncio, on httpx) over the same HTTP
version, then against each peer (the SDK on aiohttp, bare aiohttp + msgspec),
measured in the same invocation against the same server.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    OURS,
    PEER_CONFIGS,
    SERVER_WHAT,
    Config,
    Summary,
    bench_parser,
    client_cpus,
    fmt_pct,
    print_results,
    probe,
    profile,
    ratio_summary,
    run_client,
    server_cpus,
    srv_share,
)

__all__ = ["main", "run"]

_RAW = (
    Config("raw", label="raw asyncio (ceiling)"),
    Config("raw", http=2, label="raw h2 (ceiling)"),
)


def _configs(quick: bool) -> list[Config]:
    cfgs = [*OURS, *PEER_CONFIGS]
    if quick:
        return [*cfgs, *_RAW]
    if importlib.util.find_spec("litellm") is not None:
        cfgs.append(Config("litellm"))
    return [
        *cfgs,
        Config("httpcore-conn"),
        Config("httpcore-conn", http=2),
        # httpcore's pool rescans every queued request on each state change;
        # over HTTP/1.1 at c=64 it crawls, so one measured run is enough.
        Config("httpcore-pool", repeat=1),
        Config("httpcore-pool", http=2),
        *_RAW,
    ]


def _run(
    kind: str,
    cfg: Config,
    *,
    n: int,
    warmup: int,
    conc: int,
    repeat: int,
    profile: str | None = None,
) -> dict[str, Any]:
    flags = ["--n", str(n), "--warmup", str(warmup), "--concurrency", str(conc)]
    flags += ["--repeat", str(cfg.repeat or repeat)]
    return run_client(
        kind, "tp", cfg, *flags, *(["--profile", profile] if profile else [])
    )


_COLUMNS = [
    ("req/s", lambda c, r: f"{r['rate']:,.0f}"),
    ("CPU us/req", lambda c, r: f"{r['cpu_us']:.0f}"),
    ("p50 ms", lambda c, r: f"{r['p50_ms']:.1f}"),
    ("p99 ms", lambda c, r: f"{r['p99_ms']:.1f}"),
    ("client CPU", lambda c, r: fmt_pct(r["cpu_s"], r["wall_s"])),
    ("server CPU", lambda c, r: srv_share(r)),
    ("errors", lambda c, r: str(r["errors"])),
]


def run(
    *,
    quick: bool = False,
    server: str | None = None,
    n: int | None = None,
    concurrency: int = 64,
) -> Summary:
    """Run the benchmark, print its tables; return summary rows
    ``(what, value, target, met)`` for ``run_all.py``."""
    n = n or (400 if quick else 2000)
    warmup = 50 if quick else 200
    repeat = 1 if quick else 3
    print(
        f"== Throughput: {n} non-streamed chat completions, concurrency {concurrency}, "
        f"{warmup} warm-up, median of {repeat} =="
    )
    print(f"server CPUs {server_cpus()}, client CPUs {client_cpus()}")
    kinds = ["fake-asyncio", "fast"] if quick else ["fake-asyncio", "fake-trio", "fast"]
    # Long enough runs that /proc's 10 ms CPU ticks resolve the server's share.
    probe_n = max(2 * n, 5000)
    best = probe(
        kinds,
        [Config("raw")],
        lambda k, c: _run(
            k, c, n=probe_n, warmup=warmup, conc=concurrency, repeat=repeat
        ),
        rate="req/s",
        unit="req",
        digits=0,
        title=f"Server probe: raw client, concurrency {concurrency}, {probe_n} "
        f"requests, median of {repeat} (server CPU near 100% = the server is the "
        "bottleneck; capacity = 1 / server CPU per request over all runs)",
    )
    server = server or best
    print(f"\nClient runs use server: {server} = {SERVER_WHAT[server]}")
    results = [
        (c, _run(server, c, n=n, warmup=warmup, conc=concurrency, repeat=repeat))
        for c in _configs(quick)
    ]
    print_results(
        results,
        _COLUMNS,
        title=f"Throughput, concurrency {concurrency}, server {server} "
        "(ratios: this client vs the openai SDK over the same HTTP version)",
        rate="req/s",
        unit="request",
    )
    return ratio_summary(
        results, what="", rate="req/s", unit="req", rate_target=3, cpu_target=3
    )


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(
        __doc__, "only profile ailib_sc's client side with cProfile, print hot spots"
    )
    parser.add_argument("--n", type=int, default=None, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    if args.profile:
        n = args.n or 2000
        one = partial(_run, n=n, warmup=200, conc=args.concurrency, repeat=1)
        profile(
            lambda c, out: one(args.server or "fast", c, profile=out),
            what=f"{n} requests",
            rate="req/s",
            unit="req",
            digits=1,
        )
        return 0
    run(quick=args.quick, server=args.server, n=args.n, concurrency=args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
