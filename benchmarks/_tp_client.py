"""One throughput run of one client configuration, in a process of its own.

``python benchmarks/_tp_client.py --client ailib --backend asyncio --http 2
--url http://127.0.0.1:PORT/v1 --n 2000 --concurrency 64 --warmup 200``

``concurrency`` worker tasks share a counter of requests to send; the first
``warmup`` requests (same concurrency, so every connection gets opened) are not
measured. The last stdout line is a JSON object: requests/s over wall time,
client CPU seconds (``time.process_time``), server CPU seconds (from
``/proc/<server-pid>/stat``, when ``--server-pid`` is given), latency
percentiles, errors and the HTTP version actually used.

Clients:
    ailib    ailib_sc.AiClient (asyncio or trio)
    openai   openai.AsyncOpenAI, max_retries=0 (asyncio)
    litellm  litellm.acompletion (asyncio; if installed)
    httpcore-pool  httpcore.AsyncConnectionPool + msgspec decode (asyncio)
    httpcore-conn  bare httpcore connections (LIFO stack of HTTP/1.1 ones, or
             one HTTP/2 one) + msgspec decode (asyncio)
    raw      a bare asyncio Protocol (HTTP/1.1, one connection per worker) or one
             h2 connection (HTTP/2): the cheapest client we can write, used to
             measure how fast the server can go
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import msgspec
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
from _payloads import REQUEST_BODY

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    OneRequest = Callable[[], Awaitable[str]]


class _Run:
    """Counts, latencies and errors of one phase."""

    def __init__(self, total: int) -> None:
        self.remaining = total
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error: str | None = None
        self.last_text = ""

    async def worker(self, one: OneRequest) -> None:
        perf = time.perf_counter
        lat = self.latencies
        while self.remaining > 0:
            self.remaining -= 1
            t0 = perf()
            try:
                self.last_text = await one()
            except Exception as exc:
                self.errors += 1
                if self.first_error is None:
                    self.first_error = f"{type(exc).__name__}: {exc}"[:500]
            lat.append(perf() - t0)


# ---------------------------------------------------------------- clients


# The httpcore floor decodes only what it returns (msgspec's "only the fields you
# use"). Module level: msgspec resolves the annotations in module globals.
class _FloorMessage(msgspec.Struct):
    content: str | None = None


class _FloorChoice(msgspec.Struct):
    message: _FloorMessage


class _FloorResponse(msgspec.Struct):
    choices: list[_FloorChoice]


async def _ailib(args: argparse.Namespace, body: Callable[[OneRequest], Any]) -> dict:
    from ailib_sc import (
        AiClient,
        ChatCompletionRequest,
        ConnectionOptions,
        Message,
        Provider,
        Role,
    )

    provider = Provider.custom("fake", args.url, api_key="x")
    options = ConnectionOptions(http2=args.http == 2)
    async with AiClient(provider, options) as client:

        async def one() -> str:
            req = ChatCompletionRequest(
                model=_MODEL, messages=[Message(role=Role.USER, content="Hello")]
            )
            resp = await client.chat_completion(req)
            return resp.first_text()

        result = await body(one)
        stats = client.statistics()
        result["http_version"] = "HTTP/2" if stats.http2_connections else "HTTP/1.1"
        result["connections_opened"] = stats.opened
        return result


async def _openai(args: argparse.Namespace, body: Callable[[OneRequest], Any]) -> dict:
    client = open_openai(args)
    async with client:
        raw = await client.chat.completions.with_raw_response.create(
            model=_MODEL, messages=[{"role": "user", "content": "Hello"}]
        )
        version = raw.http_response.http_version

        async def one() -> str:
            resp = await client.chat.completions.create(
                model=_MODEL, messages=[{"role": "user", "content": "Hello"}]
            )
            return resp.choices[0].message.content or ""

        result = await body(one)
        result["http_version"] = version
        return result


async def _litellm(args: argparse.Namespace, body: Callable[[OneRequest], Any]) -> dict:
    import litellm

    async def one() -> str:
        resp = await litellm.acompletion(
            model="openai/" + _MODEL,
            api_base=args.url,
            api_key="x",
            max_retries=0,
            messages=[{"role": "user", "content": "Hello"}],
        )
        return resp.choices[0].message.content or ""

    result = await body(one)
    result["http_version"] = "HTTP/1.1"
    return result


async def _httpcore(
    args: argparse.Namespace, body: Callable[[OneRequest], Any]
) -> dict:
    """httpcore + msgspec, the floor for a client on httpcore.

    ``httpcore-pool`` uses ``httpcore.AsyncConnectionPool``; ``httpcore-conn``
    uses bare connections: a LIFO stack of HTTP/1.1 connections, or one HTTP/2
    connection (what ailib_sc's own pool is designed to approach).
    """
    from urllib.parse import urlsplit

    import httpcore

    decoder = msgspec.json.Decoder(_FloorResponse)
    encoder = msgspec.json.Encoder()
    url = args.url + "/chat/completions"
    headers = [
        (b"authorization", b"Bearer x"),
        (b"content-type", b"application/json"),
    ]
    h2 = args.http == 2
    parts = urlsplit(args.url)
    origin = httpcore.Origin(b"http", (parts.hostname or "").encode(), parts.port or 80)
    pool: Any
    if args.client == "httpcore-pool":
        pool = httpcore.AsyncConnectionPool(max_connections=100, http1=not h2, http2=h2)
        checkout = checkin = None
    elif h2:
        pool = httpcore.AsyncHTTPConnection(origin, http1=False, http2=True)
        checkout = checkin = None
    else:
        idle: list[httpcore.AsyncHTTPConnection] = []
        pool = None

        def checkout() -> httpcore.AsyncHTTPConnection:
            return idle.pop() if idle else httpcore.AsyncHTTPConnection(origin)

        checkin = idle.append

    async def one() -> str:
        content = encoder.encode(
            {"model": _MODEL, "messages": [{"role": "user", "content": "Hello"}]}
        )
        conn = pool if checkout is None else checkout()
        resp = await conn.request("POST", url, headers=headers, content=content)
        if checkin is not None:
            checkin(conn)
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        return decoder.decode(resp.content).choices[0].message.content or ""

    try:
        result = await body(one)
    finally:
        if pool is not None:
            await pool.aclose()
        elif not h2:
            for c in idle:
                await c.aclose()
    result["http_version"] = "HTTP/2" if h2 else "HTTP/1.1"
    return result


async def _raw(args: argparse.Namespace, body: Callable[[OneRequest], Any]) -> dict:
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path + "/chat/completions").encode()
    loop = asyncio.get_running_loop()
    if args.http == 1:
        request = (
            b"POST " + path + b" HTTP/1.1\r\nhost: " + parts.netloc.encode() + b"\r\n"
            b"authorization: Bearer x\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(REQUEST_BODY)).encode() + b"\r\n\r\n"
        ) + REQUEST_BODY

        class H1(asyncio.Protocol):
            def __init__(self) -> None:
                self.buf = b""
                self.waiter: asyncio.Future[bytes] | None = None
                self.transport: asyncio.Transport | None = None

            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                buf = self.buf + data
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    self.buf = buf
                    return
                head = buf[:end].lower()
                i = head.find(b"content-length:")
                j = head.find(b"\r\n", i)
                n = int(head[i + 15 : j if j >= 0 else len(head)])
                if len(buf) < end + 4 + n:
                    self.buf = buf
                    return
                self.buf = buf[end + 4 + n :]
                if self.waiter is not None:
                    self.waiter.set_result(buf[end + 4 : end + 4 + n])

            def connection_lost(self, exc: Exception | None) -> None:
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_exception(ConnectionError("connection lost"))

            async def request(self) -> bytes:
                self.waiter = loop.create_future()
                assert self.transport is not None
                self.transport.write(request)
                return await self.waiter

        free: list[H1] = []

        async def one() -> str:
            conn = free.pop() if free else None
            if conn is None:
                _, conn = await loop.create_connection(H1, host, port)
            data = await conn.request()
            free.append(conn)
            return data[:0].decode()

        result = await body(one)
        result["http_version"] = "HTTP/1.1"
        return result

    import h2.config
    import h2.connection
    import h2.events

    class H2(asyncio.Protocol):
        def __init__(self) -> None:
            cfg = h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                validate_inbound_headers=False,
                validate_outbound_headers=False,
                normalize_inbound_headers=False,
                normalize_outbound_headers=False,
            )
            self.conn = h2.connection.H2Connection(config=cfg)
            self.waiters: dict[int, asyncio.Future[bytes]] = {}
            self.bodies: dict[int, list[bytes]] = {}
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.conn.initiate_connection()
            transport.write(self.conn.data_to_send())

        def data_received(self, data: bytes) -> None:
            conn = self.conn
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.DataReceived):
                    self.bodies[ev.stream_id].append(ev.data)
                    conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id
                    )
                elif isinstance(ev, h2.events.StreamEnded):
                    self.waiters.pop(ev.stream_id).set_result(
                        b"".join(self.bodies.pop(ev.stream_id))
                    )
            out = conn.data_to_send()
            if out and self.transport is not None:
                self.transport.write(out)

        async def request(self) -> bytes:
            conn = self.conn
            sid = conn.get_next_available_stream_id()
            fut = self.waiters[sid] = loop.create_future()
            self.bodies[sid] = []
            conn.send_headers(
                sid,
                [
                    (b":method", b"POST"),
                    (b":authority", parts.netloc.encode()),
                    (b":scheme", b"http"),
                    (b":path", path),
                    (b"authorization", b"Bearer x"),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(REQUEST_BODY)).encode()),
                ],
            )
            conn.send_data(sid, REQUEST_BODY, end_stream=True)
            assert self.transport is not None
            self.transport.write(conn.data_to_send())
            return await fut

    _, proto = await loop.create_connection(H2, host, port)

    async def one_h2() -> str:
        data = await proto.request()
        return data[:0].decode()

    result = await body(one_h2)
    result["http_version"] = "HTTP/2"
    return result


_CLIENTS = {
    "ailib": _ailib,
    "openai": _openai,
    "litellm": _litellm,
    "httpcore-conn": _httpcore,
    "httpcore-pool": _httpcore,
    "raw": _raw,
}

# ---------------------------------------------------------------- driver


def _make_body(args: argparse.Namespace) -> Callable[[OneRequest], Any]:
    """The benchmark proper, given a client's ``one()``: warm up, then measure."""
    if args.backend == "trio":
        import trio

        async def spawn(n: int, one: OneRequest) -> _Run:
            run = _Run(n)
            async with trio.open_nursery() as nursery:
                for _ in range(args.concurrency):
                    nursery.start_soon(run.worker, one)
            return run

    else:
        import asyncio

        async def spawn(n: int, one: OneRequest) -> _Run:
            run = _Run(n)
            async with asyncio.TaskGroup() as tg:
                for _ in range(args.concurrency):
                    tg.create_task(run.worker(one))
            return run

    async def measure(one: OneRequest) -> dict[str, Any]:
        gc.collect()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        srv0 = _proc_cpu(args.server_pid)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        run = await spawn(args.n, one)
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        srv1 = _proc_cpu(args.server_pid)
        if profiler is not None:
            profiler.dump_stats(args.profile)
        lat = sorted(run.latencies)
        return {
            "n": args.n,
            "wall_s": wall,
            "req_s": args.n / wall,
            "cpu_s": cpu,
            "cpu_us_per_req": cpu / args.n * 1e6,
            "server_cpu_s": None if srv0 is None or srv1 is None else srv1 - srv0,
            "p50_ms": _percentile(lat, 0.5) * 1e3,
            "p99_ms": _percentile(lat, 0.99) * 1e3,
            "errors": run.errors,
            "first_error": run.first_error,
            "reply": run.last_text,
        }

    async def body(one: OneRequest) -> dict[str, Any]:
        warm = await spawn(args.warmup, one)
        if warm.errors:
            raise RuntimeError(f"warm-up failed: {warm.first_error}")
        # Repeat the measured phase; report the run with the median req/s.
        runs = [await measure(one) for _ in range(args.repeat)]
        runs.sort(key=lambda r: r["req_s"])
        result = runs[len(runs) // 2]
        result["all_req_s"] = [r["req_s"] for r in runs]
        result["errors"] = sum(r["errors"] for r in runs)
        return result

    return body


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__, _CLIENTS)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--repeat", type=int, default=1, help="measured runs; the median is reported"
    )
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--profile", default=None, help="write cProfile stats here")
    return run_client(parser, argv, _CLIENTS, _make_body)


if __name__ == "__main__":
    sys.exit(main())
