"""Import cost: wall time and RSS growth of ``import ailib_sc`` vs ``import openai``.

``python benchmarks/bench_import.py [--quick]``

Each sample is a fresh interpreter (``python -c``) that reads ``VmRSS`` from
``/proc/self/status``, times the import with ``time.perf_counter``, and reads
``VmRSS`` again; the median of 7 samples (3 with ``--quick``) is reported, after
one unmeasured run that fills the bytecode caches (``PYTHONDONTWRITEBYTECODE``
is dropped for these children: an installed package has its bytecode, and
without it every sample would time the compiler, not the import). Then one
``python -X importtime -c "import ailib_sc"`` run shows where our import time
goes, summed by top-level package (``-X importtime`` itself adds overhead, so
these add up to more than the median above).
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PROJECT_ROOT, fmt_ratio, print_table, quick_main, subprocess_env

__all__ = ["main", "run"]

_PROBE = """
import json, sys, time
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
mods0 = len(sys.modules)
r0 = rss()
t0 = time.perf_counter()
import {module}
t1 = time.perf_counter()
r1 = rss()
print(json.dumps({{"ms": (t1 - t0) * 1e3, "rss_mb": (r1 - r0) / 1024,
                  "modules": len(sys.modules) - mods0,
                  "trio": "trio" in sys.modules, "h2": "h2" in sys.modules,
                  "httpcore": "httpcore" in sys.modules,
                  "pydantic": "pydantic" in sys.modules}}))
"""


def _env() -> dict[str, str]:
    env = subprocess_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` in a fresh interpreter, output captured."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
        cwd=PROJECT_ROOT,
        timeout=120,
    )


def _sample(module: str) -> dict[str, float]:
    out = _python("-c", _PROBE.format(module=module)).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _measure(module: str, samples: int) -> dict[str, float]:
    _sample(module)  # fill __pycache__ and the OS page cache
    runs = [_sample(module) for _ in range(samples)]
    return {
        "ms": statistics.median(r["ms"] for r in runs),
        "ms_min": min(r["ms"] for r in runs),
        "rss_mb": statistics.median(r["rss_mb"] for r in runs),
        "modules": statistics.median(r["modules"] for r in runs),
        **{k: runs[0][k] for k in ("trio", "h2", "httpcore", "pydantic")},
    }


def _breakdown(
    module: str,
) -> tuple[list[tuple[str, float]], list[tuple[str, str, float]]]:
    """From ``-X importtime``: self import time (ms) summed by top-level package,
    and the foreign modules ``module``'s own modules import directly, with their
    cumulative time: ``(name, imported by, ms)``, heaviest first."""
    err = _python("-X", "importtime", "-c", f"import {module}").stderr
    # Children are printed before their parent; a top-level import has depth 0.
    # Keep only the subtree of `module` (not the interpreter's own start-up).
    entries: list[tuple[int, str, int, int]] = []  # (depth, name, self, cum us)
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        entries.append((depth, name.strip(), int(self_us), int(cum_us)))
    end = next(i for i, e in enumerate(entries) if e[0] == 0 and e[1] == module)
    start = max((i for i in range(end) if entries[i][0] == 0), default=-1) + 1
    per_pkg: dict[str, float] = defaultdict(float)
    direct: list[tuple[str, str, float]] = []
    sub = entries[start : end + 1]
    for i, (depth, name, self_us, cum_us) in enumerate(sub):
        per_pkg[name.split(".")[0]] += self_us / 1000
        parent = next((e[1] for e in sub[i + 1 :] if e[0] == depth - 1), "")
        if parent.split(".")[0] == module and name.split(".")[0] != module:
            direct.append((name, parent, cum_us / 1000))
    direct.sort(key=lambda d: d[2], reverse=True)
    return sorted(per_pkg.items(), key=lambda kv: kv[1], reverse=True), direct


def run(*, quick: bool = False) -> list[tuple[str, float | None, str, bool | None]]:
    """Run the benchmark, print its tables; return summary rows
    ``(what, value, target, met)`` for ``run_all.py``."""
    samples = 3 if quick else 7
    modules = ["ailib_sc", "openai"]
    if not quick and importlib.util.find_spec("litellm") is not None:
        modules.append("litellm")
    print(f"== Import: fresh interpreter per sample, median of {samples} ==")
    res = {m: _measure(m, samples) for m in modules}
    ours = res["ailib_sc"]
    rows = []
    for m in modules:
        r = res[m]
        rows.append(
            [
                f"import {m}",
                f"{r['ms']:.1f}",
                f"{r['ms_min']:.1f}",
                f"{r['rss_mb']:.1f}",
                f"{r['modules']:.0f}",
                ",".join(k for k in ("trio", "h2", "httpcore", "pydantic") if r[k])
                or "-",
                fmt_ratio(r["ms"], ours["ms"]),
                fmt_ratio(r["rss_mb"], ours["rss_mb"]),
            ]
        )
    print_table(
        [
            "statement",
            "median ms",
            "min ms",
            "RSS +MB",
            "modules",
            "also loads",
            "time x ours",
            "RSS x ours",
        ],
        rows,
        title="Import time and RSS growth",
    )
    ok_ms = ours["ms"] < 60
    ok_mb = ours["rss_mb"] < 25
    print(
        f"  import ailib_sc: {ours['ms']:.1f} ms (target < 60: "
        f"{'met' if ok_ms else 'MISSED'}), +{ours['rss_mb']:.1f} MB RSS "
        f"(target < 25: {'met' if ok_mb else 'MISSED'})"
    )
    top, direct = _breakdown("ailib_sc")
    total = sum(v for _, v in top)
    print_table(
        ["top-level package", "self ms", "share"],
        [[k, f"{v:.1f}", f"{100 * v / total:.0f}%"] for k, v in top[:12]],
        title=f"Where `import ailib_sc` spends its time (-X importtime, "
        f"{total:.1f} ms in all, by top-level package)",
    )
    print_table(
        ["module", "imported by", "cumulative ms"],
        [[n, p, f"{ms:.1f}"] for n, p, ms in direct[:10]],
        title="Heaviest imports made directly by ailib_sc modules (-X importtime)",
    )
    summary: list[tuple[str, float | None, str, bool | None]] = [
        ("import ailib_sc ms", ours["ms"], "< 60", ok_ms),
        ("import ailib_sc RSS MB", ours["rss_mb"], "< 25", ok_mb),
        ("import time openai/ours", res["openai"]["ms"] / ours["ms"], "info", None),
    ]
    return summary


def main(argv: list[str] | None = None) -> int:
    return quick_main(__doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
