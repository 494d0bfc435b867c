"""Batches: 10,000 non-streamed chat completions in one call, then the same
through a server that sends GOAWAY / ``connection: close`` every 1,000.

``python benchmarks/bench_batch.py [--quick] [--n N] [--every N] [--repeat R]
[--no-cross-check]``

1. Plain batch: ``await client.chat_completion_batch(reqs, concurrency=C)``
   (ailib_sc, asyncio and trio) against the peers' idiom, ``asyncio.gather`` of
   calls under an ``asyncio.Semaphore(C)`` (``return_exceptions=True``): the
   openai SDK's ``create()`` (``max_retries=0``) on httpx and on aiohttp, and a
   bare aiohttp + msgspec call; C = 256 over h2c, 64 over HTTP/1.1. Server:
   ``_fastserver.py --count-ids``, which counts the requests it answered per
   ``x-client-request-id``. Every configuration gets a fresh server and a fresh
   client process, pinned to separate CPUs when there are two; one warm-up batch,
   then ``--repeat`` measured batches (the median is reported), one for the
   SDKs (~20 s per batch; one batch of 10,000 is long enough to be steady).
2. Faults: the same through ``_fastserver.py --goaway-after N --close-every N``
   (N = 1,000; ``--quick``: a tenth of the batch): every HTTP/2 connection sends
   a graceful GOAWAY(NO_ERROR) after its Nth stream, ahead of the replies still
   in flight, answers the streams up to that one, ignores the higher ones and
   closes; every Nth HTTP/1.1 reply carries ``connection: close``. ailib_sc must
   lose nothing: every request succeeds, the server answered each request id
   exactly once (no duplicates). The peers' failures are counted and shown.
3. Cross-check (full run only, ailib_sc on asyncio): the same batch through
   ailib_sc's own ``FakeProviderServer`` (``python -m ailib_sc.testing
   --goaway-after 1000 --no-record``, and ``--close-after 100``: its
   ``close_after`` counts per connection, and 64 connections x ~160 requests
   would never reach 1,000). That CLI prints no counters, so there is no
   duplicate check in this table.

Ratios: ailib_sc vs the SDK on httpx over the same HTTP version in the same
phase (trio compared with the SDK on asyncio), then vs each peer: req/s ours /
peer's, CPU per request peer's / ours.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    OURS,
    PEER_CONFIGS,
    Config,
    Summary,
    client_cpus,
    fmt_pct,
    http_cell,
    print_results,
    print_table,
    ratio_summary,
    run_client,
    server_cpus,
    server_kind,
    srv_share,
    verdict_rows,
)

__all__ = ["main", "run"]

_TARGET = 3.0  # DESIGN.md §5: >= 3x the SDK's req/s, <= 1/3 of its CPU per request
# The SDKs take ~20 s per batch of 10,000: one measured batch each.
_CONFIGS = [
    *OURS,
    *(replace(c, repeat=1) if "openai" in c.client else c for c in PEER_CONFIGS),
]


def _conc(cfg: Config) -> int:
    return 256 if cfg.http == 2 else 64


def _run(
    kind: str, cfg: Config, *, n: int, warmup: int, repeat: int, stats: bool = True
) -> dict[str, Any]:
    flags = ["--n", str(n), "--warmup", str(warmup), "--concurrency", str(_conc(cfg))]
    flags += ["--repeat", str(cfg.repeat or repeat), *(["--stats"] if stats else [])]
    return run_client(kind, "batch", cfg, *flags, timeout=300)


def _totals(r: dict[str, Any]) -> dict[str, int]:
    """Sums over all measured batches of a result."""
    runs = r.get("runs", [])
    out = {k: sum(x.get(k, 0) for x in runs) for k in ("units", "ok", "failures")}
    servers = [x["server"] for x in runs if x.get("server")]
    for key in servers[0] if servers else ():
        out["srv_" + key] = sum(s[key] for s in servers)
    return out


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _fault_cells(c: Config, r: dict[str, Any]) -> list[str]:
    t = _totals(r)
    events = t.get("srv_goaways" if c.http == 2 else "srv_closes")
    pct = 100 * t["failures"] / t["units"] if t["units"] else 0.0
    processed = t.get("srv_processed")
    return [
        _count(events),
        "-" if c.http == 1 else _count(t.get("srv_ignored_streams")),
        f"{t['failures']:,} / {t['units']:,} ({pct:.1f}%)",
        # Answered by the server, yet an error for the caller: work done and lost.
        "?" if processed is None else f"{processed - t['ok']:,}",
        "n/a" if not t.get("srv_with_id") else f"{t['srv_duplicates']:,}",
    ]


_HEAD = [
    ("C", lambda c, r: str(_conc(c))),
    ("runs", lambda c, r: str(len(r["runs"]))),
    ("req/s", lambda c, r: f"{r['rate']:,.0f}"),
    ("CPU us/req", lambda c, r: f"{r['cpu_us']:.0f}"),
]
_PLAIN = [
    *_HEAD,
    ("p50 ms", lambda c, r: f"{r['p50_ms']:.1f}"),
    ("p99 ms", lambda c, r: f"{r['p99_ms']:.1f}"),
    ("client CPU", lambda c, r: fmt_pct(r["cpu_s"], r["wall_s"])),
    ("server CPU", lambda c, r: srv_share(r)),
    ("failures", lambda c, r: f"{_totals(r)['failures']:,}"),
    ("dups", lambda c, r: f"{_totals(r).get('srv_duplicates', '?')}"),
]
_FAULTS = [
    *_HEAD,
    ("p99 ms", lambda c, r: f"{r['p99_ms']:.1f}"),
    *(
        (h, lambda c, r, i=i: _fault_cells(c, r)[i])
        for i, h in enumerate(
            [
                "GOAWAYs/closes",
                "ignored streams",
                "failed requests",
                "answered but failed",
                "dups",
            ]
        )
    ),
]


def _failure_types(results: list[tuple[Config, dict[str, Any]]]) -> None:
    for cfg, r in results:
        types: dict[str, int] = {}
        for x in r.get("runs", []):
            for k, v in x["failure_types"].items():
                types[k] = types.get(k, 0) + v
        if types:
            shown = ", ".join(f"{k} x{v:,}" for k, v in types.items())
            print(f"  failures of {cfg.where}: {shown}")
    print(
        "  'answered but failed': requests the server answered whose caller got an "
        "error; 'dups': answers beyond the first per x-client-request-id (n/a: the "
        "SDKs and aiohttp send no request id, and with max_retries=0 the SDK never "
        "re-sends a call)"
    )


def _cross_check(*, n: int, warmup: int) -> list[tuple[Config, dict[str, Any]]]:
    rows = []
    results = []
    for http in (1, 2):
        cfg = Config("ailib", http=http)
        faults = ["--goaway-after", "1000"] if http == 2 else ["--close-after", "100"]
        kind = server_kind("fake-asyncio", "--no-record", *faults)
        r = _run(kind, cfg, n=n, warmup=warmup, repeat=1, stats=False)
        results.append((cfg, r))
        head = [cfg.name, cfg.backend, http_cell(cfg, r), str(_conc(cfg))]
        what = "GOAWAY after 1,000 streams" if http == 2 else "close after 100 replies"
        if "failed" in r:
            rows.append([*head, what, "FAILED"])
            continue
        t = _totals(r)
        rows.append(
            [
                *head,
                what + " per connection",
                f"{r['rate']:,.0f}",
                f"{r['cpu_us']:.0f}",
                srv_share(r),
                f"{r.get('connections_opened', '?')}",
                f"{t['failures']:,} / {t['units']:,}",
            ]
        )
    print_table(
        [
            "client",
            "loop",
            "HTTP",
            "C",
            "FakeProviderServer fault",
            "req/s",
            "CPU us/req",
            "server CPU",
            "connections",
            "failed requests",
        ],
        rows,
        title=f"Cross-check: batch of {n:,} through ailib_sc.testing "
        "FakeProviderServer (asyncio), one run each (no duplicate count: "
        "its CLI prints none)",
    )
    return results


def _fault_summary(
    faults: list[tuple[Config, dict[str, Any]]],
    cross: list[tuple[Config, dict[str, Any]]],
) -> Summary:
    # ailib_sc loses nothing and duplicates nothing, in every configuration,
    # and the faults really happened.
    ours = [(c, r) for c, r in faults + cross if c.client == "ailib"]
    crashed = any("failed" in r for _, r in ours)
    failures = dups = 0
    checks_ok = True
    for c, r in ours:
        if "failed" in r:
            continue
        t = _totals(r)
        failures += t["units"] - t["ok"]
        if "srv_processed" in t:
            dups += t["srv_duplicates"]
            # Exactly one answer per request id, and the faults did happen.
            events = t["srv_goaways" if c.http == 2 else "srv_closes"]
            if t["srv_processed"] != t["units"] or not events:
                checks_ok = False
            if t["srv_distinct_ids"] != t["units"]:
                checks_ok = False
    summary: Summary = [
        (
            "GOAWAY/close: ailib_sc failed requests",
            None if crashed else float(failures),
            "0",
            not crashed and failures == 0 and checks_ok,
        ),
        (
            "GOAWAY/close: ailib_sc duplicates",
            None if crashed else float(dups),
            "0",
            not crashed and dups == 0,
        ),
    ]
    for c, r in faults:
        if c.client == "ailib" or "failed" in r:
            continue
        t = _totals(r)
        what = "GOAWAY (HTTP/2)" if c.http == 2 else "close (HTTP/1.1)"
        pct = 100 * t["failures"] / t["units"] if t["units"] else None
        summary.append((f"{what}: {c.name} failed %", pct, "info", None))
    return summary


def run(
    *,
    quick: bool = False,
    n: int | None = None,
    every: int | None = None,
    repeat: int | None = None,
    cross_check: bool | None = None,
) -> Summary:
    """Run the benchmark, print its tables; return summary rows
    ``(what, value, target, met)`` for ``run_all.py``."""
    t0 = time.perf_counter()
    n = n or (2000 if quick else 10_000)
    every = every or (max(1, n // 10) if quick else 1000)
    repeat = repeat or (1 if quick else 3)
    warmup = 256 if quick else 512
    cross_check = (not quick) if cross_check is None else cross_check
    print(
        f"== Batches: {n:,} non-streamed chat completions per batch, concurrency "
        f"256 over h2c and 64 over HTTP/1.1; {warmup} warm-up; ailib_sc and "
        f"aiohttp+msgspec median of {repeat}, the openai SDKs 1 run; then GOAWAY / "
        f"connection: close every {every:,} =="
    )
    print(f"server CPUs {server_cpus()}, client CPUs {client_cpus()}")
    print(
        "Server: benchmarks/_fastserver.py --count-ids (raw asyncio HTTP/1.1 + h2 "
        "library h2c; counts answers per x-client-request-id)"
    )
    kind = server_kind("fast", "--count-ids")
    plain = [(c, _run(kind, c, n=n, warmup=warmup, repeat=repeat)) for c in _CONFIGS]
    print_results(
        plain,
        _PLAIN,
        title=f"Batch of {n:,} non-streamed chat completions, server fast "
        "(ratios: this client vs the openai SDK over the same HTTP version; "
        "median of the runs, failures and server-counted duplicates summed over "
        "them)",
        rate="req/s",
        unit="request",
    )
    e = str(every)
    kind = server_kind("fast", "--count-ids", "--goaway-after", e, "--close-every", e)
    faults = [(c, _run(kind, c, n=n, warmup=warmup, repeat=repeat)) for c in _CONFIGS]
    print_results(
        faults,
        _FAULTS,
        title=f"Batch of {n:,} through GOAWAY after every {every:,} streams per "
        f"HTTP/2 connection / connection: close on every {every:,}th HTTP/1.1 reply "
        f"(server fast; ailib_sc must fail nothing and duplicate nothing)",
        rate="req/s",
        unit="request",
    )
    _failure_types(faults)
    cross = _cross_check(n=n, warmup=warmup) if cross_check else []
    print(f"(batch benchmark: {time.perf_counter() - t0:.0f} s)")
    summary = ratio_summary(
        plain,
        what="batch ",
        rate="req/s",
        unit="req",
        rate_target=_TARGET,
        cpu_target=_TARGET,
        where=lambda c: f" c={_conc(c)}",
    )
    return summary + _fault_summary(faults, cross)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--n", type=int, default=None, help="requests per batch")
    parser.add_argument(
        "--every", type=int, default=None, help="GOAWAY / close every N (1000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="measured ailib_sc batches (3)"
    )
    parser.add_argument(
        "--no-cross-check",
        dest="cross_check",
        action="store_false",
        default=None,
        help="skip the FakeProviderServer cross-check",
    )
    args = parser.parse_args(argv)
    summary = run(
        quick=args.quick,
        n=args.n,
        every=args.every,
        repeat=args.repeat,
        cross_check=args.cross_check,
    )
    print_table(["measure", "value", "target", "verdict"], verdict_rows(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
