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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _payloads import RESPONSE_BODY

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


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 until it sends the HTTP/2 preface."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.mode: str | None = None
        self.h2: h2.connection.H2Connection | None = None
        self.blocked: dict[int, bytes] = {}  # stream id -> body waiting for window

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
            pos = req_end
            n += 1
        self.buf = buf[pos:]
        if n and self.transport is not None:
            self.transport.write(_H1_RESPONSE * n)

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
            if isinstance(ev, h2.events.DataReceived):
                if ev.flow_controlled_length:
                    conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id
                    )
            elif isinstance(ev, h2.events.StreamEnded):
                self._respond(conn, ev.stream_id)
            elif isinstance(ev, h2.events.WindowUpdated):
                for sid in list(self.blocked):
                    if conn.local_flow_control_window(sid) >= len(RESPONSE_BODY):
                        del self.blocked[sid]
                        conn.send_data(sid, RESPONSE_BODY, end_stream=True)
            elif isinstance(ev, h2.events.StreamReset):
                self.blocked.pop(ev.stream_id, None)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
