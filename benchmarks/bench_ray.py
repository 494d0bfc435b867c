"""Ray Data: ``ailib_sc.ray.chat_completions`` against ray.data.llm's HTTP
request processor, rows/s and client CPU per row on one local Ray cluster.

``python benchmarks/bench_ray.py [--quick] [--rows N] [--concurrency C]
[--repeat R] [--their-batch B]``

Needs the ``ray`` extra (``ray[data]``) and aiohttp (the ``bench`` extra),
which ray.data.llm's HTTP stage imports; skipped, with a note, when either is
missing. Everything runs in one child interpreter (not pinned), so that Ray's
threads and processes leave no trace in the caller:

- **Server**: one ``_fastserver.py`` (HTTP/1.1, the same precomputed
  non-streamed chat completion for every request), pinned to the last CPU as
  in the other benchmarks, shared by both sides and every run.
- **Cluster**: ``ray.init(num_cpus=2, include_dashboard=False,
  _node_ip_address="127.0.0.1")``, loopback only, usage stats off; both sides
  run on it, one after the other.
- **Rows**: ``{"id": i, "prompt": "prompt number i"}``, 24,576 (``--quick``:
  8,192), put in the object store with ``ray.data.from_items`` before any
  run, in the blocks each side needs to keep C requests in flight per actor
  (below).
- **Ours**: ``air.chat_completions(ds, Provider.custom(...), "gpt-4o-mini",
  num_workers=2, concurrency_per_worker=C)``, C = 64: 2 ``ChatWorker``
  actors of 0.5 CPU, each with one client and at most C requests in flight,
  fed by 4 Ray batches (tasks) of 4 x C rows at a time. Its input blocks hold
  one batch (256 rows) each: a task runs its batches one after the other, so
  4 tasks per actor are what keep 4 batches going.
- **Theirs**: ``build_processor(HttpRequestProcessorConfig(url=...,
  headers={"Authorization": ...}, concurrency=(2, 2), batch_size=B,
  http_request_stage={"num_cpus": 0.5}), preprocess=<row -> OpenAI payload>,
  postprocess=<row -> id, text>)``, B = 64 (its default). How its HTTP stage
  limits in-flight requests, and how C maps onto it: its UDF sends the
  requests of one batch one after the other (it builds every
  ``session.post(...)`` first, but aiohttp starts a request only when it is
  awaited, and it awaits them in turn), on a new ``aiohttp.ClientSession``
  per batch; ``qps`` only spaces those starts (None here: no pacing), and
  ``max_retries`` is 0. So its concurrency is the number of batches running
  at once on an actor: Ray Data runs up to
  ``RAY_DATA_DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY`` (default 4) batches of
  one task at once, and an actor runs one task (one block) at a time. Hence:
  that variable is set to C (in the driver, which plans the UDF), each input
  block holds C batches (C x B = 4,096 rows; 3 blocks per actor), and
  ``concurrency=(2, 2)`` asks for a fixed pool of 2 actors (an int ``n`` is an
  autoscaling pool of 1 to ``n``). Result: C requests in flight per actor
  while a block runs, as ours, with a dip between one actor's blocks (a
  server counting requests in flight saw 128 at once over the 2 actors, and
  8 with the variable's default). ``num_cpus=0.5`` is the reservation
  ours makes per worker (a reservation, not a limit). ``--their-batch``
  changes B (and the block size with it).
- **Runs**: each side once as a warm-up, then ``--repeat`` times (default 1)
  a small run (a third of the rows, rounded down to one block of theirs per
  actor: 8,192; none with ``--quick``) and a full run, ours and theirs
  alternating. Ray Data starts new actors for every run (a dataset's actor
  pool lives as long as its execution), so the warm-up warms the imports,
  the driver and the cluster's worker pool, not the actors; every measured
  run includes starting its two actors. A run starts when the pipeline is
  iterated (``iter_batches``) and ends when the last expected row has
  reached the driver; time to the first row is shown. Every row is checked:
  count, distinct ids, and the reply's text (ours also its ``ok`` column); a
  side that loses or fails a row is reported, not failed on.
- **CPU**: client CPU is every process of the cluster: this child
  interpreter (the driver) and all its descendants (GCS, raylet, agents,
  idle, task and actor workers), except the server: user + system time from
  ``/proc/<pid>/stat``, per process, diffed over the run. A sampler thread
  reads the tree every 0.2 s so that a process that exits mid-run keeps its
  last reading; the sampler's own CPU is subtracted. The idle cluster's own
  cost (shown, CPU s per s) is included, as both sides pay it for their wall
  time. Other work on the machine is not counted (unlike a machine-wide
  /proc/stat figure), but it slows the wall times.

Printed: per run rows, ok rows, distinct ids, wall s, time to the first row,
rows/s, client CPU s and ms per row, the server's CPU per row and the client's
cores in use; the client CPU of the full run split by process (driver,
actors, other workers, daemons); then the ratios: ours/theirs rows/s and
theirs/ours CPU per row over the full run, and the same for the marginal
figures (full run minus small run, so Ray's fixed cost per run, actor
start-up included, drops out). CPU per row is the figure to compare: client
and server share the 2 cores, so rows/s also depends on the server and on
other work on the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Summary, fmt_ratio, print_table, run_json, start_server

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main", "run"]

_MODEL = "gpt-4o-mini"
_TEXT = "Hello! How can I assist you today?"  # _payloads.py's reference reply
_THEIR_BATCH = 64  # ray.data.llm batch_size (its default): one sequential lane
_WORKERS = 2
_SIDES = {"ours": "ailib_sc.ray", "theirs": "ray.data.llm HTTP processor"}
_ACTOR = "ray::MapWorker"  # /proc comm prefix of Ray Data's map actors


# ------------------------------------------------------------ CPU of a tree

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
Key = tuple[int, int]  # (pid, start time): a pid reused later is another key


def _proc_table() -> dict[int, tuple[int, int, int, str]]:
    """pid -> (parent pid, start time, user + system ticks, comm) of every
    process readable in /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:  # gone since listdir
            continue
        close = data.rindex(b")")
        comm = data[data.index(b"(") + 1 : close].decode(errors="replace")
        rest = data[close + 2 :].split()
        out[int(name)] = (
            int(rest[1]),
            int(rest[19]),
            int(rest[11]) + int(rest[12]),
            comm,
        )
    return out


#: What the client CPU is split into: the driver (this interpreter: Ray Data's
#: executor, the iteration), the map actors (the HTTP stage), other Ray
#: workers (map tasks: ray.data.llm's preprocess and postprocess), and the
#: cluster's daemons (GCS, raylet, agents).
KINDS = ("driver", "actors", "workers", "daemons")
_DAEMONS = ("ray::DashboardA", "ray::RuntimeEnv")


class Mark(NamedTuple):
    ticks: dict[Key, int]
    kinds: dict[Key, str]
    own: float


class _TreeCpu:
    """CPU ticks of ``root`` and its descendants, minus ``exclude`` and its
    own. Every reading goes into ``seen`` (the highest per process), which
    keeps the last value of a process that has exited since."""

    def __init__(self, root: int, exclude: int, every: float = 0.2) -> None:
        self.root, self.exclude, self.every = root, exclude, every
        self.seen: dict[Key, int] = {}
        self.kinds: dict[Key, str] = {}
        self.comms: dict[int, str] = {}
        self.own = 0.0  # CPU seconds spent reading /proc, by any thread
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _kind(self, key: Key, comm: str) -> str:
        if key[0] == self.root:
            return "driver"
        if comm.startswith(_ACTOR) or self.kinds.get(key) == "actors":
            return "actors"  # an idle worker Ray made an actor stays one
        if comm.startswith("ray::") and comm not in _DAEMONS:
            return "workers"
        return "daemons"

    def sample(self) -> None:
        t0 = time.thread_time()
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (ppid, *_) in table.items():
            children.setdefault(ppid, []).append(pid)
        stack, tree = [self.root], [self.root]
        while stack:
            for kid in children.get(stack.pop(), ()):
                if kid != self.exclude:
                    tree.append(kid)
                    stack.append(kid)
        with self._lock:
            self.comms = {pid: table[pid][3] for pid in tree if pid in table}
            for pid in tree:
                if pid in table:
                    _, start, ticks, comm = table[pid]
                    key = (pid, start)
                    self.seen[key] = max(ticks, self.seen.get(key, 0))
                    self.kinds[key] = self._kind(key, comm)
            self.own += time.thread_time() - t0

    def mark(self) -> Mark:
        """Read now; the readings so far and the meter's own CPU seconds."""
        self.sample()
        with self._lock:
            return Mark(dict(self.seen), dict(self.kinds), self.own)

    @staticmethod
    def between(a: Mark, b: Mark) -> dict[str, float]:
        """CPU seconds of the tree from mark ``a`` to mark ``b`` by kind (the
        meter's own taken out of the driver's), and ``total``."""
        out = dict.fromkeys(KINDS, 0.0)
        for key, ticks in b.ticks.items():
            out[b.kinds[key]] += (ticks - a.ticks.get(key, 0)) / _TICK
        out["driver"] -= b.own - a.own
        out["total"] = sum(out.values())
        return out

    def actors_alive(self) -> int:
        self.sample()
        with self._lock:
            return sum(c.startswith(_ACTOR) for c in self.comms.values())

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> _TreeCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _server_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        rest = f.read().rsplit(b")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


# ------------------------------------------------------------ the child


def _pipelines(
    url: str, concurrency: int, their_batch: int
) -> dict[str, Callable[[Any], Any]]:
    """Side name -> a function building that side's output dataset."""
    import ray.data.llm

    import ailib_sc.ray as air
    from ailib_sc import Provider

    provider = Provider.custom("fast", url, api_key="x")

    def ours(ds: Any) -> Any:
        return air.chat_completions(
            ds,
            provider,
            _MODEL,
            num_workers=_WORKERS,
            concurrency_per_worker=concurrency,
        )

    def payload(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "payload": {
                "model": _MODEL,
                "messages": [{"role": "user", "content": row["prompt"]}],
            }
        }

    def text(row: dict[str, Any]) -> dict[str, Any]:
        reply = row["http_response"]["choices"][0]["message"]["content"]
        return {"id": row["id"], "text": reply}

    def theirs(ds: Any) -> Any:
        config = ray.data.llm.HttpRequestProcessorConfig(
            url=f"{url}/chat/completions",
            headers={"Authorization": "Bearer x"},
            concurrency=(_WORKERS, _WORKERS),
            batch_size=their_batch,
            http_request_stage={"num_cpus": 0.5},
        )
        processor = ray.data.llm.build_processor(
            config, preprocess=payload, postprocess=text
        )
        return processor(ds)

    return {"ours": ours, "theirs": theirs}


def _wait_actors_gone(meter: _TreeCpu, timeout: float = 30.0) -> None:
    """Wait (polling /proc) until the last run's map actors have exited, so
    their shutdown is not charged to the next run."""
    deadline = time.monotonic() + timeout
    while meter.actors_alive() and time.monotonic() < deadline:
        time.sleep(0.1)


def _one_run(
    build: Callable[[Any], Any], ds: Any, rows: int, meter: _TreeCpu, server: int
) -> dict[str, Any]:
    import pyarrow.compute as pc

    _wait_actors_gone(meter)
    out = build(ds)
    n = ok = good_text = 0
    ids: set[int] = set()
    first: float | None = None
    srv0, a = _server_ticks(server), meter.mark()
    t0 = time.perf_counter()
    end = None
    for batch in out.iter_batches(batch_format="pyarrow", batch_size=None):
        if first is None:
            first = time.perf_counter() - t0
        n += batch.num_rows
        ids.update(batch.column("id").to_pylist())
        good_text += pc.sum(pc.equal(batch.column("text"), _TEXT)).as_py() or 0
        if "ok" in batch.column_names:
            ok += pc.sum(batch.column("ok").cast("int64")).as_py() or 0
        else:  # ray.data.llm has no per-row status: a failed request raises
            ok += batch.num_rows
        if n >= rows and end is None:  # before Ray Data stops the actors
            wall = time.perf_counter() - t0
            end, srv1 = meter.mark(), _server_ticks(server)
    if end is None:
        wall = time.perf_counter() - t0
        end, srv1 = meter.mark(), _server_ticks(server)
    return {
        "rows": n,
        "ok": min(ok, good_text),
        "distinct_ids": len(ids),
        "wall_s": wall,
        "first_row_s": first,
        "cpu": (cpu := _TreeCpu.between(a, end)),
        "cpu_s": cpu["total"],
        "server_cpu_s": (srv1 - srv0) / _TICK,
    }


def _blocks(
    side: str, rows: int, concurrency: int, their_batch: int, defaults: bool
) -> int:
    """Input blocks for ``side``: one Ray batch each for ours (4 x C rows, so
    4 tasks, i.e. 4 batches, run at once per actor), C batches each for
    theirs (an actor runs one block at a time, its batches concurrently).
    With ``defaults``, theirs gets ours' layout: Ray Data's default of 4
    batches at once per task is then all it has in flight per actor."""
    tuned = side != "ours" and not defaults
    per_block = concurrency * their_batch if tuned else 4 * concurrency
    return max(1, -(-rows // per_block))


def _child(
    rows: int,
    small: int,
    concurrency: int,
    their_batch: int,
    repeat: int,
    defaults: int = 0,
) -> dict[str, Any]:
    # Read by Ray Data when it plans an async UDF (in the driver): how many
    # batches of one actor task run at once, i.e. ray.data.llm's concurrency.
    # --their-defaults leaves it at Ray's default (4).
    if not defaults:
        os.environ["RAY_DATA_DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY"] = str(
            concurrency
        )
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    import ray
    import ray.data

    result: dict[str, Any] = {"load_before": load, "ray": ray.__version__}
    with (
        start_server("fast") as (url, server),
        _TreeCpu(os.getpid(), server) as meter,
    ):
        t0 = time.perf_counter()
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _node_ip_address="127.0.0.1",
        )
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
            result["init_s"] = time.perf_counter() - t0
            builders = _pipelines(url, concurrency, their_batch)
            data = {}  # (side, rows) -> the input dataset, blocks in the store
            sizes = (small, rows) if small else (rows,)
            for n in sizes:
                items = [{"id": i, "prompt": f"prompt number {i}"} for i in range(n)]
                for side in builders:
                    blocks = _blocks(side, n, concurrency, their_batch, bool(defaults))
                    data[side, n] = ray.data.from_items(
                        items, override_num_blocks=blocks
                    )
            # The idle cluster's own CPU per second (raylet, GCS, agents).
            time.sleep(1.0)
            a = meter.mark()
            time.sleep(2.0)
            idle = _TreeCpu.between(a, meter.mark())
            result["idle_cpu_per_s"] = idle["total"] / 2.0
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {
                side: {"small": [], "full": []} for side in builders
            }
            failed: dict[str, str] = {}
            plan = [("warm-up", sizes[0])]
            plan += [*(("small", small) for _ in sizes[1:]), ("full", rows)] * repeat
            for what, n in plan:
                for side, build in builders.items():
                    if side in failed:
                        continue
                    try:
                        r = _one_run(build, data[side, n], n, meter, server)
                    except Exception as exc:
                        failed[side] = f"{what}: {type(exc).__name__}: {exc}"[:3000]
                        continue
                    if what != "warm-up":
                        runs[side][what].append(r)
            result["runs"] = runs
            result["failed"] = failed
        finally:
            ray.shutdown()
    return result


# ------------------------------------------------------------ the parent


def _have_ray() -> str | None:
    """Why the benchmark cannot run here, or None."""
    for mod, extra in (("ray", "ray"), ("aiohttp", "bench")):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install -e '.[{extra}]')"
    return None


def _best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The measured run with the least CPU per row, or None if none ran."""
    return min(runs, key=lambda r: r["cpu_s"] / max(r["rows"], 1), default=None)


def _row(what: str, m: dict[str, Any]) -> list[str]:
    return [
        what,
        f"{m['rows']:,}",
        f"{m['ok']:,}",
        f"{m['distinct_ids']:,}",
        f"{m['wall_s']:.2f}",
        "-" if m["first_row_s"] is None else f"{m['first_row_s']:.2f}",
        f"{m['rows'] / m['wall_s']:,.0f}",
        f"{m['cpu_s']:.2f}",
        f"{m['cpu_s'] / m['rows'] * 1e3:.3f}",
        f"{m['server_cpu_s'] / m['rows'] * 1e6:.0f}",
        f"{m['cpu_s'] / m['wall_s']:.2f}",
    ]


def _figures(
    full: dict[str, Any] | None, small: dict[str, Any] | None
) -> dict[str, float | None] | None:
    """rows/s and CPU ms per row of the full run, and the marginal ones
    (full minus small run: Ray's fixed cost per run taken out; None without
    a small run)."""
    if full is None or not full["rows"]:
        return None
    out: dict[str, float | None] = {
        "rate": full["rows"] / full["wall_s"],
        "cpu_ms": full["cpu_s"] / full["rows"] * 1e3,
        "marginal_rate": None,
        "marginal_cpu_ms": None,
    }
    if small is not None and full["rows"] > small["rows"]:
        rows = full["rows"] - small["rows"]
        wall = full["wall_s"] - small["wall_s"]
        out["marginal_rate"] = rows / wall if wall > 0 else None
        out["marginal_cpu_ms"] = (full["cpu_s"] - small["cpu_s"]) / rows * 1e3
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def run(
    *,
    quick: bool = False,
    rows: int | None = None,
    concurrency: int = 64,
    repeat: int = 1,
    their_batch: int = _THEIR_BATCH,
    their_defaults: bool = False,
    **_: Any,
) -> Summary:
    """Run the benchmark in a child interpreter and print its tables; return
    ``run_all.py``'s summary rows (information only, no budget)."""
    n = rows or (8_192 if quick else 24_576)
    # The small run: a third of the rows, whole blocks of theirs for each
    # actor; none (no marginal figures) if the full run has too few.
    lanes = _WORKERS * concurrency * their_batch
    small = n // 3 // lanes * lanes
    print(
        f"== Ray Data: ailib_sc.ray vs ray.data.llm's HTTP request processor, "
        f"{f'{small:,} and ' if small else ''}{n:,} non-streamed chat completions, "
        f"{_WORKERS} actors x "
        f"{concurrency} in flight, _fastserver.py over HTTP/1.1, local cluster "
        f"of 2 CPUs =="
    )
    why = _have_ray()
    if why:
        print(f"skipped: {why}")
        return [(f"ray: skipped ({why})", None, "", None)]
    t0 = time.perf_counter()
    args = [__file__, "--child", *map(str, (n, small, concurrency, their_batch))]
    timeout = 300 + (n + 2 * small) * repeat / 50
    r: dict[str, Any] = run_json(
        [*args, str(repeat), str(int(their_defaults))],
        timeout=timeout,
        pin_client=False,
    )
    print(
        f"Ray {r['ray']}; cluster start {r['init_s']:.1f} s; idle cluster "
        f"{r['idle_cpu_per_s'] * 1e3:.0f} ms CPU/s; load before: {r['load_before']}"
    )
    table = []
    figures: dict[str, dict[str, float | None] | None] = {}
    complete = True
    for side, what in _SIDES.items():
        if side in r["failed"]:
            print(f"{what} FAILED: {r['failed'][side]}", file=sys.stderr)
            table.append([what, "FAILED"])
        for size in ("small", "full"):  # small is [] without a small run
            for m in r["runs"][side][size]:
                table.append(_row(what, m))
                complete &= m["rows"] == m["ok"] == m["distinct_ids"]
        figures[side] = _figures(
            _best(r["runs"][side]["full"]), _best(r["runs"][side]["small"])
        )
    print_table(
        [
            "client",
            "rows",
            "ok",
            "ids",
            "wall s",
            "first row s",
            "rows/s",
            "client CPU s",
            "CPU ms/row",
            "server CPU us/row",
            "client cores",
        ],
        table,
        title="Measured runs, after a warm-up run each; client CPU = the driver "
        "and every cluster process, server excluded",
    )
    split = []
    for side, what in _SIDES.items():
        m = _best(r["runs"][side]["full"])
        if m is not None:
            cpu = m["cpu"]
            split.append(
                [what, *(f"{cpu[k] / m['rows'] * 1e3:.3f}" for k in (*KINDS, "total"))]
            )
    if split:
        print_table(
            ["client", *KINDS, "total"],
            split,
            title=f"Client CPU ms/row by process, {n:,} rows: driver = this "
            "interpreter (Ray Data's executor); actors = the map actors; workers "
            "= other Ray workers (map tasks); daemons = GCS, raylet, agents",
        )
    ours, theirs = figures["ours"], figures["theirs"]
    summary: Summary = []
    if ours is None or theirs is None:
        print("\nno ratios: a side has no measured run")
    else:
        rate, cpu = ("rate", "marginal_rate"), ("cpu_ms", "marginal_cpu_ms")
        ratios = []
        for key, what in zip(
            (*rate, *cpu),
            (
                f"rows/s, {n:,} rows",
                f"marginal rows/s, {small:,} -> {n:,}",
                f"client CPU ms/row, {n:,} rows",
                f"marginal client CPU ms/row, {small:,} -> {n:,}",
            ),
            strict=True,
        ):
            if key.startswith("marginal") and not small:
                continue
            if key in rate:  # higher is better: ours / theirs
                a, b, spec, label = ours[key], theirs[key], ",.0f", "ours/theirs"
            else:  # CPU per row, lower is better: theirs / ours
                a, b, spec, label = theirs[key], ours[key], ".3f", "theirs/ours"
            ratios.append(
                [
                    what,
                    _fmt(ours[key], spec),
                    _fmt(theirs[key], spec),
                    f"{fmt_ratio(a, b)} ({label})",
                ]
            )
        print_table(
            ["figure", "ailib_sc.ray", "ray.data.llm", "ratio"],
            ratios,
            title="Ratios"
            + (
                " (marginal = the full run minus the small one: Ray's fixed cost "
                "per run, actor start-up included, drops out)"
                if small
                else ""
            ),
        )
        if not complete:
            print("a side lost or failed rows: see the first table")
        for key, what in (
            ("rate", "ray: rows/s ailib_sc.ray / ray.data.llm"),
            ("cpu_ms", "ray: CPU/row ray.data.llm / ailib_sc.ray"),
        ):
            a, b = (
                (ours[key], theirs[key]) if key == "rate" else (theirs[key], ours[key])
            )
            summary.append((what, a / b if a and b else None, "info", None))
    print(f"\n(ray benchmark: {time.perf_counter() - t0:.0f} s)")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--rows", type=int, help="rows (default 24,576; quick 8,192)")
    parser.add_argument("--concurrency", type=int, default=64, help="per actor")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs per side")
    parser.add_argument(
        "--their-batch",
        type=int,
        default=_THEIR_BATCH,
        help=f"ray.data.llm's batch_size (default {_THEIR_BATCH})",
    )
    parser.add_argument(
        "--their-defaults",
        action="store_true",
        help="ray.data.llm as it comes: Ray Data's default of 4 batches at once "
        "per actor task (its requests go one at a time within a batch)",
    )
    parser.add_argument("--child", nargs=6, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    run(
        quick=args.quick,
        rows=args.rows,
        concurrency=args.concurrency,
        repeat=args.repeat,
        their_batch=args.their_batch,
        their_defaults=args.their_defaults,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
