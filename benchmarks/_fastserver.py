"""A minimal, fast loopback server for the throughput benchmark.

``python benchmarks/_fastserver.py --port 0`` prints its base URL
(``http://127.0.0.1:PORT/v1``) as the first stdout line and serves until SIGINT or
SIGTERM. Every request, whatever its method or path, gets the same precomputed
``200`` chat completion (OpenAI's reference example, see ``_payloads.py``).

It exists because a benchmark of client speed needs a server that is not the
bottleneck: the HTTP/1.1 side is a raw asyncio ``Protocol`` that finds the end
of each request with two ``find`` calls and writes a prebuilt response (pipelined
requests are answered in one write); the HTTP/2 side (cleartext, prior
knowledge, chosen by the connection preface) uses the ``h2`` state machine with
header validation off. No parsing beyond what framing needs.

Streaming (``bench_stream.py``): a request whose JSON body has ``"stream": true``
gets ``--stream-chunks`` content chunks (default 100; an ``x-stream-chunks: N``
request header overrides it, for short warm-ups) as Server-Sent Events in
OpenAI's ``chat.completion.chunk`` shape: a role chunk, the content chunks, a
finish chunk, a usage chunk (only if ``stream_options.include_usage`` is true),
then ``data: [DONE]``. The events are rendered once per server. Every event is
its own HTTP/1.1 chunk (the whole chunked body goes out in one write) or its own
HTTP/2 DATA frame; those DATA frames are framed here, not by ``h2``, and written
in as few socket writes as the peer's flow-control windows allow (``h2``'s window
bookkeeping is charged for them, and the last event, ``[DONE]``, goes through
``h2`` to end the stream). Only requests that carry ``"stream"`` somewhere in
their body are parsed (``json``); all others get the chat completion as before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _payloads import CHUNK_BODY, RESPONSE_BODY

__all__ = ["main"]

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_MAX_CONCURRENT_STREAMS = 100

_H1_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: application/json\r\n"
    b"openai-version: 2020-10-01\r\n"
    b"openai-processing-ms: 0\r\n"
    b"x-request-id: req_0123456789abcdef0123456789abcdef\r\n"
    b"content-length: " + str(len(RESPONSE_BODY)).encode() + b"\r\n"
    b"\r\n" + RESPONSE_BODY
)
_H2_HEADERS = [
    (b":status", b"200"),
    (b"content-type", b"application/json"),
    (b"openai-version", b"2020-10-01"),
    (b"openai-processing-ms", b"0"),
    (b"x-request-id", b"req_0123456789abcdef0123456789abcdef"),
    (b"content-length", str(len(RESPONSE_BODY)).encode()),
]
_H2_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_inbound_headers=False,
    validate_outbound_headers=False,
    normalize_inbound_headers=False,
    normalize_outbound_headers=False,
)


# ---------------------------------------------------------------- streaming

_STREAM_CHUNKS = 100  # content chunks per streamed reply; set by --stream-chunks
_DONE_EVENT = b"data: [DONE]\n\n"
# One chunk as OpenAI streams it with include_usage: every chunk carries
# "usage":null, the last one (no choices) the usage.
_CHUNK_HEAD = CHUNK_BODY.split(b'"choices":', 1)[0].replace(
    b'"model":"gpt-4o-mini",',
    b'"model":"gpt-4o-mini","service_tier":"default",'
    b'"system_fingerprint":"fp_44709d6fcb",',
)
# The reference example's usage object.
_USAGE_JSON = RESPONSE_BODY.split(b'"usage":', 1)[1].rsplit(b',"service_tier"')[0]


_TOKENS = [
    b"Hello",
    b"!",
    b" How",
    b" can",
    b" I",
    b" assist",
    b" you",
    b" today",
    b"?",
]


def _chunk_event(choices: bytes, include_usage: bool, usage: bytes = b"null") -> bytes:
    tail = b',"usage":' + usage + b"}" if include_usage else b"}"
    return b"data: " + _CHUNK_HEAD + b'"choices":' + choices + tail + b"\n\n"


def _choice(delta: bytes, finish: bytes = b"null") -> bytes:
    return (
        b'[{"index":0,"delta":'
        + delta
        + b',"logprobs":null,"finish_reason":'
        + finish
        + b"}]"
    )


def _stream_events(include_usage: bool, chunks: int) -> list[bytes]:
    """Every event of one streamed reply, ``[DONE]`` last."""
    # The reference reply's tokens, over and over (some clients, litellm among
    # them, fail a stream that repeats one chunk many times).
    contents = [
        _chunk_event(_choice(b'{"content":"' + token + b'"}'), include_usage)
        for token in _TOKENS
    ]
    events = [
        _chunk_event(
            _choice(b'{"role":"assistant","content":"","refusal":null}'),
            include_usage,
        ),
        *[contents[i % len(contents)] for i in range(chunks)],
        _chunk_event(_choice(b"{}", b'"stop"'), include_usage),
    ]
    if include_usage:
        events.append(_chunk_event(b"[]", True, _USAGE_JSON))
    events.append(_DONE_EVENT)
    return events


def _wants_stream(body: bytes) -> tuple[bool, bool]:
    """``(stream, include_usage)`` of a request body."""
    if b'"stream"' not in body:
        return False, False
    try:
        req = json.loads(body)
    except ValueError:
        return False, False
    if not isinstance(req, dict) or req.get("stream") is not True:
        return False, False
    options = req.get("stream_options")
    return True, isinstance(options, dict) and options.get("include_usage") is True


_H1_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"openai-version: 2020-10-01\r\n"
    b"openai-processing-ms: 0\r\n"
    b"x-request-id: req_0123456789abcdef0123456789abcdef\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)
_H2_STREAM_HEADERS = [
    (b":status", b"200"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"openai-version", b"2020-10-01"),
    (b"openai-processing-ms", b"0"),
    (b"x-request-id", b"req_0123456789abcdef0123456789abcdef"),
]
# (include_usage, chunks) -> the whole HTTP/1.1 response / the HTTP/2 DATA payloads
_h1_streams: dict[tuple[bool, int], bytes] = {}
_h2_events: dict[tuple[bool, int], list[bytes]] = {}


def _chunk_count(value: bytes | None) -> int:
    """The ``x-stream-chunks`` header's value, or the server's default."""
    if value:
        try:
            return max(0, min(int(value), 10_000_000))
        except ValueError:
            pass
    return _STREAM_CHUNKS


def _h1_stream(include_usage: bool, chunks: int) -> bytes:
    """The whole HTTP/1.1 response: one chunk per event."""
    resp = _h1_streams.get((include_usage, chunks))
    if resp is None:
        parts = [_H1_STREAM_HEAD]
        for ev in _stream_events(include_usage, chunks):
            parts += [b"%x\r\n" % len(ev), ev, b"\r\n"]
        parts.append(b"0\r\n\r\n")
        resp = _h1_streams[include_usage, chunks] = b"".join(parts)
    return resp


class _H2Out:
    """The DATA frames of one streamed reply not yet sent (``[DONE]`` aside)."""

    __slots__ = ("frames", "next", "sizes")

    def __init__(self, sid: int, include_usage: bool, chunks: int) -> None:
        key = (include_usage, chunks)
        events = _h2_events.get(key)
        if events is None:
            events = _h2_events[key] = _stream_events(include_usage, chunks)[:-1]
        sid_bytes = sid.to_bytes(4, "big")
        frames: dict[bytes, bytes] = {}  # most events are the same bytes
        for ev in events:
            if ev not in frames:
                frames[ev] = len(ev).to_bytes(3, "big") + b"\x00\x00" + sid_bytes + ev
        self.frames = [frames[ev] for ev in events]
        self.sizes = [len(ev) for ev in events]
        self.next = 0


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 until it sends the HTTP/2 preface."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.mode: str | None = None
        self.h2: h2.connection.H2Connection | None = None
        self.blocked: dict[int, bytes] = {}  # stream id -> body waiting for window
        self.bodies: dict[int, list[bytes]] = {}  # stream id -> request body so far
        self.headers: dict[int, list] = {}  # stream id -> request headers
        self.streaming: dict[int, _H2Out] = {}  # stream id -> reply being sent

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.mode == "h1":
            self._h1(data)
        elif self.mode == "h2":
            self._h2(data)
        else:
            buf = self.buf + data
            if len(buf) < len(_PREFACE) and _PREFACE.startswith(buf):
                self.buf = buf
                return
            self.buf = b""
            if buf.startswith(_PREFACE):
                self.mode = "h2"
                conn = self.h2 = h2.connection.H2Connection(config=_H2_CONFIG)
                conn.initiate_connection()
                conn.update_settings(
                    {
                        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: (
                            _MAX_CONCURRENT_STREAMS
                        )
                    }
                )
                self._h2(buf)
            else:
                self.mode = "h1"
                self._h1(buf)

    # ------------------------------------------------------------ HTTP/1.1

    def _h1(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos = 0
        n = 0
        end = len(buf)
        out: list[bytes] = []
        while True:
            head_end = buf.find(b"\r\n\r\n", pos)
            if head_end < 0:
                break
            head = buf[pos:head_end].lower()
            i = head.find(b"\r\ncontent-length:")
            length = 0
            if i >= 0:
                j = head.find(b"\r\n", i + 17)
                length = int(head[i + 17 : j if j >= 0 else len(head)])
            req_end = head_end + 4 + length
            if req_end > end:
                break
            stream = include_usage = False
            if buf.find(b'"stream"', head_end + 4, req_end) >= 0:
                stream, include_usage = _wants_stream(buf[head_end + 4 : req_end])
            pos = req_end
            if stream:
                if n:
                    out.append(_H1_RESPONSE * n)
                    n = 0
                i = head.find(b"\r\nx-stream-chunks:")
                value = None
                if i >= 0:
                    j = head.find(b"\r\n", i + 18)
                    value = head[i + 18 : j if j >= 0 else len(head)].strip()
                out.append(_h1_stream(include_usage, _chunk_count(value)))
            else:
                n += 1
        self.buf = buf[pos:]
        if n:
            out.append(_H1_RESPONSE * n)
        if out and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])

    # ------------------------------------------------------------ HTTP/2

    def _h2(self, data: bytes) -> None:
        conn = self.h2
        assert conn is not None
        try:
            events = conn.receive_data(data)
        except Exception:  # a protocol error: drop the connection
            if self.transport is not None:
                self.transport.close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.headers[ev.stream_id] = ev.headers
            elif isinstance(ev, h2.events.DataReceived):
                if ev.flow_controlled_length:
                    conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id
                    )
                self.bodies.setdefault(ev.stream_id, []).append(ev.data)
            elif isinstance(ev, h2.events.StreamEnded):
                body = b"".join(self.bodies.pop(ev.stream_id, ()))
                headers = self.headers.pop(ev.stream_id, ())
                stream, include_usage = _wants_stream(body)
                if stream:
                    value = next(
                        (v for k, v in headers if k.lower() == b"x-stream-chunks"),
                        None,
                    )
                    self._respond_stream(
                        conn, ev.stream_id, include_usage, _chunk_count(value)
                    )
                else:
                    self._respond(conn, ev.stream_id)
            elif isinstance(
                ev, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged
            ):
                for sid in list(self.blocked):
                    if conn.local_flow_control_window(sid) >= len(RESPONSE_BODY):
                        del self.blocked[sid]
                        conn.send_data(sid, RESPONSE_BODY, end_stream=True)
                for sid in list(self.streaming):
                    self._pump(conn, sid)
            elif isinstance(ev, h2.events.StreamReset):
                self.blocked.pop(ev.stream_id, None)
                self.bodies.pop(ev.stream_id, None)
                self.headers.pop(ev.stream_id, None)
                self.streaming.pop(ev.stream_id, None)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                if self.transport is not None:
                    self.transport.write(conn.data_to_send())
                    self.transport.close()
                return
        out = conn.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)

    def _respond(self, conn: h2.connection.H2Connection, sid: int) -> None:
        conn.send_headers(sid, _H2_HEADERS)
        if conn.local_flow_control_window(sid) >= len(RESPONSE_BODY):
            conn.send_data(sid, RESPONSE_BODY, end_stream=True)
        else:
            self.blocked[sid] = RESPONSE_BODY

    def _respond_stream(
        self,
        conn: h2.connection.H2Connection,
        sid: int,
        include_usage: bool,
        chunks: int,
    ) -> None:
        conn.send_headers(sid, _H2_STREAM_HEADERS)
        self.streaming[sid] = _H2Out(sid, include_usage, chunks)
        self._pump(conn, sid)

    def _pump(self, conn: h2.connection.H2Connection, sid: int) -> None:
        """Send as many of stream ``sid``'s DATA frames as the windows allow."""
        out = self.streaming[sid]
        window = conn.local_flow_control_window(sid)
        sizes = out.sizes
        start = i = out.next
        end = len(sizes)
        sent = 0
        while i < end and sent + sizes[i] <= window:
            sent += sizes[i]
            i += 1
        if i > start:
            out.next = i
            # Frames h2 queued before (HEADERS first) go out first.
            chunk = b"".join(out.frames[start:i])
            if self.transport is not None:
                self.transport.write(conn.data_to_send() + chunk)
            # Charge h2's bookkeeping of the peer's windows for what we sent.
            conn.outbound_flow_control_window -= sent
            conn.streams[sid].outbound_flow_control_window -= sent
        if i == end and conn.local_flow_control_window(sid) >= len(_DONE_EVENT):
            del self.streaming[sid]
            conn.send_data(sid, _DONE_EVENT, end_stream=True)


async def _serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"http://{host}:{bound}/v1", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; return the exit status."""
    global _STREAM_CHUNKS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--stream-chunks",
        type=int,
        default=_STREAM_CHUNKS,
        metavar="N",
        help="content chunks per streamed reply (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    _STREAM_CHUNKS = args.stream_chunks
    asyncio.run(_serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
