"""Throughput: non-streamed chat completions at concurrency 64 on a loopback server.

``python benchmarks/bench_throughput.py [--quick] [--server fake-asyncio|fake-trio|fast]
[--profile]``

1. Server probe: the cheapest client we can write (``_tp_client.py --client raw``)
   measures how many requests/s each candidate server answers over HTTP/1.1 and
   h2c. The server used for the client runs is the fastest one (or ``--server``),
   so that the numbers below are client-bound, not server-bound; the server's
   CPU share during each run is printed to show it.
2. Client runs: for each configuration a fresh server process and a fresh client
   process (pinned to separate CPUs when there are two), 200 warm-up requests, then
   ``--n`` requests measured ``--repeat`` times; the median run is reported.
   Client CPU is ``time.process_time()`` in the client process over the measured
   run, per request.

Ratios are against the openai SDK (asyncio) over the same HTTP version, measured
in the same invocation against the same server.
"""

from __future__ import annotations

import argparse
import importlib.util
import pstats
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BENCH_DIR,
    client_cpus,
    fmt_ratio,
    http_name,
    print_profile,
    print_table,
    profile_total,
    run_json,
    server_cpus,
    srv_share,
    start_server,
)

__all__ = ["main", "run"]

_CLIENT = str(BENCH_DIR / "_tp_client.py")


@dataclass(frozen=True)
class Config:
    client: str
    backend: str
    http: int
    label: str
    repeat: int | None = None  # None: the run's default


def _configs(quick: bool) -> list[Config]:
    cfgs = [
        Config("ailib", "asyncio", 1, "ailib_sc"),
        Config("ailib", "asyncio", 2, "ailib_sc"),
        Config("ailib", "trio", 1, "ailib_sc"),
        Config("ailib", "trio", 2, "ailib_sc"),
        Config("openai", "asyncio", 1, "openai SDK"),
        Config("openai", "asyncio", 2, "openai SDK"),
    ]
    if importlib.util.find_spec("litellm") is not None:
        cfgs.append(Config("litellm", "asyncio", 1, "litellm"))
    cfgs += [
        Config("httpcore-conn", "asyncio", 1, "httpcore conns+msgspec"),
        Config("httpcore-conn", "asyncio", 2, "httpcore conns+msgspec"),
        # httpcore's pool rescans every queued request on each state change;
        # over HTTP/1.1 at c=64 it crawls, so one measured run is enough.
        Config("httpcore-pool", "asyncio", 1, "httpcore pool+msgspec", repeat=1),
        Config("httpcore-pool", "asyncio", 2, "httpcore pool+msgspec"),
        Config("raw", "asyncio", 1, "raw asyncio (ceiling)"),
        Config("raw", "asyncio", 2, "raw h2 (ceiling)"),
    ]
    if quick:
        cfgs = [c for c in cfgs if c.client in ("ailib", "openai", "raw")]
    return cfgs


def _client_args(
    cfg: Config, url: str, pid: int, *, n: int, warmup: int, conc: int, repeat: int
) -> list[str]:
    return [
        _CLIENT,
        "--client",
        cfg.client,
        "--backend",
        cfg.backend,
        "--http",
        str(cfg.http),
        "--url",
        url,
        "--n",
        str(n),
        "--warmup",
        str(warmup),
        "--concurrency",
        str(conc),
        "--repeat",
        str(cfg.repeat or repeat),
        "--server-pid",
        str(pid),
    ]


def _run_one(
    server: str, cfg: Config, *, n: int, warmup: int, conc: int, repeat: int
) -> dict[str, Any]:
    with start_server(server) as (url, pid):
        args = _client_args(cfg, url, pid, n=n, warmup=warmup, conc=conc, repeat=repeat)
        try:
            return run_json(args, timeout=240)
        except RuntimeError as exc:
            return {"failed": str(exc)}


def _probe(
    kinds: list[str], *, n: int, warmup: int, conc: int, repeat: int
) -> dict[str, dict[int, float]]:
    """Max req/s of each server kind with the raw client, per HTTP version."""
    rows = []
    capacity: dict[str, dict[int, float]] = {}
    for kind in kinds:
        for http in (1, 2):
            cfg = Config("raw", "asyncio", http, "raw")
            r = _run_one(kind, cfg, n=n, warmup=warmup, conc=conc, repeat=repeat)
            if "failed" in r:
                version = http_name(http)
                rows.append([kind, version, "FAILED", "", "", "", ""])
                print(r["failed"], file=sys.stderr)
                continue
            srv = r.get("server_cpu_s")
            # What the server could do if the client were free: 1 / its CPU per
            # request (closed-loop runs at c=64 on one h2 connection tend to fall
            # into lock-step, so raw req/s alone under-states the server).
            cap = r["n"] / srv if srv and srv >= 0.05 else r["req_s"]
            capacity.setdefault(kind, {})[http] = max(cap, r["req_s"])
            rows.append(
                [
                    kind,
                    r["http_version"],
                    f"{r['req_s']:,.0f}",
                    "?" if not srv else f"{srv / r['n'] * 1e6:.0f}",
                    f"{max(cap, r['req_s']):,.0f}",
                    srv_share(r),
                    f"{100 * r['cpu_s'] / r['wall_s']:.0f}%",
                ]
            )
    print_table(
        [
            "server",
            "HTTP",
            "req/s",
            "server CPU us/req",
            "capacity req/s",
            "server CPU",
            "client CPU",
        ],
        rows,
        title=f"Server probe: raw client, concurrency {conc}, {n} requests "
        "(server CPU near 100% = the server is the bottleneck; capacity = "
        "1 / server CPU per request)",
    )
    return capacity


def _fmt_row(cfg: Config, r: dict[str, Any], base: dict[str, Any] | None) -> list:
    http = http_name(cfg.http)
    if "failed" in r:
        return [cfg.label, cfg.backend, http, "FAILED", *[""] * 8]
    version = r.get("http_version", "?")
    if version != http:
        http = f"{http} (got {version})"
    ok_base = base is not None and "failed" not in base
    return [
        cfg.label,
        cfg.backend,
        http,
        f"{r['req_s']:,.0f}",
        f"{r['cpu_us_per_req']:.0f}",
        f"{r['p50_ms']:.1f}",
        f"{r['p99_ms']:.1f}",
        f"{100 * r['cpu_s'] / r['wall_s']:.0f}%",
        srv_share(r),
        str(r["errors"]),
        fmt_ratio(r["req_s"], base["req_s"]) if ok_base else "n/a",
        fmt_ratio(base["cpu_us_per_req"], r["cpu_us_per_req"]) if ok_base else "n/a",
    ]


def _profile(server: str, *, n: int, warmup: int, conc: int) -> None:
    """Run ailib_sc under cProfile (asyncio and trio, both HTTP versions); print
    own time by package, then ailib_sc's functions, then the hottest overall.

    cProfile inflates everything 2-3x and counts each resumption of a coroutine
    as a call; read the shares, not the absolute numbers."""
    for backend, http in (("asyncio", 1), ("asyncio", 2), ("trio", 1), ("trio", 2)):
        cfg = Config("ailib", backend, http, "ailib_sc")
        with tempfile.TemporaryDirectory() as tmp, start_server(server) as (url, pid):
            out = str(Path(tmp) / "prof")
            args = _client_args(cfg, url, pid, n=n, warmup=warmup, conc=conc, repeat=1)
            r = run_json([*args, "--profile", out], timeout=240)
            stats = pstats.Stats(out)
        total = profile_total(stats)
        print(
            f"\n== cProfile, ailib_sc on {backend} over {http_name(http)}: {n} "
            f"requests, {r['req_s']:,.0f} req/s and {r['cpu_us_per_req']:.0f} us "
            f"CPU/req under the profiler; {total / n * 1e6:.0f} us/req profiled =="
        )
        print_profile(stats, n, harness="_tp_client.py", unit="req", digits=1)


def run(
    *,
    quick: bool = False,
    server: str | None = None,
    n: int | None = None,
    concurrency: int = 64,
) -> list[tuple[str, float | None, str, bool | None]]:
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
    capacity = _probe(
        kinds, n=max(2 * n, 5000), warmup=warmup, conc=concurrency, repeat=repeat
    )
    if server is None:
        server = max(capacity, key=lambda k: min(capacity[k].values()))
    what = {
        "fast": "benchmarks/_fastserver.py (raw asyncio HTTP/1.1 + h2 library h2c)",
        "fake-asyncio": "ailib_sc.testing FakeProviderServer on asyncio",
        "fake-trio": "ailib_sc.testing FakeProviderServer on trio",
    }[server]
    print(f"\nClient runs use server: {server} = {what}")

    results: list[tuple[Config, dict[str, Any]]] = []
    for cfg in _configs(quick):
        r = _run_one(server, cfg, n=n, warmup=warmup, conc=concurrency, repeat=repeat)
        if "failed" in r:
            print(
                f"{cfg.label} {cfg.backend} HTTP{cfg.http}: {r['failed']}",
                file=sys.stderr,
            )
        results.append((cfg, r))

    openai = {c.http: r for c, r in results if c.client == "openai"}
    rows = [_fmt_row(c, r, openai.get(c.http)) for c, r in results]
    print_table(
        [
            "client",
            "loop",
            "HTTP",
            "req/s",
            "CPU us/req",
            "p50 ms",
            "p99 ms",
            "client CPU",
            "server CPU",
            "errors",
            "req/s vs openai",
            "openai CPU / this",
        ],
        rows,
        title=f"Throughput, concurrency {concurrency}, server {server} "
        "(ratios: this client vs the openai SDK over the same HTTP version)",
    )
    for c, r in results:
        if r.get("first_error"):
            print(
                f"  first error of {c.label}/{c.backend}/HTTP{c.http}: "
                f"{r['first_error']}"
            )

    summary: list[tuple[str, float | None, str, bool | None]] = []
    for c, r in results:
        if c.client != "ailib":
            continue
        base = openai.get(c.http)
        where = f"{c.backend} HTTP/{'2' if c.http == 2 else '1.1'}"
        if base is None or "failed" in base or "failed" in r:
            summary.append((f"req/s ours/openai ({where})", None, ">= 3", None))
            continue
        x = r["req_s"] / base["req_s"]
        summary.append((f"req/s ours/openai ({where})", x, ">= 3", x >= 3))
        y = base["cpu_us_per_req"] / r["cpu_us_per_req"]
        summary.append((f"CPU/req openai/ours ({where})", y, ">= 3", y >= 3))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--server", choices=("fake-asyncio", "fake-trio", "fast"))
    parser.add_argument("--n", type=int, default=None, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only profile ailib_sc's client side with cProfile and print hot spots",
    )
    args = parser.parse_args(argv)
    if args.profile:
        _profile(
            args.server or "fast",
            n=args.n or 2000,
            warmup=200,
            conc=args.concurrency,
        )
        return 0
    run(quick=args.quick, server=args.server, n=args.n, concurrency=args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
