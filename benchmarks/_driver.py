"""One benchmark run of one client configuration, in a process of its own.

``python benchmarks/_driver.py {tp,stream,batch} --client CLIENT [--backend
asyncio|trio] [--http 1|2] --url http://127.0.0.1:PORT/v1 [--server-pid PID]``

Modes (run by ``bench_throughput.py``, ``bench_stream.py``, ``bench_batch.py``):

- ``tp``: ``--concurrency`` worker tasks share a counter of requests: ``--warmup``
  unmeasured ones (so every connection is open), then ``--n`` measured ones,
  ``--repeat`` times. Unit: a request.
- ``stream``: a round is ``--streams`` tasks that each open one streamed chat
  completion (``stream_options.include_usage``) at once and read it to the end,
  touching every chunk's ``choices[0].delta.content`` (and ``usage``).
  ``--warmup`` unmeasured rounds (with ``--warmup-chunks N`` the slow clients ask
  for N chunks per stream: ``x-stream-chunks``, which only ``_fastserver.py``
  honours), then ``--repeat`` measured ones. Every round is checked: content
  chunks = streams x ``--chunks``, one usage chunk per stream, no errors. Unit:
  a content chunk (role, finish and usage chunks are read, not counted).
- ``batch``: one call per batch: ``chat_completion_batch(reqs, concurrency=C)``
  for ailib_sc (HTTP/1.1: ``pool_size=C``; no retry policy), and for the others
  ``asyncio.gather(*calls, return_exceptions=True)``, each call under an
  ``asyncio.Semaphore(C)``. Requests are built before the clock starts. One
  warm-up batch of ``--warmup``, then ``--repeat`` batches of ``--n``. A result
  without the expected reply text is a failure, counted by exception chain.
  ``--stats`` reads the server's counters (``_fastserver.py --count-ids``, ``GET
  /__stats``) around each batch. Unit: a request.

Every measured run: ``gc.collect()``, then wall time, client CPU
(``process_time``) and the server's CPU (``/proc/PID/stat``) around it; under
cProfile with ``--profile FILE``. The run with the median rate is reported, as
the JSON object on the last stdout line.

Clients (asyncio only, but ``ailib``): ``ailib`` (AiClient, asyncio or trio);
``openai`` (``AsyncOpenAI(max_retries=0)`` on httpx; h2c through
``DefaultAsyncHttpxClient(http1=False, http2=True)``); ``openai-aiohttp`` (the
same with ``http_client=DefaultAioHttpClient()``); ``litellm`` (``acompletion``);
``aiohttp`` (a bare ``ClientSession`` + msgspec, decoding only the fields read:
the floor for clients on aiohttp); ``httpcore-conn`` and ``httpcore-pool`` (tp
only: bare httpcore connections, a LIFO stack of HTTP/1.1 ones or one HTTP/2
one, or its ``AsyncConnectionPool``, + msgspec); ``raw`` (tp and stream: an
asyncio Protocol per connection over HTTP/1.1, or one h2 connection, that
parse only what framing needs, streams counted in the raw bytes: the cheapest
client we can write, to measure the server). openai-aiohttp, litellm and
aiohttp speak HTTP/1.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import msgspec
from h2.events import DataReceived, StreamEnded, StreamReset
from h2.settings import SettingCodes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _payloads import REQUEST_BODY

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable

__all__ = ["main"]

MODEL = "gpt-4o-mini"
REPLY = "Hello! How can I assist you today?"  # _payloads.RESPONSE_BODY's text
_STREAM_REQUEST = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Hello"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}
_STREAM_BODY = json.dumps(_STREAM_REQUEST, separators=(",", ":")).encode()
# A content chunk on the wire (the role chunk's delta starts with "role", the
# finish chunk's is empty): what the raw clients count.
_MARK = b'"delta":{"content":"'
_KEEP = len(_MARK) - 1  # bytes kept across reads so that no mark is missed
_SLOW = ("openai", "openai-aiohttp", "litellm")  # short warm-up streams
_H1_ONLY = ("openai-aiohttp", "litellm", "aiohttp")
_HTTP = {1: "HTTP/1.1", 2: "HTTP/2"}
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _request() -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}]}


# ---------------------------------------------------------------- clients


@dataclass
class Client:
    """What one client offers the workloads."""

    #: One request as ``complete`` takes it (tp: built per call, inside the
    #: clock; batch: before it).
    request: Callable[[], Any]
    #: Send one request, return the reply's text.
    complete: Callable[[Any], Awaitable[str]]
    #: Read one stream to the end: (content chunks, 1 if a usage chunk came).
    #: The argument: extra request headers (only the slow clients send them).
    stream: Callable[[dict[str, str]], Awaitable[tuple[int, int]]] | None = None
    #: A batch in one call (ailib_sc); others get gather + semaphore.
    batch: Callable[[list[Any]], Awaitable[Any]] | None = None
    http_version: Callable[[], str] | None = None  # None: the one asked for
    info: Callable[[], dict[str, Any]] = dict


async def _count(chunks: AsyncIterable[Any]) -> tuple[int, int]:
    """Content chunks and usage (0/1) of a stream of chunk objects."""
    n = usage = 0
    async for chunk in chunks:
        if chunk.choices:
            if chunk.choices[0].delta.content:
                n += 1
        elif chunk.usage is not None:
            usage = 1
    return n, usage


@contextlib.asynccontextmanager
async def _ailib(args: argparse.Namespace) -> AsyncIterator[Client]:
    from ailib_sc import (
        AiClient,
        ChatCompletionRequest,
        ConnectionOptions,
        Message,
        Provider,
        Role,
    )

    batch_h1 = args.mode == "batch" and args.http == 1
    pool = {"pool_size": args.concurrency} if batch_h1 else {}
    options = ConnectionOptions(http2=args.http == 2, **pool)
    versions: set[str] = set()
    provider = Provider.custom("fake", args.url, api_key="x")
    async with AiClient(provider, options) as client:

        def request() -> ChatCompletionRequest:
            return ChatCompletionRequest(
                model=MODEL, messages=[Message(role=Role.USER, content="Hello")]
            )

        async def complete(req: ChatCompletionRequest) -> str:
            return (await client.chat_completion(req)).first_text()

        async def stream(_headers: dict[str, str]) -> tuple[int, int]:
            async with client.chat_completion_stream(request()) as s:
                result = await _count(s)
                versions.add(s.http_version)
            return result

        async def batch(reqs: list[ChatCompletionRequest]) -> Any:
            return await client.chat_completion_batch(
                reqs, concurrency=args.concurrency
            )

        def version() -> str:
            if versions:
                return "/".join(sorted(versions))
            return "HTTP/2" if client.statistics().http2_connections else "HTTP/1.1"

        yield Client(
            request,
            complete,
            stream,
            batch,
            version,
            lambda: {"connections_opened": client.statistics().opened},
        )


@contextlib.asynccontextmanager
async def _openai(args: argparse.Namespace) -> AsyncIterator[Client]:
    import openai

    http_client: Any = None
    if args.client == "openai-aiohttp":
        http_client = openai.DefaultAioHttpClient()
    elif args.http == 2:
        # h2c by prior knowledge: on http:// httpx only speaks HTTP/2 when
        # HTTP/1.1 is turned off.
        http_client = openai.DefaultAsyncHttpxClient(http1=False, http2=True)
    async with openai.AsyncOpenAI(
        base_url=args.url, api_key="x", max_retries=0, http_client=http_client
    ) as client:
        raw = await client.chat.completions.with_raw_response.create(**_request())
        version = raw.http_response.http_version
        create = client.chat.completions.create

        async def complete(params: dict[str, Any]) -> str:
            return (await create(**params)).choices[0].message.content or ""

        async def stream(headers: dict[str, str]) -> tuple[int, int]:
            s = await create(**_STREAM_REQUEST, extra_headers=headers or None)
            async with s:
                return await _count(s)

        yield Client(_request, complete, stream, http_version=lambda: version)


@contextlib.asynccontextmanager
async def _litellm(args: argparse.Namespace) -> AsyncIterator[Client]:
    import litellm

    kw = {"api_base": args.url, "api_key": "x", "max_retries": 0}

    async def complete(params: dict[str, Any]) -> str:
        params = {**params, "model": "openai/" + MODEL}
        resp = await litellm.acompletion(**params, **kw)
        return resp.choices[0].message.content or ""

    async def stream(headers: dict[str, str]) -> tuple[int, int]:
        params = {**_STREAM_REQUEST, "model": "openai/" + MODEL}
        s = await litellm.acompletion(**params, **kw, extra_headers=headers or None)
        n = usage = 0
        async for chunk in s:
            # litellm hands the usage on a chunk that may still carry an
            # (empty) choice.
            if chunk.choices and chunk.choices[0].delta.content:
                n += 1
            if getattr(chunk, "usage", None) is not None:
                usage = 1
        return n, usage

    yield Client(_request, complete, stream)


# The floors decode only what they read (msgspec's "only the fields you use").
_Message = msgspec.defstruct("Message", [("content", str | None, None)])
_Response = msgspec.defstruct(
    "Response",
    [("choices", list[msgspec.defstruct("Choice", [("message", _Message)])])],
)
_Delta = msgspec.defstruct("Delta", [("content", str | None, None)])
_Usage = msgspec.defstruct("Usage", [("total_tokens", int)])
_Chunk = msgspec.defstruct(
    "Chunk",
    [
        ("choices", list[msgspec.defstruct("ChunkChoice", [("delta", _Delta)])]),
        ("usage", _Usage | None, None),
    ],
)
_HEADERS = {"authorization": "Bearer x", "content-type": "application/json"}


@contextlib.asynccontextmanager
async def _aiohttp(args: argparse.Namespace) -> AsyncIterator[Client]:
    """aiohttp + msgspec: the floor for a client on aiohttp."""
    import aiohttp

    url = args.url + "/chat/completions"
    encode = msgspec.json.Encoder().encode
    decode = msgspec.json.Decoder(_Response).decode
    decode_chunk = msgspec.json.Decoder(_Chunk).decode
    async with aiohttp.ClientSession() as session:

        async def complete(params: dict[str, Any]) -> str:
            async with session.post(url, data=encode(params), headers=_HEADERS) as r:
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
                body = await r.read()
            return decode(body).choices[0].message.content or ""

        async def stream(headers: dict[str, str]) -> tuple[int, int]:
            n = usage = 0
            headers = {**_HEADERS, **headers}
            async with session.post(url, data=_STREAM_BODY, headers=headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
                buf = b""
                async for data in r.content.iter_any():
                    *events, buf = (buf + data).split(b"\n\n")
                    for event in events:
                        if not event.startswith(b"data: {"):
                            continue  # [DONE]
                        chunk = decode_chunk(event[6:])
                        if chunk.choices:
                            if chunk.choices[0].delta.content:
                                n += 1
                        elif chunk.usage is not None:
                            usage = 1
            return n, usage

        yield Client(_request, complete, stream)


@contextlib.asynccontextmanager
async def _httpcore(args: argparse.Namespace) -> AsyncIterator[Client]:
    """httpcore + msgspec, the floor for a client on httpcore.

    ``httpcore-pool`` uses ``httpcore.AsyncConnectionPool``; ``httpcore-conn``
    uses bare connections: a LIFO stack of HTTP/1.1 connections, or one HTTP/2
    connection (what ailib_sc's own pool is designed to approach).
    """
    import httpcore

    encode = msgspec.json.Encoder().encode
    decode = msgspec.json.Decoder(_Response).decode
    url = args.url + "/chat/completions"
    headers = [(k.encode(), v.encode()) for k, v in _HEADERS.items()]
    h2 = args.http == 2
    parts = urlsplit(args.url)
    origin = httpcore.Origin(b"http", (parts.hostname or "").encode(), parts.port or 80)
    idle: list[httpcore.AsyncHTTPConnection] = []
    pool: Any = None
    if args.client == "httpcore-pool":
        pool = httpcore.AsyncConnectionPool(max_connections=100, http1=not h2, http2=h2)
    elif h2:
        pool = httpcore.AsyncHTTPConnection(origin, http1=False, http2=True)

    async def complete(params: dict[str, Any]) -> str:
        if pool is not None:
            conn = pool
        else:
            conn = idle.pop() if idle else httpcore.AsyncHTTPConnection(origin)
        resp = await conn.request("POST", url, headers=headers, content=encode(params))
        if pool is None:
            idle.append(conn)
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        return decode(resp.content).choices[0].message.content or ""

    try:
        yield Client(_request, complete)
    finally:
        for c in [pool] if pool is not None else idle:
            await c.aclose()


class _RawH1(asyncio.Protocol):
    """One HTTP/1.1 connection, one request at a time. A reply ends at its
    content-length or, streamed, at the last chunk of its chunked body (the
    fast server writes a whole streamed reply in one write); a streamed reply's
    content chunks are counted in the raw bytes."""

    def __init__(self, request: bytes, streamed: bool) -> None:
        self.request_bytes = request
        self.buf = b""
        self.count = self.usage = 0
        self.waiter: asyncio.Future[Any] | None = None
        self.transport: Any = None
        # Bound once, so that asyncio calls the right reader directly.
        self.data_received = self._counted if streamed else self._sized

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def _sized(self, data: bytes) -> None:
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
            self.waiter.set_result("")

    def _counted(self, data: bytes) -> None:
        buf = self.buf + data
        self.count += buf.count(_MARK)
        if b'"usage":{' in buf:
            self.usage = 1
        self.buf = buf[-_KEEP:]
        if buf.endswith(b"\r\n0\r\n\r\n") and self.waiter is not None:
            self.waiter.set_result((self.count, self.usage))
            self.waiter = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    async def request(self) -> Any:
        self.buf, self.count, self.usage = b"", 0, 0
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(self.request_bytes)
        return await self.waiter


class _RawH2(asyncio.Protocol):
    """One h2c connection; every request a stream. Streamed replies get large
    flow-control windows and have their content chunks counted per DATA frame."""

    def __init__(
        self, headers: list[tuple[bytes, bytes]], body: bytes, streamed: bool
    ) -> None:
        self.headers, self.body, self.streamed = headers, body, streamed
        cfg = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_inbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config=cfg)
        self.waiters: dict[int, asyncio.Future[Any]] = {}
        self.state: dict[int, list[Any]] = {}  # stream id -> [tail, count, usage]
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        conn = self.conn
        conn.initiate_connection()
        if self.streamed:
            conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
            conn.increment_flow_control_window(1 << 28)
        transport.write(conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        for ev in conn.receive_data(data):
            if isinstance(ev, DataReceived):
                if self.streamed:
                    st = self.state[ev.stream_id]
                    buf = st[0] + ev.data
                    st[1] += buf.count(_MARK)
                    if b'"usage":{' in buf:
                        st[2] = 1
                    st[0] = buf[-_KEEP:]
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, StreamEnded):
                st = self.state.pop(ev.stream_id)
                result = (st[1], st[2]) if self.streamed else ""
                self.waiters.pop(ev.stream_id).set_result(result)
            elif isinstance(ev, StreamReset):
                self.state.pop(ev.stream_id, None)
                self.waiters.pop(ev.stream_id).set_exception(
                    ConnectionError("stream reset")
                )
        out = conn.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in self.waiters.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost"))

    async def request(self, _arg: object = None) -> Any:
        conn = self.conn
        sid = conn.get_next_available_stream_id()
        fut = self.waiters[sid] = asyncio.get_running_loop().create_future()
        self.state[sid] = [b"", 0, 0]
        conn.send_headers(sid, self.headers)
        conn.send_data(sid, self.body, end_stream=True)
        self.transport.write(conn.data_to_send())
        return await fut


@contextlib.asynccontextmanager
async def _raw(args: argparse.Namespace) -> AsyncIterator[Client]:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path.encode() + b"/chat/completions"
    streamed = args.mode == "stream"
    body = _STREAM_BODY if streamed else REQUEST_BODY
    length = str(len(body)).encode()
    loop = asyncio.get_running_loop()
    if args.http == 2:
        headers = [
            (b":method", b"POST"),
            (b":authority", parts.netloc.encode()),
            (b":scheme", b"http"),
            (b":path", path),
            *[(k.encode(), v.encode()) for k, v in _HEADERS.items()],
            (b"content-length", length),
        ]
        _, proto = await loop.create_connection(
            lambda: _RawH2(headers, body, streamed), host, port
        )
        send: Callable[[Any], Awaitable[Any]] = proto.request
    else:
        request = b"POST %s HTTP/1.1\r\nhost: %s\r\n%scontent-length: %s\r\n\r\n%s" % (
            path,
            parts.netloc.encode(),
            b"".join(
                b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in _HEADERS.items()
            ),
            length,
            body,
        )
        free: list[_RawH1] = []

        async def send(_arg: object) -> Any:
            conn = free.pop() if free else None
            if conn is None:
                _, conn = await loop.create_connection(
                    lambda: _RawH1(request, streamed), host, port
                )
            result = await conn.request()
            free.append(conn)
            return result

    yield Client(lambda: None, send, send)


_CLIENTS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "ailib": _ailib,
    "openai": _openai,
    "openai-aiohttp": _openai,
    "litellm": _litellm,
    "aiohttp": _aiohttp,
    "httpcore-conn": _httpcore,
    "httpcore-pool": _httpcore,
    "raw": _raw,
}

# ---------------------------------------------------------------- measuring


def _proc_cpu(pid: int | None) -> float | None:
    """utime + stime of process ``pid`` in seconds, or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def _latency(latencies: list[float]) -> dict[str, float]:
    lat = sorted(latencies)
    return {
        "p50_ms": _percentile(lat, 0.5) * 1e3,
        "p99_ms": _percentile(lat, 0.99) * 1e3,
        "max_ms": (lat[-1] if lat else float("nan")) * 1e3,
    }


async def _timed(
    args: argparse.Namespace, units: Callable[[Any], int], fn: Callable[[], Any]
) -> tuple[Any, dict[str, Any]]:
    """``await fn()`` measured: ``units(its value)`` per second of wall time,
    client CPU per unit, server CPU; under cProfile with ``--profile``."""
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
    value = await fn()
    if profiler is not None:
        profiler.disable()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    srv1 = _proc_cpu(args.server_pid)
    if profiler is not None:
        profiler.dump_stats(args.profile)
    n = units(value)
    return value, {
        "units": n,
        "wall_s": wall,
        "rate": n / wall,
        "cpu_s": cpu,
        "cpu_us": cpu / (n or 1) * 1e6,  # no division by zero when all failed
        "server_cpu_s": None if srv0 is None or srv1 is None else srv1 - srv0,
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, with every run and their totals (over all
    runs: enough /proc ticks for the server's CPU)."""
    result = dict(sorted(runs, key=lambda r: r["rate"])[len(runs) // 2])
    srv = [r["server_cpu_s"] for r in runs]
    result["runs"] = runs
    result["server_cpu_total_s"] = None if None in srv else sum(srv)
    result["units_total"] = sum(r["units"] for r in runs)
    result["wall_total_s"] = sum(r["wall_s"] for r in runs)
    return result


class _Tally:
    """What one phase got: a tp phase, a stream round or a batch."""

    def __init__(self, remaining: int = 0) -> None:
        self.remaining = remaining  # tp: requests left to send
        self.ok = self.chunks = self.usage = 0
        self.failures: Counter[str] = Counter()  # by exception chain
        self.first_error: str | None = None
        self.latencies: list[float] = []
        self.versions: Counter[str] = Counter()
        self.last_text = ""

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

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

    async def worker(self, request: Callable[[], Any], complete: Any) -> None:
        perf = time.perf_counter
        lat = self.latencies
        while self.remaining > 0:
            self.remaining -= 1
            t0 = perf()
            try:
                self.last_text = await complete(request())
            except Exception as exc:
                self.fail(exc)
            lat.append(perf() - t0)

    async def stream(self, one: Any, headers: dict[str, str]) -> None:
        try:
            chunks, usage = await one(headers)
        except Exception as exc:
            self.fail(exc)
        else:
            self.chunks += chunks
            self.usage += usage


def _spawner(backend: str) -> Callable[..., Awaitable[None]]:
    """``spawn(k, fn, *args)``: run ``k`` tasks of ``fn(*args)`` to the end."""
    if backend == "trio":
        import trio

        async def spawn_trio(k: int, fn: Any, *args: Any) -> None:
            async with trio.open_nursery() as nursery:
                for _ in range(k):
                    nursery.start_soon(fn, *args)

        return spawn_trio

    async def spawn(k: int, fn: Any, *args: Any) -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(k):
                tg.create_task(fn(*args))

    return spawn


# ---------------------------------------------------------------- workloads


async def _tp(args: argparse.Namespace, client: Client, spawn: Any) -> dict[str, Any]:
    async def phase(n: int) -> _Tally:
        tally = _Tally(n)
        await spawn(args.concurrency, tally.worker, client.request, client.complete)
        return tally

    warm = await phase(args.warmup)
    if warm.errors:
        raise RuntimeError(f"warm-up failed: {warm.first_error}")
    runs = []
    for _ in range(args.repeat):
        tally, m = await _timed(args, lambda _: args.n, lambda: phase(args.n))
        m.update(_latency(tally.latencies), errors=tally.errors)
        runs.append({**m, "first_error": tally.first_error, "reply": tally.last_text})
    result = _median(runs)
    result["errors"] = sum(r["errors"] for r in runs)
    return result


async def _stream(
    args: argparse.Namespace, client: Client, spawn: Any
) -> dict[str, Any]:
    assert client.stream is not None
    expected = args.streams * args.chunks
    warm_headers: dict[str, str] = {}
    warm_expected = expected
    if args.warmup_chunks is not None and args.client in _SLOW:
        warm_headers = {"x-stream-chunks": str(args.warmup_chunks)}
        warm_expected = args.streams * args.warmup_chunks

    async def round_(headers: dict[str, str]) -> _Tally:
        tally = _Tally()
        await spawn(args.streams, tally.stream, client.stream, headers)
        return tally

    rounds: list[tuple[_Tally, int]] = []  # (round, content chunks expected)
    for _ in range(args.warmup):
        tally = await round_(warm_headers)
        if tally.errors:
            raise RuntimeError(f"warm-up failed: {tally.first_error}")
        rounds.append((tally, warm_expected))
    runs = []
    for _ in range(args.repeat):
        tally, m = await _timed(args, lambda t: t.chunks, lambda: round_({}))
        runs.append(m)
        rounds.append((tally, expected))
    result = _median(runs)
    result["rounds"] = len(rounds)
    result["rounds_ok"] = sum(
        1
        for t, want in rounds
        if not t.errors and t.chunks == want and t.usage == args.streams
    )
    result["chunks_seen"] = [t.chunks for t, _ in rounds]
    result["chunks_expected"] = [want for _, want in rounds]
    result["usage_seen"] = [t.usage for t, _ in rounds]
    result["errors"] = sum(t.errors for t, _ in rounds)
    result["first_error"] = next((t.first_error for t, _ in rounds if t.errors), None)
    return result


def _server_stats(url: str) -> dict[str, int]:
    """The fast server's counters (``GET /__stats`` over HTTP/1.1, blocking)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", "/__stats")
        stats: dict[str, int] = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return stats


async def _batch(
    args: argparse.Namespace, client: Client, _spawn: Any
) -> dict[str, Any]:
    latencies: list[float] = []
    run = client.batch
    if run is None:
        sem = asyncio.Semaphore(args.concurrency)
        complete, perf = client.complete, time.perf_counter

        async def call(req: Any) -> str:
            async with sem:
                t0 = perf()
                text = await complete(req)
                latencies.append(perf() - t0)
                return text

        async def gather(reqs: list[Any]) -> list[Any]:
            latencies.clear()
            return await asyncio.gather(*map(call, reqs), return_exceptions=True)

        run = gather

    def digest(results: Any, n: int) -> _Tally:
        if len(results) != n:
            raise RuntimeError(f"{len(results)} results for {n} requests")
        out = _Tally()
        for r in results:
            if isinstance(r, BaseException):
                out.fail(r)
                continue
            text = r if isinstance(r, str) else r.first_text()
            if text != REPLY:
                out.fail(RuntimeError(f"wrong reply {text!r}"[:200]))
                continue
            out.ok += 1
            stats = getattr(r, "stats", None)  # an ailib_sc response's
            if stats is not None:
                out.versions[stats.http_version] += 1
                out.latencies.append(stats.latency)
        if client.batch is None:
            out.versions[client.http_version()] = out.ok
            out.latencies = list(latencies)
        return out

    if args.warmup:
        warm = digest(
            await run([client.request() for _ in range(args.warmup)]), args.warmup
        )
        if warm.ok == 0:
            raise RuntimeError(f"warm-up failed: {warm.first_error}")
    runs = []
    for _ in range(args.repeat):
        reqs = [client.request() for _ in range(args.n)]
        stats0 = _server_stats(args.url) if args.stats else None
        results, m = await _timed(args, lambda _: args.n, partial(run, reqs))
        out = digest(results, args.n)
        st = getattr(results, "statistics", None)  # ailib_sc's BatchResults
        if st is not None:
            m.update(attempts=st.attempts, retries=st.retries)
        del results, reqs
        if stats0 is not None:
            stats1 = _server_stats(args.url)
            m["server"] = {k: stats1[k] - stats0[k] for k in stats1}
        m.update(
            _latency(out.latencies),
            ok=out.ok,
            failures=out.errors,
            failure_types=dict(out.failures),
            first_error=out.first_error,
            http_versions=dict(out.versions),
        )
        runs.append(m)
    result = _median(runs)
    versions = Counter[str]()
    for r in runs:
        versions.update(r["http_versions"])
    result["http_version"] = "/".join(sorted(versions)) or "?"
    return result


_MODES = {"tp": _tp, "stream": _stream, "batch": _batch}
_WARMUP = {"tp": 200, "stream": 1, "batch": 512}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("mode", choices=sorted(_MODES))
    add("--client", choices=sorted(_CLIENTS), required=True)
    add("--backend", choices=("asyncio", "trio"), default="asyncio")
    add("--http", type=int, choices=(1, 2), default=1)
    add("--url", required=True, help="the server's base URL (loopback)")
    add("--server-pid", type=int, default=None, help="read its CPU from /proc")
    add("--profile", default=None, metavar="FILE", help="write cProfile stats here")
    add("--repeat", type=int, default=3, help="measured runs; the median is reported")
    add("--warmup", type=int, help="tp, batch: requests (200, 512); stream: rounds (1)")
    add("--n", type=int, default=2000, help="tp, batch: requests per measured run")
    add("--concurrency", type=int, default=64, help="tp, batch")
    add("--streams", type=int, default=1, help="stream: concurrent streams")
    add("--chunks", type=int, default=100, help="stream: content chunks per stream")
    add("--warmup-chunks", type=int, help="stream: per warm-up stream, slow clients")
    add("--stats", action="store_true", help="batch: read _fastserver.py's counters")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = _WARMUP[args.mode]
    if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error("--url must be a loopback http:// URL")
    if args.backend == "trio" and args.client != "ailib":
        parser.error("only --client ailib runs on trio")
    if args.http == 2 and args.client in _H1_ONLY:
        parser.error(f"--client {args.client} speaks HTTP/1.1 only: use --http 1")
    if args.client.startswith("httpcore") and args.mode != "tp":
        parser.error(f"--client {args.client} runs in tp mode only")
    if args.client == "raw" and args.mode == "batch":
        parser.error("--client raw has no batch mode")

    async def go() -> dict[str, Any]:
        async with _CLIENTS[args.client](args) as client:
            client.http_version = client.http_version or (lambda: _HTTP[args.http])
            result = await _MODES[args.mode](args, client, _spawner(args.backend))
            result.setdefault("http_version", client.http_version())
            result.update(client.info())
            return result

    if args.backend == "trio":
        import trio

        result = trio.run(go)
    else:
        result = asyncio.run(go())
    result.update(mode=args.mode, client=args.client, backend=args.backend)
    result["http"] = args.http
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
