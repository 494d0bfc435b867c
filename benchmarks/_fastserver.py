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

Faults (``bench_batch.py``), all off by default:

- ``--goaway-after N``: the Nth stream opened on an HTTP/2 connection makes the
  server send a graceful GOAWAY(NO_ERROR) naming that stream as the last one it
  will process. The frame is framed here (``h2`` would refuse to send anything
  after a GOAWAY of its own) and goes out ahead of every reply not yet written,
  like a server that decides to go away while requests are in flight. Streams up
  to that one are answered; streams above it (the client opened them before it
  saw the GOAWAY) are ignored: never answered or counted, their DATA still
  acknowledged. Once no stream up to the last one is left, the server shuts its
  side of the connection (``write_eof``), drops whatever else arrives and closes
  when the client does (or after 5 s): a lingering close, so no TCP reset
  destroys replies the client has not read yet.
- ``--close-every N``: every Nth HTTP/1.1 reply the server sends, counted over
  all connections, carries ``connection: close``; requests already pipelined
  behind it on that connection are dropped unanswered, and the connection is
  closed the same lingering way.
- ``--count-ids``: count every request answered ("processed") per
  ``x-client-request-id`` header, and answer ``GET /__stats`` (HTTP/1.1, not
  counted) with a JSON object: ``processed``, ``with_id``, ``distinct_ids``,
  ``duplicates`` (answers beyond the first per id: a request processed twice),
  ``goaways``, ``ignored_streams`` and ``closes``.
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

# Headers as OpenAI sends them; HTTP/1.1 heads are rendered from the same list.
_OPENAI_HEADERS = [
    (b"openai-version", b"2020-10-01"),
    (b"openai-processing-ms", b"0"),
    (b"x-request-id", b"req_0123456789abcdef0123456789abcdef"),
]
_H2_HEADERS = [
    (b":status", b"200"),
    (b"content-type", b"application/json"),
    *_OPENAI_HEADERS,
    (b"content-length", str(len(RESPONSE_BODY)).encode()),
]


def _h1_head(h2_headers: list[tuple[bytes, bytes]]) -> bytes:
    """An HTTP/1.1 response head with the headers of an HTTP/2 one."""
    lines = [b"HTTP/1.1 200 OK", *(k + b": " + v for k, v in h2_headers[1:])]
    return b"\r\n".join(lines) + b"\r\n\r\n"


_H1_RESPONSE = _h1_head(_H2_HEADERS) + RESPONSE_BODY
_H2_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_inbound_headers=False,
    validate_outbound_headers=False,
    normalize_inbound_headers=False,
    normalize_outbound_headers=False,
)


# ---------------------------------------------------------------- faults

_GOAWAY_AFTER: int | None = None  # set by --goaway-after
_CLOSE_EVERY: int | None = None  # set by --close-every
_COUNT_IDS = False  # set by --count-ids
_LINGER = 5.0  # seconds a connection we close waits for the client to hang up
# GOAWAY frame header: length 8, type 0x7, no flags, stream 0.
_GOAWAY_HEADER = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"
_H1_CLOSE_RESPONSE = _H1_RESPONSE.replace(
    b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1
)


class _Stats:
    """What ``GET /__stats`` reports (``--count-ids``) and the fault counters."""

    def __init__(self) -> None:
        self.processed = 0  # requests answered
        self.with_id = 0  # of which with an x-client-request-id
        self.goaways = 0
        self.ignored_streams = 0
        self.closes = 0
        self.h1_replies = 0  # for --close-every
        self.ids: dict[bytes, int] = {}

    def count(self, rid: bytes | None) -> None:
        self.processed += 1
        if rid is not None:
            self.with_id += 1
            ids = self.ids
            ids[rid] = ids.get(rid, 0) + 1

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "processed": self.processed,
                "with_id": self.with_id,
                "distinct_ids": len(self.ids),
                "duplicates": self.with_id - len(self.ids),
                "goaways": self.goaways,
                "ignored_streams": self.ignored_streams,
                "closes": self.closes,
            }
        ).encode()


_STATS = _Stats()


def _h1_stats_response() -> bytes:
    body = _STATS.to_json()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def _header_value(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower case, with the colon) in a lowercased
    HTTP/1.1 request head, or None."""
    i = head.find(b"\r\n" + name)
    if i < 0:
        return None
    i += 2 + len(name)
    j = head.find(b"\r\n", i)
    return head[i : j if j >= 0 else len(head)].strip()


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


_H2_STREAM_HEADERS = [
    (b":status", b"200"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    *_OPENAI_HEADERS,
]
_H1_STREAM_HEAD = _h1_head([*_H2_STREAM_HEADERS, (b"transfer-encoding", b"chunked")])
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
        self.streams_opened = 0  # for --goaway-after
        self.last_sid: int | None = None  # set once our GOAWAY is sent
        self.goaway_frame = b""  # our GOAWAY, until it is written
        self.closing = False  # our side is shut: drop whatever arrives

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
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
        if _CLOSE_EVERY is not None or _COUNT_IDS:
            self._h1_faults(data)
            return
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

    def _h1_faults(self, data: bytes) -> None:
        """`_h1` with --close-every / --count-ids: one reply at a time, counted
        (non-streamed replies only; streamed requests are not supported here)."""
        buf = self.buf + data if self.buf else data
        pos = 0
        out: list[bytes] = []
        close = False
        while not close:
            head_end = buf.find(b"\r\n\r\n", pos)
            if head_end < 0:
                break
            head = buf[pos:head_end].lower()
            value = _header_value(head, b"content-length:")
            req_end = head_end + 4 + (int(value) if value else 0)
            if req_end > len(buf):
                break
            pos = req_end
            if head.startswith(b"get /__stats"):
                out.append(_h1_stats_response())
                continue
            _STATS.count(_header_value(head, b"x-client-request-id:"))
            _STATS.h1_replies += 1
            if _CLOSE_EVERY and _STATS.h1_replies % _CLOSE_EVERY == 0:
                close = True
                _STATS.closes += 1
                out.append(_H1_CLOSE_RESPONSE)
            else:
                out.append(_H1_RESPONSE)
        self.buf = buf[pos:]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        if close:
            self._linger_close()

    def _linger_close(self) -> None:
        """Shut our side after what is written; close when the client does."""
        transport = self.transport
        if transport is None or self.closing:
            return
        self.closing = True
        self.buf = b""
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(_LINGER, transport.close)
        else:
            transport.close()

    def eof_received(self) -> bool | None:
        return None  # the client is done: close

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
        last = self.last_sid
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                if last is not None and ev.stream_id > last:
                    _STATS.ignored_streams += 1  # opened after our GOAWAY
                    continue
                self.headers[ev.stream_id] = ev.headers
                self.streams_opened += 1
                if self.streams_opened == _GOAWAY_AFTER:
                    last = self.last_sid = ev.stream_id
                    _STATS.goaways += 1
                    self.goaway_frame = (
                        _GOAWAY_HEADER + ev.stream_id.to_bytes(4, "big") + bytes(4)
                    )
            elif isinstance(ev, h2.events.DataReceived):
                if ev.flow_controlled_length:
                    conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id
                    )
                if last is not None and ev.stream_id > last:
                    continue
                self.bodies.setdefault(ev.stream_id, []).append(ev.data)
            elif isinstance(ev, h2.events.StreamEnded):
                if last is not None and ev.stream_id > last:
                    continue
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
                    if _COUNT_IDS:
                        _STATS.count(
                            next(
                                (
                                    v
                                    for k, v in headers
                                    if k.lower() == b"x-client-request-id"
                                ),
                                None,
                            )
                        )
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
        if self.last_sid is not None:
            self._h2_draining(out)
            return
        if out and self.transport is not None:
            self.transport.write(out)

    def _h2_draining(self, out: bytes) -> None:
        """After our GOAWAY: write it ahead of the replies not yet written; once
        every stream up to the last one is answered, close (lingering)."""
        if self.goaway_frame:
            out, self.goaway_frame = self.goaway_frame + out, b""
        if out and self.transport is not None:
            self.transport.write(out)
        if not (self.headers or self.blocked or self.streaming):
            self._linger_close()

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
    global _STREAM_CHUNKS, _GOAWAY_AFTER, _CLOSE_EVERY, _COUNT_IDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=0)
    add(
        "--stream-chunks",
        type=int,
        default=_STREAM_CHUNKS,
        metavar="N",
        help="content chunks per streamed reply (default: %(default)s)",
    )
    add(
        "--goaway-after",
        type=int,
        metavar="N",
        help="HTTP/2: graceful GOAWAY after the Nth stream of each connection",
    )
    add(
        "--close-every",
        type=int,
        metavar="N",
        help="HTTP/1.1: `connection: close` on every Nth reply (all connections)",
    )
    add(
        "--count-ids",
        action="store_true",
        help="count answers per x-client-request-id; serve GET /__stats",
    )
    args = parser.parse_args(argv)
    _STREAM_CHUNKS = args.stream_chunks
    _GOAWAY_AFTER = args.goaway_after
    _CLOSE_EVERY = args.close_every
    _COUNT_IDS = args.count_ids
    asyncio.run(_serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
