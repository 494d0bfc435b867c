"""Load generators side by side: ``ailib_sc.bench`` against GuideLLM on the same
loopback servers, profiles and rates (issue #12, items 6 and 3).

``python benchmarks/bench_loadgen.py [--quick] [--keep DIR] [--only PART]``

GuideLLM is found through env ``GUIDELLM`` (the path to its ``guidellm``
executable; it pulls torch, so it usually lives in a virtualenv of its own),
else on ``PATH``; without it, its rows are skipped with a printed note. It runs
offline (``HF_HUB_OFFLINE``) on a JSONL file of prompts with an output token
count each, so it needs no tokenizer. Ours is driven through the Python API,
``run_benchmark`` in a child process (the ``ailib-sc bench`` command is a thin
layer over that same call). Both speak HTTP/1.1 (GuideLLM's httpx client does
HTTP/2 only over TLS), open as many connections as they need (ours:
``pool_size=1024``; GuideLLM sets no limit), stream with usage and ask for 16
tokens with ``ignore_eos``. Every client process, GuideLLM's ten worker
processes included, is pinned to the client CPU, the server to the other one.

1. **TTFT accuracy** (``--only ttft``). ``FakeProviderServer(generate=True,
   stream_first_delay=D, stream_delay=G)``, started by this script
   (``python -m ailib_sc.testing`` has no generate mode), answers every
   request with 16 tokens: the first D = 50 ms after the request, then one
   every G = 10 ms. Each tool sends a constant 20 req/s for 10 s (1 s
   warm-up); the table gives the TTFT and ITL it reports and the error
   against D and G (reported - true, p50 and p99, ms). A raw-socket client
   sends the same schedule first (one ``perf_counter`` per ``read``, timed
   from the write): its error is the floor, what the server (timer overshoot,
   its own CPU) and the loopback add.
2. **Highest sustained rate** (``--only ladder``). Against ``_fastserver.py
   --stream-chunks 16`` (the fake server spends 3-5 ms of CPU per delayed
   16-token stream, so it, not the client, would fall behind at a few
   hundred req/s; its cost is printed), each tool runs a ladder of constant,
   then Poisson rates, 5 s per point (1 s warm-up), and stops after two rates
   in a row it did not sustain (GuideLLM in invocations of four rates: each
   costs it ~10 s of start-up and each point ~15 s more). *Sustained*: p99
   scheduling lag under 5 ms, and at least 98% of the requests due before the
   end sent (GuideLLM never starts what it could not send in time, and leaves
   it out of its statistics). Lag is measured alike for both, from the due
   time to the hand-over to the HTTP client (ours: ``sent - due``; GuideLLM:
   ``resolve_start - targeted_start``); GuideLLM's own
   ``request_dispatch_delay`` runs on to the first header byte, past its
   connection pool, and is shown but not judged on. Both keep the requests
   that overlap the measured window (GuideLLM's rule, which ours copies).
   "CPU/req" is the client's CPU time over the point (ours:
   ``process_time``; GuideLLM: its process tree, from ``/proc``) per request
   sent; "client core" is the client CPU's busy share, split into the
   client's own and other work on the machine.
3. **Item 3's claim** (``--only claim``): ours, Poisson at 1,000 req/s for
   10 s against the fast server, on asyncio and trio: p99 lag under 5 ms,
   every request sent.

Every table notes the load average before it ran. ``--quick``: 3-4 s
points, the constant ladder only, two GuideLLM rates, the claim on asyncio:
~90 s, most of it GuideLLM's start-up. A full run takes about 7 minutes.
``--keep DIR`` keeps every raw JSON report (ours and GuideLLM's).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    SERVER_KINDS,
    Summary,
    client_cpus,
    fmt_ratio,
    print_table,
    run_json,
    server_cpus,
    server_kind,
    start_server,
    subprocess_env,
)

__all__ = ["main", "run"]

_MODEL = "gpt-4o-mini"
_WORDS = 32  # prompt words (the fake server counts one token per word)
_TOKENS = 16  # output tokens per request
_D, _G = 0.050, 0.010  # the fake server's time to first token, inter-token gap (s)
_LAG_LIMIT = 0.005  # item 3: p99 scheduling lag under 5 ms
_SENT_SHARE = 0.98
_CLAIM_RATE = 1000.0
Point = dict[str, Any]

SERVER_KINDS["fake-generate"] = [__file__, "--serve-fake", str(_D), str(_G)]
_FAST = server_kind("fast", "--stream-chunks", str(_TOKENS))


@dataclass(frozen=True)
class _Plan:
    duration: float  # seconds per ladder point, warm-up included
    ttft_duration: float
    ladder: tuple[float, ...]  # ours
    guidellm_ladder: tuple[float, ...]
    chunk: int  # GuideLLM rates per invocation
    kinds: tuple[str, ...]
    claim_duration: float
    claim_backends: tuple[str, ...]
    warmup: float = 1.0
    ttft_rate: float = 20.0


_LADDER = (10, 25, 50, 100, 200, 400, 700, 1000, 1500, 2000, 3000)
_FULL = _Plan(
    5.0, 10.0, _LADDER, _LADDER, 4, ("constant", "poisson"), 10.0, ("asyncio", "trio")
)
_QUICK = _Plan(
    3.0, 4.0, (25, 100, 400, 1000, 2000), (25, 100), 2, ("constant",), 3.0, ("asyncio",)
)


# ---------------------------------------------------------------- measures


def _pct(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile, linear between ranks (numpy's default, which
    ``ailib_sc.bench`` uses too); None without values."""
    if not values:
        return None
    s = sorted(values)
    h = (len(s) - 1) * p / 100
    lo = math.floor(h)
    return s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo])


def _scheduled(rate: float, duration: float) -> int:
    """Arrivals of a constant schedule (k / rate, k = 1, 2, ...; both tools
    schedule so) before ``duration``."""
    return math.ceil(rate * duration) - 1


def _sustained(p: Point) -> bool:
    """p99 lag under the limit, and 98% of the scheduled requests sent (where
    only the expected count is known, GuideLLM's Poisson, 3 sigma below it if
    that is lower)."""
    n, lag = p["scheduled"], p["lag_p99"]
    floor = _SENT_SHARE * n
    if not p["exact"]:
        floor = min(floor, n - 3 * math.sqrt(n))
    return lag is not None and lag < _LAG_LIMIT and p["sent"] >= floor


def _ms(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x * 1000:,.{digits}f}"


def _share(x: float | None) -> str:
    return "?" if x is None else f"{100 * x:.0f}%"


def _load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def _proc_cpu(pid: int, *, tree: bool = False) -> float:
    """CPU seconds of process ``pid`` (``tree``: plus its live descendants, and
    the children each has reaped), from ``/proc``; 0.0 once it is gone."""
    total, pids = 0, [pid]
    while pids:
        pid = pids.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in f[11 : 15 if tree else 13])
            if tree:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pids += [int(c) for c in (task / "children").read_text().split()]
    return total / os.sysconf("SC_CLK_TCK")


class _Sampler:
    """Every 50 ms, in a thread: the busy jiffies of the client and server
    CPUs (``/proc/stat``), the server process's CPU seconds and those of the
    client's process tree (once :meth:`track` named it), so that any
    wall-clock interval gets its shares."""

    def __init__(self, server_pid: int) -> None:
        self._server = server_pid
        self._client: int | None = None
        self._cpus = (client_cpus() or set(), server_cpus() or set())
        self._rows: list[tuple[float, ...]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def track(self, client_pid: int) -> None:
        self._client = client_pid

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def _sample(self) -> None:
        row = [time.time(), 0.0, 0.0, 0.0, 0.0]
        with contextlib.suppress(OSError, ValueError):
            for line in Path("/proc/stat").read_text().splitlines():
                name, *fields = line.split()
                if not name.startswith("cpu") or name == "cpu":
                    continue
                v = [float(x) for x in fields[:8]]
                busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
                for k, cpus in enumerate(self._cpus):
                    if int(name[3:]) in cpus:
                        row[1 + 2 * k] += busy
                        row[2 + 2 * k] += busy + v[3] + v[4]
        row.append(_proc_cpu(self._server))
        row.append(_proc_cpu(self._client, tree=True) if self._client else 0.0)
        self._rows.append(tuple(row))

    def annotate(self, points: list[Point]) -> None:
        """Add each point's client and server core shares (None unless the
        two are pinned apart) and the server process's CPU seconds; for a
        tracked client, its CPU seconds; then CPU seconds per request sent."""
        times = [r[0] for r in self._rows]
        pinned = bool(self._cpus[1])
        for p in points:
            i = max(0, bisect.bisect_left(times, p["t0"]) - 1)
            j = min(len(times) - 1, bisect.bisect_left(times, p["t1"]))
            a, b = self._rows[i], self._rows[j]
            for k, key in enumerate(("client_core", "server_core")):
                dt = b[2 + 2 * k] - a[2 + 2 * k]
                p[key] = (b[1 + 2 * k] - a[1 + 2 * k]) / dt if pinned and dt else None
            p["server_cpu_s"] = b[5] - a[5]
            if self._client:
                p["cpu_s"] = b[6] - a[6]
            cpu = p.get("cpu_s")
            p["cpu_per_req"] = cpu / p["sent"] if cpu and p["sent"] else None


# ---------------------------------------------------------------- ours


async def _child_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """In the child: one ``run_benchmark`` per rate on one client, stopping
    after ``stop_after`` rates in a row not sustained."""
    from ailib_sc import AiClient, ConnectionOptions, Provider
    from ailib_sc.bench import Profile, SyntheticRequests, run_benchmark

    provider = Provider.custom("local", spec["url"])
    requests = SyntheticRequests(
        _MODEL, prompt_tokens=_WORDS, output_tokens=_TOKENS, provider=provider
    )
    points: list[Point] = []
    reports: list[Any] = []
    misses = 0
    async with AiClient(provider, ConnectionOptions(pool_size=1024)) as client:
        for rate in spec["rates"]:
            gc.collect()
            profile = Profile(
                kind=spec["kind"],
                rates=[rate],
                duration=spec["duration"],
                warmup=spec["warmup"],
            )
            t0, c0 = time.time(), time.process_time()
            report = await run_benchmark(client, profile, requests)
            t1, c1 = time.time(), time.process_time()
            if spec["keep"]:
                reports.append(json.loads(report.to_json()))
            run = report.runs[0]
            a = run.aggregates

            def d(dist: Any, key: str) -> float | None:
                return getattr(dist, key) if dist.count else None

            point = {"tool": "ours", "kind": spec["kind"], "rate": rate}
            point.update(scheduled=run.scheduled, exact=True, sent=run.sent)
            point.update(ok=a.successful, errors=a.errors, t0=t0, t1=t1)
            point.update(cpu_s=c1 - c0, measured_ok=a.successful)
            point.update(lag_p50=d(a.lag, "p50"), lag_p99=d(a.lag, "p99"))
            point.update(lag_max=d(a.lag, "max"), dispatch_p99=None)
            point.update(ttft_p50=d(a.ttft, "p50"), ttft_p99=d(a.ttft, "p99"))
            point.update(itl_p50=d(a.itl, "p50"), itl_p99=d(a.itl, "p99"))
            points.append(point)
            misses = 0 if _sustained(point) else misses + 1
            if misses >= spec["stop_after"]:
                break
    return {"points": points, "reports": reports}


def _ours(
    url: str,
    kind: str,
    rates: tuple[float, ...],
    duration: float,
    plan: _Plan,
    *,
    backend: str = "asyncio",
    stop_after: int = 2,
    keep: Path | None = None,
) -> list[Point]:
    spec = {"url": url, "kind": kind, "rates": rates, "duration": duration}
    spec.update(warmup=plan.warmup, backend=backend, stop_after=stop_after)
    spec["keep"] = str(keep) if keep else None
    try:
        r = run_json(
            [__file__, "--child-ours", json.dumps(spec)],
            timeout=60 + len(rates) * (duration + 10),
        )
    except RuntimeError as exc:
        print(f"ailib_sc {kind} {backend}: FAILED: {exc}", file=sys.stderr)
        return []
    points: list[Point] = r["points"]  # type: ignore[assignment]
    for p in points:
        p["backend"] = backend
    return points


# ---------------------------------------------------------------- raw floor


async def _child_raw(spec: dict[str, Any]) -> dict[str, Any]:
    """In the child: the constant schedule sent by hand over HTTP/1.1 (bare
    asyncio streams, a LIFO stack of idle connections); each reply timed from
    the write, with one ``perf_counter`` per ``read``."""
    host_port = spec["url"].split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    body = json.dumps(
        {
            "model": _MODEL,
            "messages": [{"role": "user", "content": " ".join(["word"] * _WORDS)}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_completion_tokens": _TOKENS,
            "ignore_eos": True,
        }
    ).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host_port}\r\ncontent-type: "
        f"application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    token = b'"delta":{"content":'
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    ttft: list[float] = []
    itl: list[float] = []

    async def one(offset: float) -> None:
        if idle:
            reader, writer = idle.pop()
        else:
            reader, writer = await asyncio.open_connection(host, int(port))
        t0 = time.perf_counter()
        writer.write(request)
        buf, scanned, times = b"", 0, []
        while not buf.endswith(b"\r\n0\r\n\r\n"):
            data = await reader.read(65536)
            now = time.perf_counter()
            if not data:
                raise RuntimeError("the server closed the connection")
            buf += data
            times += [now] * buf.count(token, scanned)
            scanned = max(0, len(buf) - len(token) + 1)
        if len(times) != _TOKENS:
            raise RuntimeError(f"expected {_TOKENS} content chunks, got {len(times)}")
        idle.append((reader, writer))
        if offset >= spec["warmup"]:
            ttft.append(times[0] - t0)
            itl.append((times[-1] - times[0]) / (_TOKENS - 1))

    rate, tasks, start = spec["rate"], [], time.perf_counter()
    for k in range(1, _scheduled(rate, spec["duration"]) + 1):
        await asyncio.sleep(max(0.0, start + k / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(k / rate)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return {"ttft": ttft, "itl": itl}


# ---------------------------------------------------------------- GuideLLM


def _find_guidellm() -> str | None:
    return os.environ.get("GUIDELLM") or shutil.which("guidellm")


def _guidellm(
    exe: str,
    url: str,
    kind: str,
    rates: tuple[float, ...],
    duration: float,
    plan: _Plan,
    tmp: Path,
    keep: Path | None,
    sampler: _Sampler,
) -> list[Point]:
    """One ``guidellm run`` over ``rates`` (one benchmark each), pinned to the
    client CPU (its worker processes inherit that); its points, like ours."""
    tag = f"{kind}-{'-'.join(f'{r:g}' for r in rates)}"
    data, out = tmp / f"prompts-{tag}.jsonl", tmp / f"guidellm-{tag}.json"
    # A prompt and an output token count per line (its column mapper's default
    # names): no tokenizer needed. It reads from the first line for every
    # point and never wraps around, so there must be enough lines.
    words = " ".join(["word"] * (_WORDS - 1))
    with data.open("w") as f:
        for i in range(int(max(rates) * (duration + 2) * 1.2) + 100):
            row = {"prompt": f"{words} {i}", "output_tokens_count": _TOKENS}
            f.write(json.dumps(row) + "\n")
    target = url.removesuffix("/").removesuffix("/v1")
    backend = f"kind=openai_http,target={target},model={_MODEL},validate_backend=false"
    cmd = [exe, "run", "--backend", backend]
    cmd += ["--profile", f"kind={kind},warmup={plan.warmup:g}"]
    cmd += ["--override", "profile.rate", ",".join(f"{r:g}" for r in rates)]
    cmd += ["--constraint", f"kind=max_duration,seconds={duration:g}"]
    cmd += ["--data", f"kind=json_file,path={data}"]
    cmd += ["--output", f"kind=json,path={out}", "--disable-console"]
    env = subprocess_env()
    env.pop("PYTHONPATH", None)
    env.update(  # no network: nothing looked up on the Hugging Face Hub
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(tmp / "hf"),
        DO_NOT_TRACK="1",
    )
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=tmp,
            start_new_session=True,  # its workers too can be stopped at once
        )
        if client_cpus():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(proc.pid, client_cpus() or set())
        sampler.track(proc.pid)
        try:
            status = proc.wait(90 + len(rates) * (duration + 60))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait()
        if status != 0 or not out.exists():
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2500:]
            print(f"GuideLLM {tag}: FAILED (status {status}): {tail}", file=sys.stderr)
            return []
    if keep:
        shutil.copy(out, keep / out.name)
    report = json.loads(out.read_text())
    return [_guidellm_point(b, kind, duration) for b in report["benchmarks"]]


def _guidellm_point(b: dict[str, Any], kind: str, duration: float) -> Point:
    """A GuideLLM benchmark's figures, from its per-request records."""
    rate = float(b["config"]["strategy"]["rate"])
    state, sched = b["scheduler_state"], b["scheduler_metrics"]
    start, end = sched["measure_start_time"], sched["measure_end_time"]
    lists = {k: v or [] for k, v in b["requests"].items() if k != "total"}
    ok_ids = {id(r) for r in lists["successful"]}
    # Started (handed to its HTTP client) and due within the point: it keeps
    # sending what falls due until its duration constraint is noticed, and
    # its first Poisson point can start requests due before its start (in
    # 1970: its workers add gaps to the shared offset before it is set).
    started = [
        (r, t)
        for rs in lists.values()
        for r in rs
        if (t := r["info"]["timings"]).get("resolve_start") is not None
        and 0 <= t["targeted_start"] - state["start_time"] < duration
    ]
    measured = [
        (r, t)
        for r, t in started
        if (t.get("request_end") or t.get("resolve_end") or end) >= start
        and (t.get("request_start") or t["resolve_start"]) <= end
    ]
    lag = [t["resolve_start"] - t["targeted_start"] for _, t in measured]
    good = [r for r, _ in measured if id(r) in ok_ids]
    ttft = [
        r["time_to_first_token_ms"] / 1000
        for r in good
        if r.get("time_to_first_token_ms")
    ]
    itl = [
        r["inter_token_latency_ms"] / 1000
        for r in good
        if r.get("inter_token_latency_ms")
    ]
    own = ((b["metrics"].get("request_dispatch_delay") or {}).get("total") or {}).get(
        "percentiles"
    ) or {}
    exact = kind == "constant"
    p: Point = {"tool": "GuideLLM", "kind": kind, "rate": rate, "exact": exact}
    p.update(scheduled=_scheduled(rate, duration) if exact else rate * duration)
    p.update(
        sent=len(started), ok=len(lists["successful"]), errors=len(lists["errored"])
    )
    p.update(
        lag_p50=_pct(lag, 50), lag_p99=_pct(lag, 99), lag_max=max(lag, default=None)
    )
    p.update(
        dispatch_p99=own.get("p99"), ttft_p50=_pct(ttft, 50), ttft_p99=_pct(ttft, 99)
    )
    p.update(itl_p50=_pct(itl, 50), itl_p99=_pct(itl, 99))
    p.update(t0=state["start_time"], t1=state["end_time"])
    p["workers"] = b["config"]["strategy"].get("worker_count")
    p["measured_ok"] = len(good)
    return p


def _guidellm_ladder(
    exe: str,
    url: str,
    kind: str,
    plan: _Plan,
    tmp: Path,
    keep: Path | None,
    sampler: _Sampler,
) -> list[Point]:
    """The ladder, ``plan.chunk`` rates per invocation (each costs ~10 s of
    start-up, each point ~15 s more), until two rates in a row fail."""
    points: list[Point] = []
    rates = plan.guidellm_ladder
    while rates:
        chunk, rates = rates[: plan.chunk], rates[plan.chunk :]
        got = _guidellm(exe, url, kind, chunk, plan.duration, plan, tmp, keep, sampler)
        points += got
        if not got or (len(points) >= 2 and not any(map(_sustained, points[-2:]))):
            break
    return points


# ---------------------------------------------------------------- phases


def _core(p: Point) -> str:
    """The client core's busy share over the point, split into the client's
    own CPU and everything else's (other work on the machine): ``64+3%``."""
    busy, cpu = p.get("client_core"), p.get("cpu_s")
    if busy is None or cpu is None:
        return _share(busy)
    own = cpu / (p["t1"] - p["t0"])
    return f"{100 * own:.0f}+{100 * max(0.0, busy - own):.0f}%"


def _ttft_phase(plan: _Plan, exe: str | None, tmp: Path, keep: Path | None) -> Summary:
    load, rate, duration = _load(), plan.ttft_rate, plan.ttft_duration
    rows: list[list[Any]] = []

    def row(name: str, n: int, tt: list[Any], it: list[Any], p: Point | None) -> None:
        err = [None if x is None else x - _D for x in tt]
        ierr = [None if x is None else x - _G for x in it]
        cells = [_ms(x, 2) for x in (*tt, *err)] + [_ms(x, 3) for x in (*it, *ierr)]
        cores = ["-", "-"] if p is None else [_core(p), _share(p["server_core"])]
        rows.append([name, n, *cells, *cores])

    with start_server("fake-generate") as (url, _pid):
        spec = {"url": url, "rate": rate, "duration": duration, "warmup": plan.warmup}
        try:
            raw: dict[str, Any] = run_json(
                [__file__, "--child-raw", json.dumps(spec)], timeout=120
            )
            tt, it = raw["ttft"], raw["itl"]
            row(
                "raw sockets (floor)",
                len(tt),
                [_pct(tt, 50), _pct(tt, 99)],
                [_pct(it, 50), _pct(it, 99)],
                None,
            )
        except RuntimeError as exc:
            print(f"raw reference: FAILED: {exc}", file=sys.stderr)
    points: list[Point] = []
    with start_server("fake-generate") as (url, pid), _Sampler(pid) as sampler:
        keep_ours = keep / "ours-ttft.json" if keep else None
        points += _ours(
            url, "constant", (rate,), duration, plan, stop_after=9, keep=keep_ours
        )
        sampler.annotate(points)
    if exe:
        with start_server("fake-generate") as (url, pid), _Sampler(pid) as sampler:
            got = _guidellm(
                exe, url, "constant", (rate,), duration, plan, tmp, keep, sampler
            )
            sampler.annotate(got)
        points += got
    for p in points:
        name = (
            "ailib_sc (asyncio)"
            if p["tool"] == "ours"
            else f"GuideLLM ({p['workers']} workers)"
        )
        row(
            name,
            p["measured_ok"],
            [p["ttft_p50"], p["ttft_p99"]],
            [p["itl_p50"], p["itl_p99"]],
            p,
        )
    head = ["client", "requests", "TTFT p50", "p99", "err p50", "err p99"]
    head += ["ITL p50", "p99", "err p50", "err p99", "client core", "server core"]
    print_table(
        head,
        rows,
        title=f"TTFT and ITL reported vs the server's true D = {_D * 1000:g} ms and "
        f"G = {_G * 1000:g} ms (ms; err = reported - true), FakeProviderServer "
        f"generate mode, {_TOKENS} tokens, constant {rate:g} req/s for {duration:g} "
        f"s, 1 s warm-up; client core = own + other work (load before: {load})",
    )
    summary: Summary = []
    ours = [p for p in points if p["tool"] == "ours"]
    if ours and ours[0]["server_cpu_s"] > 0.05:
        per = ours[0]["server_cpu_s"] / ours[0]["sent"]
        print(
            f"FakeProviderServer: {per * 1000:.1f} ms of CPU per delayed "
            f"{_TOKENS}-token stream, i.e. one core near {1 / per:,.0f} req/s: the "
            "rate ladders use _fastserver.py"
        )
    if len(points) == 2:
        o, g = points
        for key, true in (
            ("ttft_p50", _D),
            ("ttft_p99", _D),
            ("itl_p50", _G),
            ("itl_p99", _G),
        ):
            what = f"{key[:-4].upper()} {key[-3:]} error ms"
            mine, theirs = (o[key] - true) * 1000, (g[key] - true) * 1000
            print(
                f"{what}: ailib_sc {mine:.2f}, GuideLLM {theirs:.2f} (GuideLLM / ours {fmt_ratio(theirs, mine)})"
            )
            summary.append((f"loadgen {what}, ours", mine, "info", None))
            summary.append((f"loadgen {what}, GuideLLM", theirs, "info", None))
    return summary


def _ladder_phase(
    kind: str, plan: _Plan, exe: str | None, tmp: Path, keep: Path | None
) -> tuple[list[str], Summary]:
    """Both ladders of one arrival kind, printed; the row of the highest
    rates and the summary rows."""
    load = _load()
    with start_server(_FAST) as (url, pid), _Sampler(pid) as sampler:
        keep_ours = keep / f"ours-{kind}.json" if keep else None
        ours = _ours(url, kind, plan.ladder, plan.duration, plan, keep=keep_ours)
        sampler.annotate(ours)
    guide: list[Point] = []
    if exe:
        with start_server(_FAST) as (url, pid), _Sampler(pid) as sampler:
            guide = _guidellm_ladder(exe, url, kind, plan, tmp, keep, sampler)
            sampler.annotate(guide)
    by_rate: dict[float, dict[str, Point]] = {}
    for p in ours + guide:
        by_rate.setdefault(p["rate"], {})[p["tool"]] = p
    rows = []
    for rate in sorted(by_rate):
        row = [f"{rate:,g}"]
        for tool in ("ours", "GuideLLM"):
            p = by_rate[rate].get(tool)
            if p is None:
                row += [""] * (8 if tool == "GuideLLM" else 7)
                continue
            row += [_ms(p["lag_p50"], 2), _ms(p["lag_p99"], 2)]
            if tool == "GuideLLM":
                row.append(_ms(p["dispatch_p99"], 1))
            sched = f"{'' if p['exact'] else '~'}{p['scheduled']:,.0f}"
            row += [f"{p['sent']:,}/{sched}", _ms(p["ttft_p50"], 1)]
            row += [
                _ms(p["cpu_per_req"], 2),
                _core(p),
                "yes" if _sustained(p) else "NO",
            ]
        rows.append(row)
    head = ["req/s", "ours lag p50", "p99", "sent/sched", "TTFT p50", "CPU/req"]
    head += ["client core", "ok", "GuideLLM lag p50", "p99", "dispatch p99"]
    head += ["sent/sched", "TTFT p50", "CPU/req", "client core", "ok"]
    print_table(
        head,
        rows,
        title=f"{kind.capitalize()} arrivals against _fastserver.py ({_TOKENS} chunks "
        "per stream); ms: lag = due -> handed to the HTTP client, GuideLLM's "
        "'dispatch' = due -> first header byte, client CPU per request sent; "
        "client core = own + other work; ok = p99 lag < "
        f"{_LAG_LIMIT * 1000:g} ms and >= {_SENT_SHARE:.0%} sent (load before: {load})",
    )
    tops = [
        max((p["rate"] for p in pts if _sustained(p)), default=None)
        for pts in (ours, guide)
    ]
    cells = ["none" if t is None else f"{t:,g}" for t in tops]
    # Client CPU per request at the highest rate GuideLLM sustained (else its
    # lowest): where both did the same work.
    at = tops[1] or min((p["rate"] for p in guide), default=None)
    cpu = [
        by_rate.get(at, {}).get(t, {}).get("cpu_per_req") for t in ("ours", "GuideLLM")
    ]
    row = [kind, *cells, fmt_ratio(*tops), "-" if at is None else f"{at:,g}"]
    row += [_ms(cpu[0], 2), _ms(cpu[1], 2), fmt_ratio(cpu[1], cpu[0])]
    if not exe:
        row[2] = "not run"
    summary: Summary = [
        (f"loadgen {kind}: highest sustained req/s, ours", tops[0], "info", None)
    ]
    if exe:
        summary.append(
            (
                f"loadgen {kind}: highest sustained req/s, GuideLLM",
                tops[1],
                "info",
                None,
            )
        )
    return row, summary


def _claim_phase(plan: _Plan, keep: Path | None) -> Summary:
    load, rows, summary = _load(), [], []
    for backend in plan.claim_backends:
        with start_server(_FAST) as (url, pid), _Sampler(pid) as sampler:
            keep_claim = keep / f"ours-claim-{backend}.json" if keep else None
            points = _ours(
                url,
                "poisson",
                (_CLAIM_RATE,),
                plan.claim_duration,
                plan,
                backend=backend,
                stop_after=9,
                keep=keep_claim,
            )
            sampler.annotate(points)
        for p in points:
            met = _sustained(p)
            cells = [
                _ms(p[k], 2) for k in ("lag_p50", "lag_p99", "lag_max", "ttft_p50")
            ]
            sent = f"{p['sent']:,}/{p['scheduled']:,}"
            rows.append(
                [
                    backend,
                    sent,
                    *cells,
                    _core(p),
                    _share(p["server_core"]),
                    "met" if met else "MISSED",
                ]
            )
            lag = None if p["lag_p99"] is None else p["lag_p99"] * 1000
            summary.append(
                (
                    f"loadgen Poisson {_CLAIM_RATE:g} req/s: p99 lag ms ({backend})",
                    lag,
                    f"< {_LAG_LIMIT * 1000:g}",
                    met,
                )
            )
    head = ["loop", "sent/sched", "lag p50", "p99", "max", "TTFT p50"]
    print_table(
        [*head, "client core", "server core", "verdict"],
        rows,
        title=f"Item 3: ailib_sc, Poisson {_CLAIM_RATE:,g} req/s for "
        f"{plan.claim_duration:g} s against _fastserver.py (ms; p99 lag < "
        f"{_LAG_LIMIT * 1000:g} ms, every request sent; client core = own + other "
        f"work; load before: {load})",
    )
    return summary


def run(*, quick: bool = False, keep: Path | None = None, only: str = "all") -> Summary:
    """Run the comparison (``only``: ``ttft``, ``ladder`` or ``claim``, one
    part) and print its tables; return summary rows ``(what, value, target,
    met)`` in ``run_all.py``'s shape."""
    t_start = time.perf_counter()
    plan = _QUICK if quick else _FULL
    exe = _find_guidellm()
    print(
        "== Load generators: ailib_sc.bench (run_benchmark) vs GuideLLM, same "
        f"loopback servers, HTTP/1.1{' (quick)' if quick else ''} =="
    )
    print(
        f"{os.cpu_count()} CPUs; server CPUs {server_cpus()}, client CPUs "
        f"{client_cpus()}; load average {_load()}"
    )
    if exe:
        version = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=120, check=False
        ).stdout.strip()
        print(f"{version} at {exe}")
    else:
        print(
            "GuideLLM not found (set GUIDELLM to its executable, or put `guidellm` "
            "on PATH): its rows are skipped"
        )
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    summary: Summary = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if only in ("all", "ttft"):
            summary += _ttft_phase(plan, exe, tmp, keep)
        if only in ("all", "ladder"):
            highest = []
            for kind in plan.kinds:
                row, rows = _ladder_phase(kind, plan, exe, tmp, keep)
                highest.append(row)
                summary += rows
            head = ["arrivals", "ailib_sc", "GuideLLM", "ours / GuideLLM"]
            head += ["CPU/req at", "ours", "GuideLLM", "GuideLLM / ours"]
            print_table(
                head,
                highest,
                title=f"Highest rate sustained, req/s (p99 lag < {_LAG_LIMIT * 1000:g} "
                f"ms, >= {_SENT_SHARE:.0%} sent; ladder "
                f"{', '.join(f'{r:g}' for r in plan.ladder)}; none: not even the "
                "lowest), and client CPU per request (ms) at GuideLLM's highest",
            )
    if only in ("all", "claim"):
        summary += _claim_phase(plan, keep)
    print(
        f"\n(load-generator benchmark: {time.perf_counter() - t_start:.0f} s; load "
        f"average {_load()})"
    )
    return summary


# ---------------------------------------------------------------- entry points


def _serve_fake(first_delay: float, delay: float) -> None:
    """Serve ``FakeProviderServer`` in generate mode until SIGINT / SIGTERM,
    printing its base URL first (``_common.start_server``'s protocol)."""
    import anyio

    from ailib_sc.testing import FakeProviderServer

    async def serve() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with FakeProviderServer(
                generate=True,
                stream_first_delay=first_delay,
                stream_delay=delay,
                record=False,
            ) as server:
                print(server.base_url, flush=True)
                async for _ in signals:
                    return

    anyio.run(serve)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--keep", type=Path, help="keep every raw JSON report here")
    parser.add_argument(
        "--only", choices=("all", "ttft", "ladder", "claim"), default="all"
    )
    parser.add_argument("--serve-fake", nargs=2, type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child-ours", help=argparse.SUPPRESS)
    parser.add_argument("--child-raw", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        _serve_fake(*args.serve_fake)
    elif args.child_ours:
        import anyio

        spec = json.loads(args.child_ours)
        result = anyio.run(_child_ours, spec, backend=spec["backend"])
        reports = result.pop("reports")
        if spec["keep"]:
            Path(spec["keep"]).write_text(json.dumps(reports))
        print(json.dumps(result))
    elif args.child_raw:
        print(json.dumps(asyncio.run(_child_raw(json.loads(args.child_raw)))))
    else:
        run(quick=args.quick, keep=args.keep, only=args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
