"""Streaming: chunks/s and client CPU per streamed chunk on a loopback server.

``python benchmarks/bench_stream.py [--quick] [--server fake-asyncio|fake-trio|fast]
[--profile]``

Two workloads: one stream of 20,000 content chunks, and 64 concurrent streams of
500 chunks each (``--quick``: 5,000 and 64 x 100). Every event is its own
HTTP/1.1 chunk or HTTP/2 DATA frame, in OpenAI's ``chat.completion.chunk`` shape.

1. Server probe: the cheapest client we can write (``_driver.py stream --client
   raw``) and ailib_sc's client read the single long stream from each candidate
   server over HTTP/1.1 and h2c; the server's CPU per chunk comes from /proc.
   The client runs use the server with the highest capacity (or ``--server``),
   so that they are client-bound; the server's CPU share in each run shows it.
2. Client runs: for each workload and configuration a fresh server process and a
   fresh client process (pinned to separate CPUs when there are two), one warm-up
   round, then three measured rounds; the round with the median chunks/s is
   reported. Client CPU is ``time.process_time()`` over the measured round, per
   content chunk. Every round is checked: content chunks received equal what
   the server sent, every stream ended with its usage chunk, no errors.

Ratios are against the openai SDK (asyncio, on httpx) over the same HTTP
version, then against each peer (the SDK on aiohttp, bare aiohttp + msgspec), on
the same workload, measured in the same invocation against the same server.
"""

from __future__ import annotations

import importlib.util
import sys
import time
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
    server_kind,
    srv_share,
)

__all__ = ["main", "run"]

_TARGET = 5.0  # DESIGN.md §5: client CPU per streamed chunk <= 1/5 of openai's


def _workloads(quick: bool) -> list[tuple[int, int, int]]:
    """(streams, content chunks per stream, per warm-up stream of the slow
    clients on the fast server)."""
    if quick:
        return [(1, 5000, 500), (64, 100, 20)]
    return [(1, 20000, 1000), (64, 500, 50)]


def _configs(quick: bool) -> list[Config]:
    cfgs = [*OURS, *PEER_CONFIGS]
    if quick:
        return cfgs
    if importlib.util.find_spec("litellm") is not None:
        # ~350 us per chunk: one measured round keeps the run short.
        cfgs.append(Config("litellm", label="litellm (1 round)", repeat=1))
    cfgs.append(Config("raw", label="raw asyncio (ceiling)"))
    cfgs.append(Config("raw", http=2, label="raw h2 (ceiling)"))
    return cfgs


def _run(
    server: str,
    cfg: Config,
    wl: tuple[int, int, int],
    *,
    repeat: int,
    profile: str | None = None,
) -> dict[str, Any]:
    streams, chunks, warm = wl
    flags = ["--streams", str(streams), "--chunks", str(chunks)]
    flags += ["--repeat", str(cfg.repeat or repeat)]
    if server == "fast":  # FakeProviderServer ignores x-stream-chunks
        flags += ["--warmup-chunks", str(warm)]
    if profile is not None:
        flags += ["--profile", profile]
    kind = server_kind(server, "--stream-chunks", str(chunks))
    return run_client(kind, "stream", cfg, *flags)


def _check(r: dict[str, Any]) -> str:
    """``ok`` if every round (warm-up included) got every chunk and usage."""
    ok = "ok" if r["rounds_ok"] == r["rounds"] else "FAIL"
    return f"{ok} {r['rounds_ok']}/{r['rounds']}"


_COLUMNS = [
    ("chunks/s", lambda c, r: f"{r['rate']:,.0f}"),
    ("CPU us/chunk", lambda c, r: f"{r['cpu_us']:.1f}"),
    ("client CPU", lambda c, r: fmt_pct(r["cpu_s"], r["wall_s"])),
    ("server CPU", lambda c, r: srv_share(r, "server_cpu_total_s", "wall_total_s")),
    ("check", lambda c, r: _check(r)),
    ("errors", lambda c, r: str(r["errors"])),
]


def _label(wl: tuple[int, int, int]) -> str:
    return f"{wl[0]}x{wl[1]:,}"


def run(*, quick: bool = False, server: str | None = None) -> Summary:
    """Run the benchmark, print its tables; return summary rows
    ``(what, value, target, met)`` for ``run_all.py``."""
    t0 = time.perf_counter()
    repeat = 1 if quick else 3
    workloads = _workloads(quick)
    print(
        "== Streaming: "
        + " and ".join(
            f"{s} stream{'s' if s > 1 else ''} of {c:,} chunks" for s, c, _ in workloads
        )
        + f", 1 warm-up round, median of {repeat} =="
    )
    print(f"server CPUs {server_cpus()}, client CPUs {client_cpus()}")
    if server is None:
        kinds = (
            ["fake-asyncio", "fast"] if quick else ["fake-asyncio", "fake-trio", "fast"]
        )
        clients = [Config("raw")]
        if not quick:
            clients.append(Config("ailib", label="ailib_sc asyncio"))
        server = probe(
            kinds,
            clients,
            lambda k, c: _run(k, c, workloads[0], repeat=3),
            rate="chunks/s",
            unit="chunk",
            digits=1,
            extra=[("check", _check)],
            title=f"Server probe: one stream of {workloads[0][1]:,} chunks, median "
            "of 3 (server CPU near 100% = the server is the bottleneck; capacity = "
            "1 / server CPU per chunk over all rounds; >N: fewer than 5 /proc ticks)",
        )
    print(f"\nClient runs use server: {server} = {SERVER_WHAT[server]}")

    summary: Summary = []
    failed_checks: list[str] = []
    for wl in workloads:
        results = [(c, _run(server, c, wl, repeat=repeat)) for c in _configs(quick)]
        print_results(
            results,
            _COLUMNS,
            title=f"Streaming, {wl[0]} concurrent stream{'s' if wl[0] > 1 else ''} "
            f"x {wl[1]:,} chunks, server {server} (ratios: this client vs the openai "
            f"SDK over the same HTTP version; target openai CPU / ailib_sc >= "
            f"{_TARGET:g})",
            rate="chunks/s",
            unit="chunk",
        )
        for c, r in results:
            if "failed" not in r and r["rounds_ok"] != r["rounds"]:
                failed_checks.append(c.where)
                print(
                    f"  {c.where}: chunks {r['chunks_seen']} (expected "
                    f"{r['chunks_expected']}), usage chunks {r['usage_seen']}"
                )
        summary += ratio_summary(
            results,
            what="stream ",
            rate="chunks/s",
            unit="chunk",
            rate_target=None,
            cpu_target=_TARGET,
            where=lambda c, wl=wl: f", {_label(wl)}",
        )
    summary.append(
        (
            "stream runs failing the chunk check",
            float(len(failed_checks)),
            "0",
            not failed_checks,
        )
    )
    if failed_checks:
        print(f"chunk check failed: {', '.join(failed_checks)}")
    print(f"\n(streaming benchmark: {time.perf_counter() - t0:.0f} s)")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(
        __doc__, "only profile ailib_sc's client on the long stream with cProfile"
    )
    args = parser.parse_args(argv)
    if args.profile:
        wl = _workloads(args.quick)[0]
        profile(
            lambda c, out: _run(args.server or "fast", c, wl, repeat=1, profile=out),
            what=f"{_label(wl)} chunks",
            rate="chunks/s",
            unit="chunk",
            digits=2,
        )
        return 0
    run(quick=args.quick, server=args.server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
