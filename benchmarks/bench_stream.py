"""Streaming: chunks/s and client CPU per streamed chunk on a loopback server.

``python benchmarks/bench_stream.py [--quick] [--server fake-asyncio|fake-trio|fast]
[--profile]``

Two workloads: one stream of 20,000 content chunks, and 64 concurrent streams of
500 chunks each (``--quick``: 5,000 and 64 x 100). Every event is its own
HTTP/1.1 chunk or HTTP/2 DATA frame, in OpenAI's ``chat.completion.chunk`` shape.

1. Server probe: the cheapest client we can write (``_stream_client.py --client
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

Ratios are against the openai SDK (asyncio) over the same HTTP version, on the
same workload, measured in the same invocation against the same server.
"""

from __future__ import annotations

import argparse
import importlib.util
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BENCH_DIR,
    SERVER_KINDS,
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

_CLIENT = str(BENCH_DIR / "_stream_client.py")
_TARGET = 5.0  # DESIGN.md §5: client CPU per streamed chunk <= 1/5 of openai's
_SERVER_WHAT = {
    "fast": "benchmarks/_fastserver.py (pre-rendered events: one write per reply "
    "over HTTP/1.1, hand-framed DATA frames over h2c)",
    "fake-asyncio": "ailib_sc.testing FakeProviderServer on asyncio",
    "fake-trio": "ailib_sc.testing FakeProviderServer on trio",
}


@dataclass(frozen=True)
class Workload:
    streams: int
    chunks: int  # content chunks per stream
    warmup_chunks: int  # per warm-up stream, for the slow clients (fast server)

    @property
    def label(self) -> str:
        return f"{self.streams}x{self.chunks:,}"


@dataclass(frozen=True)
class Config:
    client: str
    backend: str
    http: int
    label: str
    repeat: int | None = None  # None: the run's default


def _workloads(quick: bool) -> list[Workload]:
    if quick:
        return [Workload(1, 5000, 500), Workload(64, 100, 20)]
    return [Workload(1, 20000, 1000), Workload(64, 500, 50)]


def _configs(quick: bool) -> list[Config]:
    cfgs = [
        Config("ailib", "asyncio", 1, "ailib_sc"),
        Config("ailib", "asyncio", 2, "ailib_sc"),
        Config("ailib", "trio", 1, "ailib_sc"),
        Config("ailib", "trio", 2, "ailib_sc"),
        Config("openai", "asyncio", 1, "openai SDK"),
        Config("openai", "asyncio", 2, "openai SDK"),
    ]
    if quick:
        return cfgs
    if importlib.util.find_spec("litellm") is not None:
        # ~350 us per chunk: one measured round keeps the run short.
        cfgs.append(Config("litellm", "asyncio", 1, "litellm (1 round)", repeat=1))
    cfgs += [
        Config("raw", "asyncio", 1, "raw asyncio (ceiling)"),
        Config("raw", "asyncio", 2, "raw h2 (ceiling)"),
    ]
    return cfgs


def _server_kind(server: str, chunks: int) -> str:
    """Register (in this process) and return a server kind streaming ``chunks``."""
    kind = f"{server}@{chunks}"
    if kind not in SERVER_KINDS:
        SERVER_KINDS[kind] = [*SERVER_KINDS[server], "--stream-chunks", str(chunks)]
    return kind


def _run_one(
    server: str,
    cfg: Config,
    wl: Workload,
    *,
    repeat: int,
    profile: str | None = None,
) -> dict[str, Any]:
    with start_server(_server_kind(server, wl.chunks)) as (url, pid):
        args = [
            _CLIENT,
            "--client",
            cfg.client,
            "--backend",
            cfg.backend,
            "--http",
            str(cfg.http),
            "--url",
            url,
            "--streams",
            str(wl.streams),
            "--chunks",
            str(wl.chunks),
            "--repeat",
            str(cfg.repeat or repeat),
            "--server-pid",
            str(pid),
        ]
        if server == "fast":  # FakeProviderServer ignores x-stream-chunks
            args += ["--warmup-chunks", str(wl.warmup_chunks)]
        if profile is not None:
            args += ["--profile", profile]
        try:
            return run_json(args, timeout=240)
        except RuntimeError as exc:
            return {"failed": str(exc)}


def _capacity(r: dict[str, Any]) -> tuple[float, str]:
    """What the server could stream if the client were free: chunks per second
    of server CPU over all measured rounds (a lower bound, shown as ``>N``,
    when /proc saw fewer than 5 ticks)."""
    srv = r.get("server_cpu_total_s")
    if srv is None:
        return r["chunk_s"], "?"
    if srv < 0.05:
        cap = r["chunks_total"] / (srv + 0.01)
        return max(cap, r["chunk_s"]), f">{max(cap, r['chunk_s']):,.0f}"
    cap = max(r["chunks_total"] / srv, r["chunk_s"])
    return cap, f"{cap:,.0f}"


def _check(r: dict[str, Any]) -> str:
    """``ok`` if every round (warm-up included) got every chunk and usage."""
    if r["rounds_ok"] == r["rounds"]:
        return f"ok {r['rounds_ok']}/{r['rounds']}"
    return f"FAIL {r['rounds_ok']}/{r['rounds']}"


def _probe(kinds: list[str], wl: Workload, *, repeat: int, with_ailib: bool) -> str:
    """Measure each server kind; return the one with the highest capacity."""
    rows = []
    capacity: dict[str, dict[int, float]] = {}
    clients = [Config("raw", "asyncio", 1, "raw")]
    if with_ailib:
        clients.append(Config("ailib", "asyncio", 1, "ailib_sc asyncio"))
    for kind in kinds:
        for http in (1, 2):
            version = http_name(http)
            for c in clients:
                cfg = Config(c.client, c.backend, http, c.label)
                r = _run_one(kind, cfg, wl, repeat=repeat)
                if "failed" in r:
                    rows.append([kind, version, c.label, "FAILED", *[""] * 7])
                    print(r["failed"], file=sys.stderr)
                    continue
                cap, shown = _capacity(r)
                if c.client == "raw":
                    capacity.setdefault(kind, {})[http] = cap
                srv = r.get("server_cpu_total_s")
                rows.append(
                    [
                        kind,
                        r["http_version"],
                        c.label,
                        f"{r['chunk_s']:,.0f}",
                        f"{r['cpu_us_per_chunk']:.1f}",
                        "?" if srv is None else f"{srv / r['chunks_total'] * 1e6:.1f}",
                        shown,
                        srv_share(r, "server_cpu_total_s", "wall_total_s"),
                        f"{100 * r['cpu_s'] / r['wall_s']:.0f}%",
                        _check(r),
                    ]
                )
    print_table(
        [
            "server",
            "HTTP",
            "client",
            "chunks/s",
            "client CPU us/chunk",
            "server CPU us/chunk",
            "capacity chunks/s",
            "server CPU",
            "client CPU",
            "check",
        ],
        rows,
        title=f"Server probe: one stream of {wl.chunks:,} chunks, median of {repeat} "
        "(server CPU near 100% = the server is the bottleneck; capacity = 1 / "
        "server CPU per chunk over all rounds; >N: fewer than 5 /proc ticks)",
    )
    ok = {k: v for k, v in capacity.items() if len(v) == 2}
    if not ok:
        return "fast"
    return max(ok, key=lambda k: min(ok[k].values()))


def _fmt_row(cfg: Config, r: dict[str, Any], base: dict[str, Any] | None) -> list:
    http = http_name(cfg.http)
    if "failed" in r:
        return [cfg.label, cfg.backend, http, "FAILED", *[""] * 7]
    version = r.get("http_version", "?")
    if version != http:
        http = f"{http} (got {version})"
    ok_base = base is not None and "failed" not in base
    return [
        cfg.label,
        cfg.backend,
        http,
        f"{r['chunk_s']:,.0f}",
        f"{r['cpu_us_per_chunk']:.1f}",
        f"{100 * r['cpu_s'] / r['wall_s']:.0f}%",
        srv_share(r, "server_cpu_total_s", "wall_total_s"),
        _check(r),
        str(r["errors"]),
        fmt_ratio(r["chunk_s"], base["chunk_s"]) if ok_base else "n/a",
        fmt_ratio(base["cpu_us_per_chunk"], r["cpu_us_per_chunk"])
        if ok_base
        else "n/a",
    ]


# ---------------------------------------------------------------- profile


def _profile(server: str, wl: Workload) -> None:
    """Run ailib_sc's client on the long stream under cProfile (asyncio and trio,
    both HTTP versions); print own time by package, ailib_sc's functions, and
    the hottest functions overall, all per chunk.

    cProfile inflates everything 2-3x and counts each resumption of a coroutine
    as a call; read the shares, not the absolute numbers."""
    for backend, http in (("asyncio", 1), ("asyncio", 2), ("trio", 1), ("trio", 2)):
        cfg = Config("ailib", backend, http, "ailib_sc")
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "prof")
            r = _run_one(server, cfg, wl, repeat=1, profile=out)
            if "failed" in r:
                print(r["failed"], file=sys.stderr)
                continue
            stats = pstats.Stats(out)
        n = r["chunks"] or 1
        total = profile_total(stats)
        print(
            f"\n== cProfile, ailib_sc on {backend} over {http_name(http)}: "
            f"{wl.label} chunks, {r['chunk_s']:,.0f} chunks/s and "
            f"{r['cpu_us_per_chunk']:.1f} us CPU/chunk under the profiler; "
            f"{total / n * 1e6:.1f} us/chunk profiled; check {_check(r)} =="
        )
        print_profile(stats, n, harness="_stream_client.py", unit="chunk", digits=2)


# ---------------------------------------------------------------- run


def run(
    *, quick: bool = False, server: str | None = None
) -> list[tuple[str, float | None, str, bool | None]]:
    """Run the benchmark, print its tables; return summary rows
    ``(what, value, target, met)`` for ``run_all.py``."""
    t0 = time.perf_counter()
    repeat = 1 if quick else 3
    workloads = _workloads(quick)
    print(
        "== Streaming: "
        + " and ".join(
            f"{w.streams} stream{'s' if w.streams > 1 else ''} of {w.chunks:,} chunks"
            for w in workloads
        )
        + f", 1 warm-up round, median of {repeat} =="
    )
    print(f"server CPUs {server_cpus()}, client CPUs {client_cpus()}")
    if server is None:
        kinds = (
            ["fake-asyncio", "fast"] if quick else ["fake-asyncio", "fake-trio", "fast"]
        )
        server = _probe(kinds, workloads[0], repeat=3, with_ailib=not quick)
    print(f"\nClient runs use server: {server} = {_SERVER_WHAT[server]}")

    summary: list[tuple[str, float | None, str, bool | None]] = []
    failed_checks: list[str] = []
    for wl in workloads:
        results: list[tuple[Config, dict[str, Any]]] = []
        for cfg in _configs(quick):
            r = _run_one(server, cfg, wl, repeat=repeat)
            if "failed" in r:
                print(
                    f"{cfg.label} {cfg.backend} HTTP{cfg.http}: {r['failed']}",
                    file=sys.stderr,
                )
            elif r["rounds_ok"] != r["rounds"]:
                failed_checks.append(f"{cfg.label}/{cfg.backend}/HTTP{cfg.http}")
            results.append((cfg, r))

        openai = {c.http: r for c, r in results if c.client == "openai"}
        rows = [_fmt_row(c, r, openai.get(c.http)) for c, r in results]
        print_table(
            [
                "client",
                "loop",
                "HTTP",
                "chunks/s",
                "CPU us/chunk",
                "client CPU",
                "server CPU",
                "check",
                "errors",
                "chunks/s vs openai",
                "openai CPU / this",
            ],
            rows,
            title=f"Streaming, {wl.streams} concurrent stream"
            f"{'s' if wl.streams > 1 else ''} x {wl.chunks:,} chunks, server "
            f"{server} (ratios: this client vs the openai SDK over the same HTTP "
            f"version; target openai CPU / ailib_sc >= {_TARGET:g})",
        )
        for c, r in results:
            if "failed" in r:
                continue
            if r.get("first_error") or r["rounds_ok"] != r["rounds"]:
                print(
                    f"  {c.label}/{c.backend}/HTTP{c.http}: chunks "
                    f"{r['chunks_seen']} (expected {r['chunks_expected']}), usage "
                    f"chunks {r['usage_seen']}, first error: {r.get('first_error')}"
                )

        for c, r in results:
            if c.client != "ailib":
                continue
            base = openai.get(c.http)
            where = f"{c.backend} HTTP/{'2' if c.http == 2 else '1.1'}, {wl.label}"
            if base is None or "failed" in base or "failed" in r:
                summary.append(
                    (f"stream CPU/chunk openai/ours ({where})", None, ">= 5", None)
                )
                continue
            y = base["cpu_us_per_chunk"] / r["cpu_us_per_chunk"]
            summary.append(
                (f"stream CPU/chunk openai/ours ({where})", y, ">= 5", y >= _TARGET)
            )
            x = r["chunk_s"] / base["chunk_s"]
            summary.append((f"stream chunks/s ours/openai ({where})", x, "info", None))
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--server", choices=("fake-asyncio", "fake-trio", "fast"))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only profile ailib_sc's client on the long stream with cProfile",
    )
    args = parser.parse_args(argv)
    if args.profile:
        _profile(args.server or "fast", _workloads(args.quick)[0])
        return 0
    run(quick=args.quick, server=args.server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
