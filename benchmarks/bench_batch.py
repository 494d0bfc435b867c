"""Batches: 10,000 non-streamed chat completions in one call, then the same
through a server that sends GOAWAY / ``connection: close`` every 1,000.

``python benchmarks/bench_batch.py [--quick] [--n N] [--every N] [--repeat R]
[--no-cross-check]``

1. Plain batch: ``await client.chat_completion_batch(reqs, concurrency=C)``
   (ailib_sc, asyncio and trio) against the openai SDK's idiom, ``asyncio.gather``
   of ``create()`` calls under an ``asyncio.Semaphore(C)`` (``max_retries=0``,
   ``return_exceptions=True``); C = 256 over h2c, 64 over HTTP/1.1. Server:
   ``_fastserver.py --count-ids``, which counts the requests it answered per
   ``x-client-request-id``. Every configuration gets a fresh server and a fresh
   client process, pinned to separate CPUs when there are two; one warm-up batch,
   then ``--repeat`` measured batches for ailib_sc (the median is reported) and
   one for the SDK (it takes ~20 s per batch; one batch of 10,000 is long enough
   to be steady).
2. Faults: the same through ``_fastserver.py --goaway-after N --close-every N``
   (N = 1,000; ``--quick``: a tenth of the batch): every HTTP/2 connection sends
   a graceful GOAWAY(NO_ERROR) after its Nth stream, ahead of the replies still
   in flight, answers the streams up to that one, ignores the higher ones and
   closes; every Nth HTTP/1.1 reply carries ``connection: close``. ailib_sc must
   lose nothing: every request succeeds, the server answered each request id
   exactly once (no duplicates). The SDK's failures are counted and shown.
3. Cross-check (full run only, ailib_sc on asyncio): the same batch through
   ailib_sc's own ``FakeProviderServer`` (``python -m ailib_sc.testing
   --goaway-after 1000 --no-record``, and ``--close-after 100``: its
   ``close_after`` counts per connection, and 64 connections x ~160 requests
   would never reach 1,000). That CLI prints no counters, so there is no
   duplicate check in this table.

Ratios: ailib_sc vs the SDK over the same HTTP version in the same phase (trio
compared with the SDK on asyncio): req/s ours / openai, CPU per request
openai / ours.
"""

from __future__ import annotations

import argparse
import sys
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
    print_table,
    run_json,
    server_cpus,
    srv_share,
    start_server,
    verdict_rows,
)

__all__ = ["main", "run"]

_CLIENT = str(BENCH_DIR / "_batch_client.py")
_FAST = str(BENCH_DIR / "_fastserver.py")
_C_H1, _C_H2 = 64, 256
_TARGET = 3.0  # DESIGN.md §5: >= 3x the SDK's req/s, <= 1/3 of its CPU per request


@dataclass(frozen=True)
class Config:
    client: str
    backend: str
    http: int

    @property
    def label(self) -> str:
        return "ailib_sc" if self.client == "ailib" else "openai SDK"

    @property
    def version(self) -> str:
        return http_name(self.http)

    @property
    def concurrency(self) -> int:
        return _C_H2 if self.http == 2 else _C_H1


_CONFIGS = [
    Config("ailib", "asyncio", 1),
    Config("ailib", "asyncio", 2),
    Config("ailib", "trio", 1),
    Config("ailib", "trio", 2),
    Config("openai", "asyncio", 1),
    Config("openai", "asyncio", 2),
]


def _server_kind(every: int | None) -> str:
    """Register (in ``_common.SERVER_KINDS``) and name the fast server variant."""
    if every is None:
        kind, extra = "fast-count", []
    else:
        kind = f"fast-goaway-{every}"
        extra = ["--goaway-after", str(every), "--close-every", str(every)]
    SERVER_KINDS.setdefault(kind, [_FAST, "--port", "0", "--count-ids", *extra])
    return kind


def _fake_kind(http: int) -> str:
    """The FakeProviderServer variant of the cross-check."""
    kind = f"fake-faults-h{http}"
    faults = ["--goaway-after", "1000"] if http == 2 else ["--close-after", "100"]
    SERVER_KINDS.setdefault(
        kind, ["-m", "ailib_sc.testing", "--port", "0", "--no-record", *faults]
    )
    return kind


def _run_one(
    kind: str, cfg: Config, *, n: int, warmup: int, repeat: int, stats: bool
) -> dict[str, Any]:
    with start_server(kind) as (url, pid):
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
            "--n",
            str(n),
            "--warmup",
            str(warmup),
            "--concurrency",
            str(cfg.concurrency),
            "--repeat",
            str(repeat),
            "--server-pid",
            str(pid),
        ]
        if stats:
            args.append("--stats")
        try:
            return run_json(args, timeout=300)
        except RuntimeError as exc:
            return {"failed": str(exc)}


def _http(cfg: Config, r: dict[str, Any]) -> str:
    got = r.get("http_version", "?")
    return cfg.version if got in (cfg.version, "?") else f"{cfg.version} (got {got})"


def _totals(r: dict[str, Any]) -> dict[str, int]:
    """Sums over all measured batches of a result."""
    runs = r.get("runs", [])
    out = {
        "requests": sum(x["n"] for x in runs),
        "ok": sum(x["ok"] for x in runs),
        "failures": sum(x["failures"] for x in runs),
        "attempts": sum(x.get("attempts", 0) for x in runs),
    }
    servers = [x["server"] for x in runs if x.get("server")]
    if servers:
        for key in servers[0]:
            out["srv_" + key] = sum(s[key] for s in servers)
    return out


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _ratios(
    cfg: Config, r: dict[str, Any], base: dict[str, Any] | None
) -> tuple[str, str]:
    if base is None or "failed" in base or "failed" in r:
        return "n/a", "n/a"
    return (
        fmt_ratio(r["req_s"], base["req_s"]),
        fmt_ratio(base["cpu_us_per_req"], r["cpu_us_per_req"]),
    )


def _run_phase(
    kind: str, *, n: int, warmup: int, repeat: int, stats: bool = True
) -> list[tuple[Config, dict[str, Any]]]:
    results = []
    for cfg in _CONFIGS:
        rep = repeat if cfg.client == "ailib" else 1
        r = _run_one(kind, cfg, n=n, warmup=warmup, repeat=rep, stats=stats)
        if "failed" in r:
            print(
                f"{cfg.label} {cfg.backend} {cfg.version}: {r['failed']}",
                file=sys.stderr,
            )
        results.append((cfg, r))
    return results


def _plain_table(results: list[tuple[Config, dict[str, Any]]], n: int) -> None:
    openai = {c.http: r for c, r in results if c.client == "openai"}
    rows = []
    for cfg, r in results:
        head = [cfg.label, cfg.backend, _http(cfg, r), str(cfg.concurrency)]
        if "failed" in r:
            rows.append([*head, "FAILED", *[""] * 11])
            continue
        t = _totals(r)
        rows.append(
            [
                *head,
                f"{len(r['runs'])}",
                f"{r['req_s']:,.0f}",
                f"{r['cpu_us_per_req']:.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{100 * r['cpu_s'] / r['wall_s']:.0f}%",
                srv_share(r),
                f"{t['failures']:,}",
                f"{t.get('srv_duplicates', '?')}",
                *_ratios(cfg, r, openai.get(cfg.http)),
            ]
        )
    print_table(
        [
            "client",
            "loop",
            "HTTP",
            "C",
            "runs",
            "req/s",
            "CPU us/req",
            "p50 ms",
            "p99 ms",
            "client CPU",
            "server CPU",
            "failures",
            "dups",
            "req/s vs openai",
            "openai CPU / this",
        ],
        rows,
        title=f"Batch of {n:,} non-streamed chat completions, server fast "
        "(ratios: this client vs the openai SDK over the same HTTP version; "
        "ailib_sc: median of the runs, failures and server-counted duplicates "
        "summed over them)",
    )


def _fault_table(
    results: list[tuple[Config, dict[str, Any]]], n: int, every: int, *, title: str
) -> None:
    openai = {c.http: r for c, r in results if c.client == "openai"}
    rows = []
    for cfg, r in results:
        head = [cfg.label, cfg.backend, _http(cfg, r), str(cfg.concurrency)]
        if "failed" in r:
            rows.append([*head, "FAILED", *[""] * 11])
            continue
        t = _totals(r)
        events = t.get("srv_goaways" if cfg.http == 2 else "srv_closes")
        fail_pct = 100 * t["failures"] / t["requests"] if t["requests"] else 0.0
        processed = t.get("srv_processed")
        # Answered by the server, yet an error for the caller: work done and lost.
        lost_done = "?" if processed is None else f"{processed - t['ok']:,}"
        rows.append(
            [
                *head,
                f"{len(r['runs'])}",
                f"{r['req_s']:,.0f}",
                f"{r['cpu_us_per_req']:.0f}",
                f"{r['p99_ms']:.1f}",
                _count(events),
                "-" if cfg.http == 1 else _count(t.get("srv_ignored_streams")),
                f"{t['failures']:,} / {t['requests']:,} ({fail_pct:.1f}%)",
                lost_done,
                "n/a" if not t.get("srv_with_id") else f"{t['srv_duplicates']:,}",
                *_ratios(cfg, r, openai.get(cfg.http)),
            ]
        )
    print_table(
        [
            "client",
            "loop",
            "HTTP",
            "C",
            "runs",
            "req/s",
            "CPU us/req",
            "p99 ms",
            "GOAWAYs/closes",
            "ignored streams",
            "failed requests",
            "answered but failed",
            "dups",
            "req/s vs openai",
            "openai CPU / this",
        ],
        rows,
        title=title,
    )
    for cfg, r in results:
        if "failed" in r:
            continue
        types: dict[str, int] = {}
        for x in r["runs"]:
            for k, v in x["failure_types"].items():
                types[k] = types.get(k, 0) + v
        if types:
            shown = ", ".join(f"{k} x{v:,}" for k, v in types.items())
            print(f"  failures of {cfg.label}/{cfg.backend}/{cfg.version}: {shown}")
            first = next(x["first_error"] for x in r["runs"] if x["first_error"])
            print(f"    first: {first}")
    print(
        "  'answered but failed': requests the server answered whose caller got an "
        "error; 'dups': answers beyond the first per x-client-request-id (n/a: the "
        "SDK sends no request id, and with max_retries=0 it never re-sends a call)"
    )


def _cross_check(*, n: int, warmup: int) -> list[tuple[Config, dict[str, Any]]]:
    rows = []
    results = []
    for http in (1, 2):
        cfg = Config("ailib", "asyncio", http)
        r = _run_one(_fake_kind(http), cfg, n=n, warmup=warmup, repeat=1, stats=False)
        results.append((cfg, r))
        head = [cfg.label, cfg.backend, _http(cfg, r), str(cfg.concurrency)]
        what = "GOAWAY after 1,000 streams" if http == 2 else "close after 100 replies"
        if "failed" in r:
            print(r["failed"], file=sys.stderr)
            rows.append([*head, what, "FAILED", "", "", "", ""])
            continue
        t = _totals(r)
        rows.append(
            [
                *head,
                what + " per connection",
                f"{r['req_s']:,.0f}",
                f"{r['cpu_us_per_req']:.0f}",
                srv_share(r),
                f"{r.get('connections_opened', '?')}",
                f"{t['failures']:,} / {t['requests']:,}",
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


def run(
    *,
    quick: bool = False,
    n: int | None = None,
    every: int | None = None,
    repeat: int | None = None,
    cross_check: bool | None = None,
) -> list[tuple[str, float | None, str, bool | None]]:
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
        f"{_C_H2} over h2c and {_C_H1} over HTTP/1.1; {warmup} warm-up; ailib_sc "
        f"median of {repeat}, openai SDK 1 run; then GOAWAY / connection: close "
        f"every {every:,} =="
    )
    print(f"server CPUs {server_cpus()}, client CPUs {client_cpus()}")
    print(
        "Server: benchmarks/_fastserver.py --count-ids (raw asyncio HTTP/1.1 + h2 "
        "library h2c; counts answers per x-client-request-id)"
    )

    plain = _run_phase(_server_kind(None), n=n, warmup=warmup, repeat=repeat)
    _plain_table(plain, n)

    faults = _run_phase(_server_kind(every), n=n, warmup=warmup, repeat=repeat)
    _fault_table(
        faults,
        n,
        every,
        title=f"Batch of {n:,} through GOAWAY after every {every:,} streams per "
        f"HTTP/2 connection / connection: close on every {every:,}th HTTP/1.1 reply "
        f"(server fast; ailib_sc must fail nothing and duplicate nothing)",
    )
    cross: list[tuple[Config, dict[str, Any]]] = []
    if cross_check:
        cross = _cross_check(n=n, warmup=warmup)
    print(f"(batch benchmark: {time.perf_counter() - t0:.0f} s)")

    summary: list[tuple[str, float | None, str, bool | None]] = []
    base = {c.http: r for c, r in plain if c.client == "openai"}
    for c, r in plain:
        if c.client != "ailib":
            continue
        where = f"{c.backend} {c.version} c={c.concurrency}"
        b = base.get(c.http)
        if b is None or "failed" in b or "failed" in r:
            summary.append((f"batch req/s ours/openai ({where})", None, ">= 3", None))
            continue
        x = r["req_s"] / b["req_s"]
        summary.append((f"batch req/s ours/openai ({where})", x, ">= 3", x >= _TARGET))
        y = b["cpu_us_per_req"] / r["cpu_us_per_req"]
        summary.append(
            (f"batch CPU/req openai/ours ({where})", y, ">= 3", y >= _TARGET)
        )

    # Faults: ailib_sc loses nothing and duplicates nothing, in every
    # configuration, and the faults really happened.
    ours = [(c, r) for c, r in faults + cross if c.client == "ailib"]
    crashed = any("failed" in r for _, r in ours)
    failures = dups = 0
    checks_ok = True
    for c, r in ours:
        if "failed" in r:
            continue
        t = _totals(r)
        failures += t["requests"] - t["ok"]
        if "srv_processed" in t:
            dups += t["srv_duplicates"]
            # Exactly one answer per request id, and the faults did happen.
            events = t["srv_goaways" if c.http == 2 else "srv_closes"]
            if t["srv_processed"] != t["requests"] or not events:
                checks_ok = False
            if t["srv_distinct_ids"] != t["requests"]:
                checks_ok = False
    summary.append(
        (
            "GOAWAY/close: ailib_sc failed requests",
            None if crashed else float(failures),
            "0",
            not crashed and failures == 0 and checks_ok,
        )
    )
    summary.append(
        (
            "GOAWAY/close: ailib_sc duplicates",
            None if crashed else float(dups),
            "0",
            not crashed and dups == 0,
        )
    )
    for c, r in faults:
        if c.client != "openai" or "failed" in r:
            continue
        t = _totals(r)
        what = "GOAWAY (HTTP/2)" if c.http == 2 else "close (HTTP/1.1)"
        pct = 100 * t["failures"] / t["requests"] if t["requests"] else None
        summary.append((f"{what}: openai SDK failed %", pct, "info", None))
    return summary


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
