"""One batch run of one client configuration, in a process of its own.

``python benchmarks/_batch_client.py --client ailib --backend trio --http 2
--url http://127.0.0.1:PORT/v1 --n 10000 --concurrency 256 --warmup 512
--repeat 3 [--server-pid PID] [--stats]``

The whole batch is one call, the way an application would write it:

    ailib   ``await client.chat_completion_batch(requests, concurrency=C)`` on an
            ``AiClient(Provider.custom(...), ConnectionOptions(http2=...))``
            (HTTP/1.1: ``pool_size=C``); asyncio or trio. No retry policy: the
            client's default, which retries nothing (requests a server provably
            never processed, such as HTTP/2 streams above a GOAWAY's last stream
            id, are re-sent by the connection pool, not by a retry policy).
    openai  ``asyncio.gather(*(create(...) for each request),
            return_exceptions=True)``, each call under an ``asyncio.Semaphore(C)``,
            on ``AsyncOpenAI(max_retries=0)``; h2c through
            ``DefaultAsyncHttpxClient(http1=False, http2=True)``.

The requests (or the SDK's keyword arguments) are built before the clock
starts. One unmeasured warm-up batch (so every connection is open), then
``--repeat`` measured batches of ``--n``; the batch with the median req/s is
reported. Client CPU is ``time.process_time()`` over the batch. A result is a
success when it is a chat completion with the expected reply text; anything
else (an ``AiLibError`` in its slot, an exception from ``gather``) is a
failure, counted by type.

With ``--stats`` the server (``_fastserver.py --count-ids``) is asked for its
counters (``GET /__stats``) before and after each measured batch: requests it
answered, answers beyond the first per ``x-client-request-id`` (duplicates),
GOAWAYs sent, streams ignored after one, ``connection: close`` replies.

The last stdout line is a JSON object.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from _client_common import (
    MODEL as _MODEL,
)
from _client_common import (
    base_parser,
    open_openai,
    run_client,
)
from _client_common import (
    percentile as _percentile,
)
from _client_common import (
    proc_cpu as _proc_cpu,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

_REPLY = "Hello! How can I assist you today?"  # _payloads.RESPONSE_BODY's text


def _server_stats(url: str) -> dict[str, int]:
    """The fast server's counters (``GET /__stats`` over HTTP/1.1, blocking)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", "/__stats")
        resp = conn.getresponse()
        stats: dict[str, int] = json.loads(resp.read())
    finally:
        conn.close()
    return stats


class Outcome:
    """What a batch returned, reduced to counts (computed after the clock)."""

    def __init__(self) -> None:
        self.ok = 0
        self.failures: Counter[str] = Counter()
        self.first_error: str | None = None
        self.versions: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.extra: dict[str, Any] = {}

    def fail(self, exc: BaseException) -> None:
        # The type with its causes, e.g. APIConnectionError<-RemoteProtocolError.
        chain = [exc]
        while len(chain) < 4:
            cause = chain[-1].__cause__ or chain[-1].__context__
            if cause is None or cause in chain:
                break
            chain.append(cause)
        self.failures["<-".join(type(e).__name__ for e in chain)] += 1
        if self.first_error is None:
            self.first_error = " <- ".join(
                f"{type(e).__name__}: {e}"[:200] for e in chain
            )


# A client opens itself, then hands ``body`` three functions: prepare(n) ->
# inputs, run(inputs) -> raw results (the measured part), digest(raw, n) -> Outcome.


async def _ailib(
    args: argparse.Namespace, body: Callable[..., Awaitable[dict]]
) -> dict:
    from ailib_sc import (
        AiClient,
        AiLibError,
        ChatCompletionRequest,
        ChatCompletionResponse,
        ConnectionOptions,
        Message,
        Provider,
        Role,
    )

    provider = Provider.custom("fake", args.url, api_key="x")
    if args.http == 2:
        options = ConnectionOptions(http2=True)
    else:
        options = ConnectionOptions(http2=False, pool_size=args.concurrency)
    async with AiClient(provider, options) as client:

        def prepare(n: int) -> list[ChatCompletionRequest]:
            return [
                ChatCompletionRequest(
                    model=_MODEL, messages=[Message(role=Role.USER, content="Hello")]
                )
                for _ in range(n)
            ]

        async def run(reqs: list[ChatCompletionRequest]) -> Any:
            return await client.chat_completion_batch(
                reqs, concurrency=args.concurrency
            )

        def digest(results: Any, n: int) -> Outcome:
            out = Outcome()
            if len(results) != n:
                raise RuntimeError(f"{len(results)} results for {n} requests")
            for r in results:
                if isinstance(r, ChatCompletionResponse):
                    if r.first_text() == _REPLY:
                        out.ok += 1
                        if r.stats is not None:
                            out.versions[r.stats.http_version] += 1
                            out.latencies.append(r.stats.latency)
                    else:
                        out.fail(RuntimeError(f"wrong reply {r.first_text()!r}"))
                elif isinstance(r, AiLibError):
                    out.fail(r)
                else:
                    out.fail(RuntimeError(f"unexpected result {r!r}"[:200]))
            st = results.statistics
            if st is not None:
                out.extra = {"attempts": st.attempts, "retries": st.retries}
            return out

        result = await body(prepare, run, digest)
        result["connections_opened"] = client.statistics().opened
        return result


async def _openai(
    args: argparse.Namespace, body: Callable[..., Awaitable[dict]]
) -> dict:
    import asyncio

    client = open_openai(args)
    async with client:
        raw = await client.chat.completions.with_raw_response.create(
            model=_MODEL, messages=[{"role": "user", "content": "Hello"}]
        )
        version = raw.http_response.http_version
        sem = asyncio.Semaphore(args.concurrency)
        create = client.chat.completions.create
        latencies: list[float] = []
        perf = time.perf_counter

        def prepare(n: int) -> list[dict[str, Any]]:
            return [
                {"model": _MODEL, "messages": [{"role": "user", "content": "Hello"}]}
                for _ in range(n)
            ]

        async def call(params: dict[str, Any]) -> Any:
            async with sem:
                t0 = perf()
                resp = await create(**params)
                latencies.append(perf() - t0)
                return resp

        async def run(params: list[dict[str, Any]]) -> Any:
            latencies.clear()
            return await asyncio.gather(
                *(call(p) for p in params), return_exceptions=True
            )

        def digest(results: Sequence[Any], n: int) -> Outcome:
            out = Outcome()
            if len(results) != n:
                raise RuntimeError(f"{len(results)} results for {n} requests")
            for r in results:
                if isinstance(r, BaseException):
                    out.fail(r)
                elif r.choices and r.choices[0].message.content == _REPLY:
                    out.ok += 1
                else:
                    out.fail(RuntimeError(f"wrong reply {r!r}"[:200]))
            out.versions[version] = out.ok
            out.latencies = list(latencies)
            return out

        return await body(prepare, run, digest)


_CLIENTS = {"ailib": _ailib, "openai": _openai}


def _make_body(args: argparse.Namespace) -> Callable[..., Awaitable[dict]]:
    """Warm up, then measure ``--repeat`` batches; the median one is reported."""

    async def body(
        prepare: Callable[[int], Any],
        run: Callable[[Any], Awaitable[Any]],
        digest: Callable[[Any, int], Outcome],
    ) -> dict[str, Any]:
        if args.warmup:
            warm = digest(await run(prepare(args.warmup)), args.warmup)
            if warm.ok == 0:
                raise RuntimeError(f"warm-up failed: {warm.first_error}")
        runs = []
        for _ in range(args.repeat):
            inputs = prepare(args.n)
            stats0 = _server_stats(args.url) if args.stats else None
            gc.collect()
            srv0 = _proc_cpu(args.server_pid)
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            raw = await run(inputs)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            srv1 = _proc_cpu(args.server_pid)
            out = digest(raw, args.n)
            del raw, inputs
            server = None
            if stats0 is not None:
                stats1 = _server_stats(args.url)
                server = {k: stats1[k] - stats0[k] for k in stats1}
            lat = sorted(out.latencies)
            runs.append(
                {
                    "n": args.n,
                    "wall_s": wall,
                    "req_s": args.n / wall,
                    "cpu_s": cpu,
                    "cpu_us_per_req": cpu / args.n * 1e6,
                    "server_cpu_s": None
                    if srv0 is None or srv1 is None
                    else srv1 - srv0,
                    "ok": out.ok,
                    "failures": sum(out.failures.values()),
                    "failure_types": dict(out.failures),
                    "first_error": out.first_error,
                    "http_versions": dict(out.versions),
                    "p50_ms": _percentile(lat, 0.5) * 1e3,
                    "p99_ms": _percentile(lat, 0.99) * 1e3,
                    "max_ms": (lat[-1] if lat else float("nan")) * 1e3,
                    "server": server,
                    **out.extra,
                }
            )
        ranked = sorted(runs, key=lambda r: r["req_s"])
        result = dict(ranked[len(ranked) // 2])
        result["runs"] = runs
        versions = Counter[str]()
        for r in runs:
            versions.update(r["http_versions"])
        result["http_version"] = "/".join(sorted(versions)) or "?"
        return result

    return body


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__, _CLIENTS)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=512)
    parser.add_argument(
        "--repeat", type=int, default=1, help="measured runs; the median is reported"
    )
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument(
        "--stats",
        action="store_true",
        help="read the server's counters (_fastserver.py --count-ids)",
    )
    return run_client(parser, argv, _CLIENTS, _make_body)


if __name__ == "__main__":
    sys.exit(main())
