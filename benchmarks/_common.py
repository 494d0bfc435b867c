"""Helpers shared by the benchmark scripts: tables, ratios, subprocesses, servers.

Every benchmark talks to loopback only. Servers and clients run in separate
processes; on a machine with two or more CPUs the server is pinned to one CPU and
each client process to another, so neither steals the other's core.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "BENCH_DIR",
    "PROJECT_ROOT",
    "SERVER_KINDS",
    "client_cpus",
    "fmt_ratio",
    "http_name",
    "print_profile",
    "print_table",
    "profile_package",
    "profile_total",
    "run_json",
    "server_cpus",
    "srv_share",
    "start_server",
    "subprocess_env",
    "verdict_rows",
]

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent

#: name -> command line (after the interpreter) of each server we can start.
SERVER_KINDS: dict[str, list[str]] = {
    "fake-asyncio": ["-m", "ailib_sc.testing", "--port", "0", "--backend", "asyncio"],
    "fake-trio": ["-m", "ailib_sc.testing", "--port", "0", "--backend", "trio"],
    "fast": [str(BENCH_DIR / "_fastserver.py"), "--port", "0"],
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
    """Print a plain-text table: first column left-aligned, the rest right."""
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
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


def profile_package(file: str, func: str, root: str, harness: str) -> str:
    """Which package a cProfile entry's code belongs to; ``harness`` is the file
    name of the benchmark client."""
    if file.startswith(root):
        return "ailib_sc"
    if file == "~":  # a C function: name it by what it is a method of
        if "_socket" in func or "select" in func or "epoll" in func:
            return "socket/selector syscalls (C)"
        if "msgspec" in func:
            return "msgspec (C)"
        return "builtins (C)"
    if "site-packages/" in file:
        pkg = file.split("site-packages/", 1)[1].split("/", 1)[0]
        return "h2+hpack+hyperframe" if pkg in ("h2", "hpack", "hyperframe") else pkg
    if file.endswith(harness):
        return "benchmark harness"
    if "/lib/python3" in file:
        mod = file.split("/lib/python3", 1)[1].split("/", 2)[1]
        return f"stdlib {mod.removesuffix('.py')}"
    return file


def print_profile(stats: Any, n: int, *, harness: str, unit: str, digits: int) -> None:
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

    raw: Any = stats.stats
    entries = [
        (file, line, func, nc, tt, ct)
        for (file, line, func), (_cc, nc, tt, ct, _callers) in raw.items()
    ]
    total = sum(e[4] for e in entries)
    by_pkg: dict[str, float] = {}
    for file, _line, func, _nc, tt, _ct in entries:
        key = profile_package(file, func, root, harness)
        by_pkg[key] = by_pkg.get(key, 0.0) + tt
    rows = [
        [k, f"{v / n * 1e6:.{digits}f}", f"{100 * v / total:.1f}%"]
        for k, v in sorted(by_pkg.items(), key=lambda kv: kv[1], reverse=True)[:12]
    ]
    print_table(["own time by package", f"us/{unit}", "share"], rows)
    ours = sorted(
        (e for e in entries if e[0].startswith(root)),
        key=lambda e: e[4],
        reverse=True,
    )
    rows = [
        [
            short(e[0], e[1], e[2]),
            f"{e[3] / n:.{digits}f}",
            f"{e[4] / n * 1e6:.{digits}f}",
            f"{e[5] / n * 1e6:.{digits}f}",
        ]
        for e in ours[:15]
    ]
    print_table(
        [
            "ailib_sc function (by own time)",
            f"calls/{unit}*",
            f"own us/{unit}",
            f"cum us/{unit}",
        ],
        rows,
    )
    print("  * a coroutine counts one call per resumption")
    entries.sort(key=lambda e: e[4], reverse=True)
    rows = [
        [
            short(e[0], e[1], e[2]),
            f"{e[3] / n:.{digits}f}",
            f"{e[4] / n * 1e6:.{digits}f}",
            f"{100 * e[4] / total:.1f}%",
        ]
        for e in entries[:20]
    ]
    print_table(
        ["any function (by own time)", f"calls/{unit}", f"own us/{unit}", "share"],
        rows,
    )


def profile_total(stats: Any) -> float:
    """Total own time in a cProfile ``pstats.Stats``."""
    raw: Any = stats.stats
    return float(sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values()))
