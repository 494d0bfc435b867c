"""A scripted HTTP/2 server (h2c, prior knowledge) for transport tests.

Each accepted connection runs the test's handler with a :class:`PeerConn`: an
``h2`` server connection over the socket, plus raw-frame helpers for what ``h2``
would refuse to send (a malformed ``:status``, a malformed GOAWAY). Raw HEADERS
blocks are HPACK-encoded as never-indexed literals, so they don't disturb the
dynamic table ``h2``'s own encoder shares with the client.
"""

from __future__ import annotations

from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["PeerConn", "chat_json", "serve_h2", "sse_chunk"]


def chat_json(text: str) -> bytes:
    """A chat.completion body (shape from the OpenAI API reference)."""
    return (
        b'{"id":"chatcmpl-1","object":"chat.completion","created":1741569952,'
        b'"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant",'
        b'"content":"' + text.encode() + b'","refusal":null},"logprobs":null,'
        b'"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,'
        b'"total_tokens":2}}'
    )


def sse_chunk(delta: str) -> bytes:
    """One chat.completion.chunk SSE event carrying ``delta`` (a JSON object)."""
    return (
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741569952,'
        b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":' + delta.encode() + b","
        b'"logprobs":null,"finish_reason":null}]}\n\n'
    )


class PeerConn:
    """One server-side HTTP/2 connection driven by a test handler."""

    def __init__(self, stream: anyio.abc.ByteStream, settings: dict[int, int]) -> None:
        self.stream = stream
        cfg = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.local_settings = h2.settings.Settings(
            client=False, initial_values=settings
        )
        self._pending: deque[h2.events.Event] = deque()
        self.requests: dict[int, list[tuple[bytes, bytes]]] = {}
        self.bodies: dict[int, bytearray] = {}
        self.closed = False

    async def start(self, window: int | None = None) -> None:
        self.h2.initiate_connection()
        if window is not None:
            self.h2.increment_flow_control_window(window)
        await self.flush()

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            await self.stream.send(data)

    async def send_raw(self, data: bytes) -> None:
        await self.flush()
        await self.stream.send(data)

    async def _read(self) -> None:
        try:
            data = await self.stream.receive(65536)
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            self.closed = True
            raise
        for ev in self.h2.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                self.requests[ev.stream_id] = list(ev.headers)
                self.bodies[ev.stream_id] = bytearray()
            elif isinstance(ev, h2.events.DataReceived):
                self.bodies.setdefault(ev.stream_id, bytearray()).extend(ev.data)
                self.h2.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id
                )
            self._pending.append(ev)
        await self.flush()

    async def event(self, kind: type[Any]) -> Any:
        """The next event of class ``kind`` (earlier ones are dropped)."""
        while True:
            while self._pending:
                ev = self._pending.popleft()
                if isinstance(ev, kind):
                    return ev
            await self._read()

    async def request(self) -> int:
        """Wait for a complete request; return its stream id."""
        ev = await self.event(h2.events.StreamEnded)
        return int(ev.stream_id)

    async def respond(
        self, sid: int, body: bytes, status: int = 200, end: bool = True
    ) -> None:
        headers = [(b":status", str(status).encode())]
        headers.append((b"content-type", b"application/json"))
        self.h2.send_headers(sid, headers, end_stream=False)
        if body:
            self.h2.send_data(sid, body, end_stream=end)
        elif end:
            self.h2.end_stream(sid)
        await self.flush()

    async def stream_head(self, sid: int) -> None:
        self.h2.send_headers(
            sid,
            [(b":status", b"200"), (b"content-type", b"text/event-stream")],
            end_stream=False,
        )
        await self.flush()

    async def data(self, sid: int, data: bytes, end: bool = False) -> None:
        self.h2.send_data(sid, data, end_stream=end)
        await self.flush()

    async def raw_headers(
        self, sid: int, headers: list[tuple[bytes, bytes]], end_stream: bool = True
    ) -> None:
        """A HEADERS frame ``h2`` would refuse to send (e.g. a bad ``:status``)."""
        block = hpack.Encoder().encode(
            [hpack.NeverIndexedHeaderTuple(n, v) for n, v in headers]
        )
        flags = 0x4 | (0x1 if end_stream else 0)
        await self.send_raw(frame(0x1, flags, sid, block))

    async def hold(self) -> None:
        """Never read again (the peer stops reading); returns when cancelled."""
        await anyio.sleep_forever()


def frame(kind: int, flags: int, sid: int, payload: bytes) -> bytes:
    """One raw HTTP/2 frame."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes([kind, flags])
        + sid.to_bytes(4, "big")
        + payload
    )


def goaway(
    last: int, code: int = 0, sid: int = 0, payload: bytes | None = None
) -> bytes:
    """A raw GOAWAY frame (``payload`` overrides the well-formed one)."""
    body = (
        payload
        if payload is not None
        else last.to_bytes(4, "big") + code.to_bytes(4, "big")
    )
    return frame(0x7, 0, sid, body)


@asynccontextmanager
async def serve_h2(
    handler: Callable[[PeerConn], Awaitable[None]],
    *,
    settings: dict[int, int] | None = None,
    window: int | None = None,
) -> AsyncIterator[Peer]:
    """Serve ``handler`` on 127.0.0.1; yield a :class:`Peer` (``url``,
    ``connections``). ``window`` widens the connection's receive window by that
    much. Handlers are cancelled when the block exits."""
    peer = Peer()
    values = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100}
    values.update(settings or {})
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    peer.url = f"http://127.0.0.1:{port}"

    async def one(stream: anyio.abc.SocketStream) -> None:
        conn = PeerConn(stream, values)
        peer.connections.append(conn)
        async with stream:
            try:
                await conn.start(window)
                await handler(conn)
                await anyio.sleep_forever()  # keep it open until the test ends
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, one)
        try:
            yield peer
        finally:
            tg.cancel_scope.cancel()


class Peer:
    """Where the scripted server listens and the connections it accepted."""

    def __init__(self) -> None:
        self.url = ""
        self.connections: list[PeerConn] = []
