"""What the benchmark scripts share: servers, client runs, tables, ratios, profiles.

Every benchmark talks to loopback only. Servers and clients run in separate
processes; on a machine with two or more CPUs the server is pinned to one CPU and
each client process to another, so neither steals the other's core. A client
run is ``_driver.py MODE`` (``tp``, ``stream`` or ``batch``) against a fresh
server process; the orchestrators (``bench_throughput.py``, ``bench_stream.py``,
``bench_batch.py``) list the configurations and print the tables built here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import select
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent

#: name -> command line (after the interpreter) of each server we can start.
SERVER_KINDS: dict[str, list[str]] = {
    "fake-asyncio": ["-m", "ailib_sc.testing", "--port", "0", "--backend", "asyncio"],
    "fake-trio": ["-m", "ailib_sc.testing", "--port", "0", "--backend", "trio"],
    "fast": [str(BENCH_DIR / "_fastserver.py"), "--port", "0"],
}


#: What each of those servers is, for the output.
SERVER_WHAT = {
    "fast": "benchmarks/_fastserver.py (raw asyncio HTTP/1.1 + h2 library h2c; "
    "streamed replies pre-rendered: one write per HTTP/1.1 reply, hand-framed "
    "DATA frames over h2c)",
    "fake-asyncio": "ailib_sc.testing FakeProviderServer on asyncio",
    "fake-trio": "ailib_sc.testing FakeProviderServer on trio",
}


def _cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return []


def server_cpus() -> set[int] | None:
    """CPUs for the server process: the last one, if there are at least two."""
    cpus = _cpus()
    return {cpus[-1]} if len(cpus) >= 2 else None


def client_cpus() -> set[int] | None:
    """CPUs for a client process: all but the server's, if there are two or more."""
    cpus = _cpus()
    return set(cpus[:-1]) if len(cpus) >= 2 else None


def subprocess_env() -> dict[str, str]:
    """The environment for child processes: the project importable, no proxies."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + path if path else "")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "AI_PROXY_URL"):
        env.pop(name, None)
        env.pop(name.lower(), None)
    env["NO_PROXY"] = env["no_proxy"] = "*"
    # openai reads these; make sure nothing points it at a real endpoint.
    env.pop("OPENAI_BASE_URL", None)
    env["OPENAI_API_KEY"] = "x"
    # litellm (an optional baseline) fetches a model cost map and tokenizers from
    # the internet unless told not to.
    env["LITELLM_OFFLINE_MODE"] = "true"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["LITELLM_TELEMETRY"] = "False"
    return env


def _pin(pid: int, cpus: set[int] | None) -> None:
    if cpus:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(pid, cpus)


@contextlib.contextmanager
def start_server(kind: str, *, timeout: float = 20.0) -> Iterator[tuple[str, int]]:
    """Run server ``kind`` (a key of :data:`SERVER_KINDS`) in a subprocess pinned
    to its own CPU; yield its base URL (``http://127.0.0.1:PORT/v1``) and process
    id; stop it with SIGTERM (then SIGKILL after 5 s) on exit. Its stderr goes to
    a temporary file (a pipe nobody reads could fill up and stall it)."""
    cmd = [sys.executable, *SERVER_KINDS[kind]]
    errfile = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=errfile,
        stdin=subprocess.DEVNULL,
        env=subprocess_env(),
        cwd=PROJECT_ROOT,
        text=True,
    )
    try:
        _pin(proc.pid, server_cpus())
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            errfile.seek(0)
            err = errfile.read()
            raise RuntimeError(
                f"server {kind} did not print its URL within {timeout} s: "
                f"{line!r} {err[-2000:]}"
            )
        yield line, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        errfile.close()


def run_json(
    args: Sequence[str], *, timeout: float, pin_client: bool = True
) -> dict[str, object]:
    """Run ``python *args`` in a fresh interpreter; return the JSON object it prints
    on its last stdout line. Raises RuntimeError with its stderr if it fails."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=subprocess_env(),
        cwd=PROJECT_ROOT,
        text=True,
    )
    if pin_client:
        _pin(proc.pid, client_cpus())
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(
            f"{' '.join(args)} took more than {timeout} s; stderr: {err[-2000:]}"
        ) from None
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(args)} failed with status {proc.returncode}; "
            f"stderr: {err[-3000:]}"
        )
    result: dict[str, object] = json.loads(lines[-1])
    return result


def fmt_ratio(num: float | None, den: float | None) -> str:
    """``num/den`` as ``"12.3x"``, or ``"n/a"``."""
    if not num or not den:
        return "n/a"
    r = num / den
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, title: str = ""
) -> None:
    """Print a plain-text table: first column left-aligned, the rest right;
    short rows are padded with empty cells."""
    pad = [""] * len(headers)
    cells = [[str(c) for c in r] + pad[len(r) :] for r in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        first = r[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest])

    if title:
        print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))
    sys.stdout.flush()


def quick_main(doc: str | None, run: Callable[..., object], argv: Any) -> int:
    """``main()`` of a benchmark whose only option is ``--quick``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    run(quick=parser.parse_args(argv).quick)
    return 0


def bench_parser(doc: str | None, profile_help: str) -> argparse.ArgumentParser:
    """The options of the benchmarks with a server probe: ``--quick``,
    ``--server``, ``--profile``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--server", choices=sorted(SERVER_WHAT))
    parser.add_argument("--profile", action="store_true", help=profile_help)
    return parser


def verdict_rows(
    summary: Sequence[tuple[str, float | None, str, bool | None]],
) -> list[list[str]]:
    """Summary rows ``(what, value, target, met)`` as table rows."""
    return [
        [
            what,
            "n/a" if value is None else f"{value:.2f}",
            target,
            {True: "met", False: "MISSED", None: "-"}[met],
        ]
        for what, value, target, met in summary
    ]


def srv_share(
    r: dict[str, Any], cpu_key: str = "server_cpu_s", wall_key: str = "wall_s"
) -> str:
    """The server's CPU share of a client run's wall time, or ``?``."""
    s = r.get(cpu_key)
    if s is None or r[wall_key] < 0.25:  # /proc counts CPU in 10 ms ticks
        return "?"
    return f"{100 * s / r[wall_key]:.0f}%"


def http_name(http: int) -> str:
    return "HTTP/2" if http == 2 else "HTTP/1.1"


def http_cell(cfg: Config, r: dict[str, Any]) -> str:
    """The HTTP version asked for, and the one used when they differ."""
    want, got = http_name(cfg.http), r.get("http_version", "?")
    return want if got in (want, "?") else f"{want} (got {got})"


def fmt_pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%"


# ---------------------------------------------------------------- client runs

DRIVER = str(BENCH_DIR / "_driver.py")
#: Row labels of the clients of ``_driver.py``.
LABELS = {
    "ailib": "ailib_sc",
    "openai": "openai SDK",
    "openai-aiohttp": "openai SDK on aiohttp",
    "litellm": "litellm",
    "aiohttp": "aiohttp+msgspec",
    "httpcore-conn": "httpcore conns+msgspec",
    "httpcore-pool": "httpcore pool+msgspec",
    "raw": "raw",
}
#: The peers ailib_sc's ratios are printed against (asyncio, same HTTP version);
#: the openai SDK on httpx is the budgets' baseline, the others are information.
PEERS = ("openai", "openai-aiohttp", "aiohttp")
Summary = list[tuple[str, float | None, str, bool | None]]


@dataclass(frozen=True)
class Config:
    """One client configuration of ``_driver.py``."""

    client: str
    backend: str = "asyncio"
    http: int = 1
    label: str = ""  # the row's label; default LABELS[client]
    repeat: int | None = None  # measured runs; None: the benchmark's default

    @property
    def name(self) -> str:
        return self.label or LABELS[self.client]

    @property
    def where(self) -> str:
        return f"{self.name}/{self.backend}/{http_name(self.http)}"


#: ailib_sc on both loops over both HTTP versions, and the peers.
OURS = tuple(Config("ailib", b, h) for b in ("asyncio", "trio") for h in (1, 2))
PEER_CONFIGS = (
    Config("openai"),
    Config("openai", http=2),
    Config("openai-aiohttp"),
    Config("aiohttp"),
)


def server_kind(base: str, *extra: str) -> str:
    """Name server ``base`` of :data:`SERVER_KINDS` started with ``extra``
    arguments, registering it (in this process)."""
    kind = " ".join([base, *extra])
    SERVER_KINDS.setdefault(kind, [*SERVER_KINDS[base], *extra])
    return kind


def run_client(
    kind: str, mode: str, cfg: Config, *flags: str, timeout: float = 240
) -> dict[str, Any]:
    """``_driver.py mode`` for ``cfg`` (with ``flags``) against a fresh server
    ``kind``: the driver's JSON result, or ``{"failed": why}`` (also printed)."""
    with start_server(kind) as (url, pid):
        args = [DRIVER, mode, "--client", cfg.client, "--backend", cfg.backend]
        args += ["--http", str(cfg.http), "--url", url, "--server-pid", str(pid)]
        try:
            return run_json([*args, *flags], timeout=timeout)
        except RuntimeError as exc:
            print(f"{cfg.where}: {exc}", file=sys.stderr)
            return {"failed": str(exc)}


def probe(
    kinds: Sequence[str],
    clients: Sequence[Config],
    run: Callable[[str, Config], dict[str, Any]],
    *,
    rate: str,
    unit: str,
    digits: int,
    extra: Sequence[tuple[str, Callable[[dict[str, Any]], str]]] = (),
    title: str,
) -> str:
    """Measure each server kind over HTTP/1.1 and h2c with each of ``clients``
    (``run(kind, cfg)``) and print a table; return the kind with the highest
    capacity (1 / the server's CPU per unit, under the raw client) over both."""
    rows = []
    capacity: dict[str, dict[int, float]] = {}
    for kind in kinds:
        for http in (1, 2):
            for c in clients:
                cfg = replace(c, http=http)
                r = run(kind, cfg)
                if "failed" in r:
                    rows.append([kind, http_name(http), cfg.name, "FAILED"])
                    continue
                # Over all measured runs; a lower bound (>N) under 5 /proc ticks.
                srv = r["server_cpu_total_s"]
                cap, shown, srv_unit = r["rate"], "?", "?"
                if srv is not None:
                    low = srv < 0.05
                    cap = max(r["units_total"] / (srv + 0.01 if low else srv), cap)
                    shown = (">" if low else "") + f"{cap:,.0f}"
                    srv_unit = f"{srv / r['units_total'] * 1e6:.{digits}f}"
                if cfg.client == "raw":
                    capacity.setdefault(kind, {})[http] = cap
                rows.append(
                    [
                        kind,
                        r["http_version"],
                        cfg.name,
                        f"{r['rate']:,.0f}",
                        f"{r['cpu_us']:.{digits}f}",
                        srv_unit,
                        shown,
                        srv_share(r, "server_cpu_total_s", "wall_total_s"),
                        fmt_pct(r["cpu_s"], r["wall_s"]),
                        *(fn(r) for _, fn in extra),
                    ]
                )
    head = ["server", "HTTP", "client", rate, f"client CPU us/{unit}"]
    head += [f"server CPU us/{unit}", f"capacity {rate}", "server CPU", "client CPU"]
    print_table([*head, *(h for h, _ in extra)], rows, title=title)
    ok = {k: v for k, v in capacity.items() if len(v) == 2}
    return max(ok, key=lambda k: min(ok[k].values()), default="fast")


def _peer(
    results: Sequence[tuple[Config, dict[str, Any]]], client: str, http: int
) -> dict[str, Any] | None:
    return next(
        (
            r
            for c, r in results
            if c.client == client and c.http == http and "failed" not in r
        ),
        None,
    )


def _ratios(r: dict[str, Any], base: dict[str, Any] | None) -> list[str]:
    """Rate ours / base's and base's CPU per unit / ours."""
    if base is None or "failed" in r:
        return ["n/a", "n/a"]
    return [fmt_ratio(r["rate"], base["rate"]), fmt_ratio(base["cpu_us"], r["cpu_us"])]


def print_results(
    results: Sequence[tuple[Config, dict[str, Any]]],
    columns: Sequence[tuple[str, Callable[[Config, dict[str, Any]], str]]],
    *,
    title: str,
    rate: str,
    unit: str,
) -> None:
    """Print ``(config, driver result)`` rows: client, loop, HTTP, ``columns``
    and the ratios against the openai SDK over the same HTTP version; then
    ailib_sc's ratios against each peer; then first errors."""
    rows = []
    for cfg, r in results:
        head = [cfg.name, cfg.backend, http_cell(cfg, r)]
        if "failed" in r:
            rows.append([*head, "FAILED"])
            continue
        cells = [fn(cfg, r) for _, fn in columns]
        rows.append([*head, *cells, *_ratios(r, _peer(results, "openai", cfg.http))])
    head = ["client", "loop", "HTTP", *(h for h, _ in columns)]
    print_table([*head, f"{rate} vs openai", "openai CPU / this"], rows, title=title)
    peers = [p for p in PEERS if any(c.client == p for c, _ in results)]
    rows = [
        [
            cfg.backend,
            http_name(cfg.http),
            *(
                " / ".join(_ratios(r, base)) if base else "n/a"
                for base in (_peer(results, p, cfg.http) for p in peers)
            ),
        ]
        for cfg, r in results
        if cfg.client == "ailib" and "failed" not in r
    ]
    print_table(
        ["ailib_sc on", "HTTP", *(f"vs {LABELS[p]}" for p in peers)],
        rows,
        title=f"ailib_sc vs each peer over the same HTTP version: {rate} ours / "
        f"peer's, then the peer's CPU per {unit} / ours (n/a: no such peer run)",
    )
    for cfg, r in results:
        if r.get("first_error"):
            print(f"  first error of {cfg.where}: {r['first_error']}")


def ratio_summary(
    results: Sequence[tuple[Config, dict[str, Any]]],
    *,
    what: str,
    rate: str,
    unit: str,
    rate_target: float | None,
    cpu_target: float,
    where: Callable[[Config], str] = lambda c: "",
) -> Summary:
    """``run_all.py`` rows: each ailib_sc configuration against each peer over
    the same HTTP version; against the openai SDK with the budgets' targets,
    against the others (when they ran) for information."""
    summary: Summary = []
    for cfg, r in results:
        if cfg.client != "ailib":
            continue
        at = f"({cfg.backend} {http_name(cfg.http)}{where(cfg)})"
        for peer in PEERS:
            base = _peer(results, peer, cfg.http)
            if base is None and peer != "openai":
                continue
            ok = base is not None and "failed" not in r
            x = r["rate"] / base["rate"] if ok else None
            y = base["cpu_us"] / r["cpu_us"] if ok else None
            name = "aiohttp+msgspec" if peer == "aiohttp" else peer
            rt, ct = (rate_target, cpu_target) if peer == "openai" else (None, None)
            for label, v, t in (
                (f"{what}{rate} ours/{name} {at}", x, rt),
                (f"{what}CPU/{unit} {name}/ours {at}", y, ct),
            ):
                met = None if v is None or t is None else v >= t
                summary.append((label, v, "info" if t is None else f">= {t:g}", met))
    return summary


# ---------------------------------------------------------------- profiles


def profile(
    run: Callable[[Config, str], dict[str, Any]],
    *,
    what: str,
    rate: str,
    unit: str,
    digits: int,
) -> None:
    """Run ailib_sc under cProfile on both loops over both HTTP versions
    (``run(cfg, stats_file)``); print own time by package, then ailib_sc's
    functions, then the hottest overall, per ``unit``.

    cProfile inflates everything 2-3x and counts each resumption of a coroutine
    as a call; read the shares, not the absolute numbers."""
    for cfg in OURS:
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "prof")
            r = run(cfg, out)
            if "failed" in r:
                continue
            stats = pstats.Stats(out)
        n = r["units"] or 1
        total = sum(tt for (_cc, _nc, tt, _ct, _) in stats.stats.values())
        check = f"; check {r['rounds_ok']}/{r['rounds']}" if "rounds" in r else ""
        print(
            f"\n== cProfile, ailib_sc on {cfg.backend} over {http_name(cfg.http)}: "
            f"{what}, {r['rate']:,.0f} {rate} and {r['cpu_us']:.{digits}f} us "
            f"CPU/{unit} under the profiler; {total / n * 1e6:.{digits}f} us/{unit} "
            f"profiled{check} =="
        )
        print_profile(stats, n, unit=unit, digits=digits)


def _package(file: str, func: str, root: str) -> str:
    """Which package a cProfile entry's code belongs to."""
    if file.startswith(root):
        return "ailib_sc"
    if file == "~":  # a C function: name it by what it is a method of
        if "_socket" in func or "select" in func or "epoll" in func:
            return "socket/selector syscalls (C)"
        return "msgspec (C)" if "msgspec" in func else "builtins (C)"
    if "site-packages/" in file:
        pkg = file.split("site-packages/", 1)[1].split("/", 1)[0]
        return "h2+hpack+hyperframe" if pkg in ("h2", "hpack", "hyperframe") else pkg
    if file.endswith("_driver.py"):
        return "benchmark harness"
    if "/lib/python3" in file:
        mod = file.split("/lib/python3", 1)[1].split("/", 2)[1]
        return f"stdlib {mod.removesuffix('.py')}"
    return file


def print_profile(stats: Any, n: int, *, unit: str, digits: int) -> None:
    """Print the cProfile tables of one client run: own time by package, then
    ailib_sc's functions, then the hottest overall, per ``unit`` (``n`` of them).
    ``digits``: decimals of the per-unit figures."""
    root = str(PROJECT_ROOT / "ailib_sc")

    def short(file: str, line: int, func: str) -> str:
        if file.startswith(root):
            file = "ailib_sc" + file[len(root) :]
        elif "site-packages/" in file:
            file = file.split("site-packages/", 1)[1]
        elif file.startswith(("~", "<")):
            return f"{file}{func}"
        elif "/lib/python3" in file:
            file = file.split("/lib/python3", 1)[1].split("/", 1)[1]
        return f"{file}:{line}({func})"

    entries = sorted(
        ((*where, nc, tt, ct) for where, (_cc, nc, tt, ct, _) in stats.stats.items()),
        key=lambda e: e[4],
        reverse=True,
    )
    total = sum(e[4] for e in entries)

    def per(x: float, scale: float = 1e6) -> str:
        return f"{x / n * scale:.{digits}f}"

    by_pkg: dict[str, float] = {}
    for file, _line, func, _nc, tt, _ct in entries:
        key = _package(file, func, root)
        by_pkg[key] = by_pkg.get(key, 0.0) + tt
    top = sorted(by_pkg.items(), key=lambda kv: kv[1], reverse=True)[:12]
    rows = [[k, per(v), f"{100 * v / total:.1f}%"] for k, v in top]
    print_table(["own time by package", f"us/{unit}", "share"], rows)
    ours = [e for e in entries if e[0].startswith(root)][:15]
    rows = [[short(*e[:3]), per(e[3], 1), per(e[4]), per(e[5])] for e in ours]
    head = ["ailib_sc function (by own time)", f"calls/{unit}*", f"own us/{unit}"]
    print_table([*head, f"cum us/{unit}"], rows)
    print("  * a coroutine counts one call per resumption")
    rows = [
        [short(*e[:3]), per(e[3], 1), per(e[4]), f"{100 * e[4] / total:.1f}%"]
        for e in entries[:20]
    ]
    head = ["any function (by own time)", f"calls/{unit}", f"own us/{unit}", "share"]
    print_table(head, rows)
