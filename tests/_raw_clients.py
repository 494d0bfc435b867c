"""Raw clients shared by the `FakeProviderServer` tests.

Hand-driven h11 and h2 connections over anyio sockets, httpcore pool setup,
request bodies, the splitting of raw Server-Sent Event bodies and the command
line server.  Nothing here sleeps: every wait is on bytes from the server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

import anyio
import h2.config
import h2.connection
import h2.events
import h11
import httpcore
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

from ailib_sc.testing import FakeProviderServer

ROOT = Path(__file__).resolve().parents[1]
CHAT_PATH = "/v1/chat/completions"
HELLO = "Hello! How can I assist you today?"
USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def chat_body(model: str = "gpt-4o-mini", **extra: Any) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    return json.dumps({**body, **extra}).encode()


def split_events(body: bytes) -> list[bytes]:
    """The Server-Sent Events of a whole raw body, each with its blank line."""
    return [e + b"\n\n" for e in body.split(b"\n\n")[:-1]]


# -- httpcore --------------------------------------------------------------------


def h1_pool(**kwargs: Any) -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(http1=True, http2=False, **kwargs)


def h2c_pool(**kwargs: Any) -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(http1=False, http2=True, **kwargs)


# -- sockets, h11 ----------------------------------------------------------------


async def connect(server: FakeProviderServer, alpn: str = "http/1.1") -> ByteStream:
    if server.ca_file is None:
        return await anyio.connect_tcp("127.0.0.1", server.port)
    context = server.client_ssl_context()
    context.set_alpn_protocols([alpn])
    return await anyio.connect_tcp(
        "localhost", server.port, ssl_context=context, tls_standard_compatible=False
    )


async def read_until_eof(
    stream: ByteStream, *, seconds: float = 5, broken_is_eof: bool = False
) -> bytes:
    """Everything the server sends until it closes (or, if told, resets)."""
    ends: tuple[type[Exception], ...] = (anyio.EndOfStream,)
    if broken_is_eof:
        ends += (anyio.BrokenResourceError,)
    chunks: list[bytes] = []
    with anyio.fail_after(seconds):
        while True:
            try:
                chunks.append(await stream.receive())
            except ends:
                return b"".join(chunks)


def h11_post(conn: h11.Connection, body: bytes, *headers: tuple[str, str]) -> bytes:
    """The bytes of a whole POST of `body` to the chat completions path."""
    request = h11.Request(
        method="POST",
        target=CHAT_PATH,
        headers=[
            ("host", "localhost"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            *headers,
        ],
    )
    data = conn.send(request) + conn.send(h11.Data(data=body))
    return data + conn.send(h11.EndOfMessage())


class RawStream:
    """A client on `stream`, closed forcefully when the block is left."""

    stream: ByteStream

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# -- h2 --------------------------------------------------------------------------


def h2_headers(method: str, path: str) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method.encode()),
        (b":path", path.encode()),
        (b":scheme", b"http"),
        (b":authority", b"localhost"),
    ]


class H2Client(RawStream):
    """A hand-driven h2 client; subclasses keep what arrives their own way.

    `_on_data` and `_on_reset` are the subclass's; `_feed` may be overridden to
    see the raw bytes before h2 does.
    """

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.headers: dict[int, dict[bytes, bytes]] = {}
        self.ended: set[int] = set()
        self.pings = 0
        self.closed = False

    @classmethod
    async def open(cls, server: FakeProviderServer) -> Self:
        client = cls(await connect(server, "h2"))
        client.conn.initiate_connection()
        await client.flush()
        return client

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.stream.send(data)

    async def ping(self) -> None:
        """Round-trip a PING: everything sent before it was read by the server,
        and everything the server sent before its ACK has arrived."""
        wanted = self.pings + 1
        self.conn.ping(b"%08d" % wanted)
        await self.flush()
        await self.until(lambda: self.pings >= wanted)

    def _feed(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            self._on_event(event)

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            self.headers[event.stream_id] = dict(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            self._on_data(event)
        elif isinstance(event, h2.events.StreamEnded):
            self.ended.add(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._on_reset(event)
        elif isinstance(event, h2.events.PingAckReceived):
            self.pings += 1
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True

    def _on_data(self, event: h2.events.DataReceived) -> None:
        raise NotImplementedError

    def _on_reset(self, event: h2.events.StreamReset) -> None:
        raise NotImplementedError

    async def _pump(self) -> None:
        try:
            data = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            self.closed = True
            return
        self._feed(data)
        if not self.closed:
            await self.flush()

    async def until(self, done: Callable[[], bool]) -> None:
        with anyio.fail_after(10):
            while not done():
                if self.closed:
                    raise AssertionError("the server closed the connection")
                await self._pump()

    async def until_closed(self) -> None:
        with anyio.fail_after(10):
            while not self.closed:
                await self._pump()


# -- the command line --------------------------------------------------------------


@asynccontextmanager
async def command_line_server(*options: str) -> AsyncIterator[str]:
    """Run ``python -m ailib_sc.testing`` with `options`; yield its base URL.

    On leaving, the server is terminated and must exit with status 0.
    """
    command = [sys.executable, "-m", "ailib_sc.testing", *options]
    with anyio.fail_after(30):
        async with await anyio.open_process(command, cwd=ROOT) as process:
            assert process.stdout is not None
            lines = BufferedByteReceiveStream(process.stdout)
            yield (await lines.receive_until(b"\n", 200)).decode()
            process.terminate()
            assert await process.wait() == 0
