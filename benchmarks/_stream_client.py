"""One streaming run of one client configuration, in a process of its own.

``python benchmarks/_stream_client.py --client ailib --backend asyncio --http 2
--url http://127.0.0.1:PORT/v1 --streams 64 --chunks 500``

``--streams`` tasks each open one streamed chat completion (``"stream": true``,
``stream_options.include_usage``) at the same time and read it to the end,
touching every chunk's ``choices[0].delta.content``. A run is one such round;
``--warmup`` unmeasured rounds come first (every connection gets opened), then
``--repeat`` measured ones. With ``--warmup-chunks N`` the openai and litellm
clients ask for N chunks per warm-up stream (``x-stream-chunks`` header, which
``_fastserver.py`` honours), so that a slow client's warm-up stays short. The last stdout line is a JSON object describing the
run with the median chunks/s: chunks/s over wall time, client CPU seconds
(``time.process_time``) and µs per chunk, server CPU seconds (from
``/proc/<server-pid>/stat``, when ``--server-pid`` is given), errors, and the
correctness check over every round (warm-up included): content chunks received
vs ``--streams`` x ``--chunks``, and streams that ended with a usage chunk.

"Chunks" are content chunks (a non-empty ``delta.content``); the role, finish
and usage chunks of each stream are read but not counted.

Clients:
    ailib    ailib_sc.AiClient.chat_completion_stream (asyncio or trio)
    openai   openai.AsyncOpenAI(max_retries=0), ``stream=True`` (asyncio)
    litellm  litellm.acompletion(stream=True) (asyncio; if installed)
    raw      a bare asyncio Protocol per stream (HTTP/1.1, connections reused)
             or one h2 connection (HTTP/2) that count content chunks in the raw
             bytes: the cheapest client we can write, used to measure how fast
             the server streams
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from _client_common import (
    MODEL as _MODEL,
)
from _client_common import (
    base_parser,
    open_openai,
    run_client,
)
from _client_common import (
    proc_cpu as _proc_cpu,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    #: One stream, read to the end: (content chunks, 1 if it carried usage). The
    #: argument: extra request headers (only openai and litellm send them).
    OneStream = Callable[[dict[str, str]], Awaitable[tuple[int, int]]]

# What a content chunk looks like on the wire (the role chunk's delta starts with
# "role", the finish chunk's is empty): what the raw clients count.
_CONTENT_MARK = b'"delta":{"content":"'
_REQUEST_BODY = json.dumps(
    {
        "model": _MODEL,
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    },
    separators=(",", ":"),
).encode()


class _Round:
    """Chunks, usage chunks and errors of one round of streams."""

    def __init__(self) -> None:
        self.chunks = 0
        self.usage = 0
        self.errors = 0
        self.first_error: str | None = None

    async def stream(self, one: OneStream, headers: dict[str, str]) -> None:
        try:
            chunks, usage = await one(headers)
        except Exception as exc:
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"{type(exc).__name__}: {exc}"[:500]
        else:
            self.chunks += chunks
            self.usage += usage


# ---------------------------------------------------------------- clients


async def _ailib(args: argparse.Namespace, body: Callable[[OneStream], Any]) -> dict:
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
    versions: set[str] = set()
    async with AiClient(provider, options) as client:

        async def one(_headers: dict[str, str]) -> tuple[int, int]:
            req = ChatCompletionRequest(
                model=_MODEL, messages=[Message(role=Role.USER, content="Hello")]
            )
            n = usage = 0
            async with client.chat_completion_stream(req) as stream:
                async for chunk in stream:
                    if chunk.choices:
                        if chunk.choices[0].delta.content:
                            n += 1
                    elif chunk.usage is not None:
                        usage = 1
                versions.add(stream.http_version)
            return n, usage

        result = await body(one)
        result["http_version"] = "/".join(sorted(versions)) or "?"
        result["connections_opened"] = client.statistics().opened
        return result


async def _openai(args: argparse.Namespace, body: Callable[[OneStream], Any]) -> dict:
    client = open_openai(args)
    async with client:
        raw = await client.chat.completions.with_raw_response.create(
            model=_MODEL, messages=[{"role": "user", "content": "Hello"}]
        )
        version = raw.http_response.http_version

        async def one(headers: dict[str, str]) -> tuple[int, int]:
            stream = await client.chat.completions.create(
                model=_MODEL,
                messages=[{"role": "user", "content": "Hello"}],
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=headers or None,
            )
            n = usage = 0
            async with stream:
                async for chunk in stream:
                    if chunk.choices:
                        if chunk.choices[0].delta.content:
                            n += 1
                    elif chunk.usage is not None:
                        usage = 1
            return n, usage

        result = await body(one)
        result["http_version"] = version
        return result


async def _litellm(args: argparse.Namespace, body: Callable[[OneStream], Any]) -> dict:
    import litellm

    async def one(headers: dict[str, str]) -> tuple[int, int]:
        stream = await litellm.acompletion(
            model="openai/" + _MODEL,
            api_base=args.url,
            api_key="x",
            max_retries=0,
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=headers or None,
        )
        n = usage = 0
        async for chunk in stream:
            # litellm hands the usage on a chunk that may still carry an
            # (empty) choice.
            if chunk.choices and chunk.choices[0].delta.content:
                n += 1
            if getattr(chunk, "usage", None) is not None:
                usage = 1
        return n, usage

    result = await body(one)
    result["http_version"] = "HTTP/1.1"
    return result


async def _raw(args: argparse.Namespace, body: Callable[[OneStream], Any]) -> dict:
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path + "/chat/completions").encode()
    loop = asyncio.get_running_loop()
    mark = _CONTENT_MARK
    keep = len(mark) - 1  # bytes kept across reads so no mark is missed
    if args.http == 1:
        request = (
            b"POST " + path + b" HTTP/1.1\r\nhost: " + parts.netloc.encode() + b"\r\n"
            b"authorization: Bearer x\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(_REQUEST_BODY)).encode() + b"\r\n\r\n"
        ) + _REQUEST_BODY
        end_mark = b"\r\n0\r\n\r\n"  # the last chunk of a chunked body

        class H1(asyncio.Protocol):
            """Counts content marks until the chunked body ends (the server
            writes a whole streamed reply in one write, nothing after it)."""

            def __init__(self) -> None:
                self.tail = b""
                self.count = 0
                self.usage = 0
                self.waiter: asyncio.Future[tuple[int, int]] | None = None
                self.transport: asyncio.Transport | None = None

            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                buf = self.tail + data
                self.count += buf.count(mark)
                if b'"usage":{' in buf:
                    self.usage = 1
                self.tail = buf[-keep:]
                if buf.endswith(end_mark) and self.waiter is not None:
                    self.waiter.set_result((self.count, self.usage))
                    self.waiter = None

            def connection_lost(self, exc: Exception | None) -> None:
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_exception(ConnectionError("connection lost"))

            async def request(self) -> tuple[int, int]:
                self.tail, self.count, self.usage = b"", 0, 0
                self.waiter = loop.create_future()
                assert self.transport is not None
                self.transport.write(request)
                return await self.waiter

        free: list[H1] = []

        async def one(_headers: dict[str, str]) -> tuple[int, int]:
            conn = free.pop() if free else None
            if conn is None:
                _, conn = await loop.create_connection(H1, host, port)
            result = await conn.request()
            free.append(conn)
            return result

        result = await body(one)
        result["http_version"] = "HTTP/1.1"
        return result

    import h2.config
    import h2.connection
    import h2.events
    import h2.settings

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
            self.waiters: dict[int, asyncio.Future[tuple[int, int]]] = {}
            self.state: dict[int, list[Any]] = {}  # sid -> [tail, count, usage]
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            conn = self.conn
            conn.initiate_connection()
            conn.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24}
            )
            conn.increment_flow_control_window(1 << 28)
            transport.write(conn.data_to_send())

        def data_received(self, data: bytes) -> None:
            conn = self.conn
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.DataReceived):
                    st = self.state[ev.stream_id]
                    buf = st[0] + ev.data
                    st[1] += buf.count(mark)
                    if b'"usage":{' in buf:
                        st[2] = 1
                    st[0] = buf[-keep:]
                    conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id
                    )
                elif isinstance(ev, h2.events.StreamEnded):
                    st = self.state.pop(ev.stream_id)
                    self.waiters.pop(ev.stream_id).set_result((st[1], st[2]))
                elif isinstance(ev, h2.events.StreamReset):
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

        async def request(self, _headers: dict[str, str]) -> tuple[int, int]:
            conn = self.conn
            sid = conn.get_next_available_stream_id()
            fut = self.waiters[sid] = loop.create_future()
            self.state[sid] = [b"", 0, 0]
            conn.send_headers(
                sid,
                [
                    (b":method", b"POST"),
                    (b":authority", parts.netloc.encode()),
                    (b":scheme", b"http"),
                    (b":path", path),
                    (b"authorization", b"Bearer x"),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_REQUEST_BODY)).encode()),
                ],
            )
            conn.send_data(sid, _REQUEST_BODY, end_stream=True)
            assert self.transport is not None
            self.transport.write(conn.data_to_send())
            return await fut

    _, proto = await loop.create_connection(H2, host, port)
    result = await body(proto.request)
    result["http_version"] = "HTTP/2"
    return result


_CLIENTS = {"ailib": _ailib, "openai": _openai, "litellm": _litellm, "raw": _raw}

# ---------------------------------------------------------------- driver


def _make_body(args: argparse.Namespace) -> Callable[[OneStream], Any]:
    """The benchmark proper, given a client's ``one()``: warm up, then measure."""
    if args.backend == "trio":
        import trio

        async def spawn(one: OneStream, headers: dict[str, str]) -> _Round:
            rnd = _Round()
            async with trio.open_nursery() as nursery:
                for _ in range(args.streams):
                    nursery.start_soon(rnd.stream, one, headers)
            return rnd

    else:
        import asyncio

        async def spawn(one: OneStream, headers: dict[str, str]) -> _Round:
            rnd = _Round()
            async with asyncio.TaskGroup() as tg:
                for _ in range(args.streams):
                    tg.create_task(rnd.stream(one, headers))
            return rnd

    expected = args.streams * args.chunks

    async def measure(one: OneStream) -> tuple[dict[str, Any], _Round]:
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
        rnd = await spawn(one, {})
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        srv1 = _proc_cpu(args.server_pid)
        if profiler is not None:
            profiler.dump_stats(args.profile)
        chunks = rnd.chunks or 1  # no division by zero when everything failed
        return {
            "chunks": rnd.chunks,
            "wall_s": wall,
            "chunk_s": rnd.chunks / wall,
            "cpu_s": cpu,
            "cpu_us_per_chunk": cpu / chunks * 1e6,
            "server_cpu_s": None if srv0 is None or srv1 is None else srv1 - srv0,
        }, rnd

    warm_headers: dict[str, str] = {}
    warm_expected = expected
    if args.warmup_chunks is not None and args.client in ("openai", "litellm"):
        warm_headers = {"x-stream-chunks": str(args.warmup_chunks)}
        warm_expected = args.streams * args.warmup_chunks

    async def body(one: OneStream) -> dict[str, Any]:
        rounds: list[tuple[_Round, int]] = []  # (round, content chunks expected)
        for _ in range(args.warmup):
            rnd = await spawn(one, warm_headers)
            if rnd.errors:
                raise RuntimeError(f"warm-up failed: {rnd.first_error}")
            rounds.append((rnd, warm_expected))
        runs = []
        for _ in range(args.repeat):
            r, rnd = await measure(one)
            runs.append(r)
            rounds.append((rnd, expected))
        runs.sort(key=lambda r: r["chunk_s"])
        result = runs[len(runs) // 2]
        result["all_chunk_s"] = [r["chunk_s"] for r in runs]
        result["expected"] = expected
        result["streams"] = args.streams
        # Correctness over every round, warm-up included.
        result["rounds"] = len(rounds)
        result["rounds_ok"] = sum(
            1
            for rnd, want in rounds
            if not rnd.errors and rnd.chunks == want and rnd.usage == args.streams
        )
        result["chunks_seen"] = [rnd.chunks for rnd, _ in rounds]
        result["chunks_expected"] = [want for _, want in rounds]
        result["usage_seen"] = [rnd.usage for rnd, _ in rounds]
        result["errors"] = sum(rnd.errors for rnd, _ in rounds)
        result["first_error"] = next(
            (rnd.first_error for rnd, _ in rounds if rnd.first_error), None
        )
        # All measured rounds together: enough /proc ticks for the server's CPU.
        srv = [r["server_cpu_s"] for r in runs]
        result["server_cpu_total_s"] = None if None in srv else sum(srv)
        result["chunks_total"] = sum(r["chunks"] for r in runs)
        result["wall_total_s"] = sum(r["wall_s"] for r in runs)
        return result

    return body


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__, _CLIENTS)
    parser.add_argument("--streams", type=int, default=1, help="concurrent streams")
    parser.add_argument(
        "--chunks", type=int, required=True, help="content chunks the server sends"
    )
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds")
    parser.add_argument(
        "--warmup-chunks",
        type=int,
        default=None,
        help="chunks per warm-up stream (openai and litellm; x-stream-chunks)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="measured rounds; the median is reported"
    )
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--profile", default=None, help="write cProfile stats here")
    return run_client(parser, argv, _CLIENTS, _make_body)


if __name__ == "__main__":
    sys.exit(main())
