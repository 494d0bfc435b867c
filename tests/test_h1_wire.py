"""HTTP/1.1 bodies end to end over loopback: a scripted TCP server writes exact
bytes (chunked with extensions and trailers, split anywhere, Content-Length,
until EOF, malformed) and the transport reads them; keep-alive reuse happens
exactly when the body ended cleanly and neither side asked to close. Both
backends.

The scripted server writes each piece of a reply in its own ``send()`` and then
waits until every task is blocked, so the client has read that piece (and is
waiting for the next) before the next is written: each piece is one read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConnectionOptions,
    Message,
    Provider,
    ReadTimeoutError,
    RemoteProtocolError,
    Role,
)
from ailib_sc._config import resolve
from ailib_sc._transport import Origin, Response, Transport

from ._clock import virtual_time
from .conftest import Served, assert_clean

pytestmark = pytest.mark.anyio

CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@dataclass(frozen=True)
class Reply:
    """One scripted response: ``pieces`` written one write each, then ``then``:
    ``"serve"`` the next request on this connection, ``"close"`` it, or
    ``"hang"`` (write nothing more)."""

    pieces: tuple[bytes, ...]
    then: str = "serve"


def length_reply(body: bytes, *head: bytes) -> Reply:
    lines = b"".join(h + b"\r\n" for h in head)
    return Reply(
        (
            b"HTTP/1.1 200 OK\r\n%bContent-Length: %d\r\n\r\n%b"
            % (lines, len(body), body),
        )
    )


class ScriptedServer:
    """Answers the n-th request (on any connection) with ``replies[n]``."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.connections = 0
        self.requests: list[tuple[int, bytes]] = []  # (connection number, head)
        self.port = 0

    async def handle(self, sock: anyio.abc.SocketStream) -> None:
        self.connections += 1
        number = self.connections
        async with sock:
            stream = BufferedByteReceiveStream(sock)
            while True:
                try:
                    head = await stream.receive_until(b"\r\n\r\n", 65536)
                except (anyio.EndOfStream, anyio.IncompleteRead):
                    return  # the client closed this connection
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        await stream.receive_exactly(int(line.split(b":")[1]))
                self.requests.append((number, head))
                assert self.replies, f"unscripted request {head!r}"
                reply = self.replies.pop(0)
                for piece in reply.pieces:
                    await sock.send(piece)
                    await anyio.wait_all_tasks_blocked()
                if reply.then == "close":
                    return
                if reply.then == "hang":
                    await anyio.sleep_forever()


@asynccontextmanager
async def scripted(*replies: Reply) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(list(replies))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def transport_to(
    server: ScriptedServer, read_timeout: float | None = None
) -> AsyncIterator[tuple[Transport, Origin]]:
    url = f"http://127.0.0.1:{server.port}/v1"
    options = ConnectionOptions(http2=False, read_timeout=read_timeout)
    settings = resolve(Provider.custom("raw", url), options, env={})
    async with Transport(settings) as transport:
        yield transport, Origin.from_url(url)


async def receive_all(resp: Response) -> list[bytes]:
    chunks = []
    while (chunk := await resp.receive()) is not None:
        chunks.append(chunk)
    return chunks


async def post(
    transport: Transport, origin: Origin, *headers: tuple[bytes, bytes]
) -> list[bytes]:
    async with await transport.request(
        origin, b"POST", b"/v1/x", list(headers), b"{}"
    ) as resp:
        return await receive_all(resp)


# -- chunked bodies and reuse -------------------------------------------------------


async def test_chunked_split_anywhere_with_extensions_and_trailers_then_reused(
    anyio_backend: str,
) -> None:
    reply = Reply(
        (
            CHUNKED + b"5;name=value\r\nhello\r\n1",  # the size line is split
            b'A ; q="x;y"\r\n0123456789abcdefghijklmnop\r',  # so is the CRLF
            b"\n3\r\nxyz\r\n0;last\r\nX-Trailer: 1\r\n",
            b"X-Other: 2\r\n\r\n",
        )
    )
    async with (
        scripted(reply, length_reply(b"again")) as server,
        transport_to(server) as (transport, origin),
    ):
        assert await post(transport, origin) == [
            b"hello",
            b"0123456789abcdefghijklmnop",
            b"xyz",
        ]
        stats = transport.statistics()
        assert (stats.idle, stats.in_use) == (1, 0)
        assert await post(transport, origin) == [b"again"]
        assert transport.statistics().opened == 1
        assert [n for n, _ in server.requests] == [1, 1]
        assert server.connections == 1


async def test_a_chunked_body_read_at_once_is_one_piece(anyio_backend: str) -> None:
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in (b"ab", b"c" * 300, b"d"))
    reply = Reply((CHUNKED + body + b"0\r\n\r\n",))
    async with (
        scripted(reply, reply) as server,
        transport_to(server) as (transport, origin),
    ):
        assert await post(transport, origin) == [b"ab" + b"c" * 300 + b"d"]
        assert await post(transport, origin) == [b"ab" + b"c" * 300 + b"d"]
        assert (transport.statistics().opened, server.connections) == (1, 1)


@pytest.mark.parametrize(
    ("method", "status"),
    [(b"HEAD", b"200 OK"), (b"GET", b"204 No Content"), (b"GET", b"304 Not Modified")],
)
async def test_no_body_whatever_the_headers_say_and_reused(
    anyio_backend: str, method: bytes, status: bytes
) -> None:
    head = b"HTTP/1.1 %b\r\nContent-Length: 5\r\n\r\n" % status
    async with (
        scripted(Reply((head,)), length_reply(b"next")) as server,
        transport_to(server) as (transport, origin),
    ):
        async with await transport.request(origin, method, b"/v1/x", [], b"") as resp:
            assert await receive_all(resp) == []
            assert await resp.receive() is None  # and on every call after
        assert await post(transport, origin) == [b"next"]
        assert (transport.statistics().opened, server.connections) == (1, 1)


async def test_content_length_body_in_pieces_and_reused(anyio_backend: str) -> None:
    reply = Reply((b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", b"456789"))
    async with (
        scripted(reply, length_reply(b"next")) as server,
        transport_to(server) as (transport, origin),
    ):
        assert await post(transport, origin) == [b"0123", b"456789"]
        assert await post(transport, origin) == [b"next"]
        assert (transport.statistics().opened, server.connections) == (1, 1)


# -- not reused -----------------------------------------------------------------------

# The scripted server keeps serving on the connection whatever it announced, so
# a connection the client wrongly kept would carry the second request.
NOT_REUSABLE: dict[str, tuple[tuple[bytes, bytes] | tuple[()], Reply]] = {
    "server-connection-close": (
        (),
        Reply(
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            )
        ),
    ),
    "client-connection-close": ((b"connection", b"close"), length_reply(b"ok")),
    "http-1.0": ((), Reply((b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",))),
    "excess-after-chunked": (
        (),
        Reply((CHUNKED + b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n",)),
    ),
    "excess-after-length": (
        (),
        Reply((b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",)),
    ),
    "until-eof": ((), Reply((b"HTTP/1.1 200 OK\r\n\r\no", b"k"), then="close")),
}


@pytest.mark.parametrize("case", list(NOT_REUSABLE))
async def test_not_reused(anyio_backend: str, case: str) -> None:
    header, reply = NOT_REUSABLE[case]
    headers = [header] if len(header) == 2 else []
    async with (
        scripted(reply, length_reply(b"next")) as server,
        transport_to(server) as (transport, origin),
    ):
        assert b"".join(await post(transport, origin, *headers)) == b"ok"
        stats = transport.statistics()
        assert (stats.idle, stats.in_use, stats.connections) == (0, 0, 0)
        assert await post(transport, origin) == [b"next"]
        assert (transport.statistics().opened, server.connections) == (2, 2)
        assert [n for n, _ in server.requests] == [1, 2]


# -- broken bodies ------------------------------------------------------------------

BROKEN = {
    "malformed-size": (
        Reply((CHUNKED + b"2\r\nok\r\n", b"zz\r\n")),
        [b"ok"],
        "the server broke HTTP/1.1 body framing: invalid chunk size line b'zz'; "
        "the connection is closed (a retry opens a new one)",
    ),
    "data-past-its-size": (
        Reply((CHUNKED + b"2\r\nokay\r\n0\r\n\r\n",)),
        [b"ok"],
        "the server broke HTTP/1.1 body framing: chunk data runs past its "
        "announced size (no CRLF after it: b'ay\\r\\n0\\r\\n\\r\\n'); "
        "the connection is closed (a retry opens a new one)",
    ),
    "eof-mid-chunk": (
        Reply((CHUNKED + b"a\r\n01234",), then="close"),
        [b"01234"],
        "the server closed the connection mid-response "
        "(in chunk data of a chunked body)",
    ),
    "eof-before-last-chunk": (
        Reply((CHUNKED + b"2\r\nok\r\n",), then="close"),
        [b"ok"],
        "the server closed the connection mid-response "
        "(before a chunk size line ended of a chunked body)",
    ),
    "content-length-short": (
        Reply((b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234",), then="close"),
        [b"01234"],
        "the server closed the connection mid-response (5 of 10 body bytes arrived)",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_broken_body(anyio_backend: str, case: str) -> None:
    reply, before, message = BROKEN[case]
    async with (
        scripted(reply, length_reply(b"next")) as server,
        transport_to(server) as (transport, origin),
    ):
        resp = await transport.request(origin, b"POST", b"/v1/x", [], b"{}")
        async with resp:
            chunks = []
            with pytest.raises(RemoteProtocolError) as info:
                while (chunk := await resp.receive()) is not None:
                    chunks.append(chunk)
        assert chunks == before  # what arrived in good order came first
        assert str(info.value) == message
        assert transport.statistics().connections == 0
        assert await post(transport, origin) == [b"next"]
        assert (transport.statistics().opened, server.connections) == (2, 2)


@virtual_time()
async def test_read_timeout_mid_body(anyio_backend: object) -> None:
    reply = Reply((CHUNKED + b"a\r\n01234",), then="hang")
    async with (
        scripted(reply, length_reply(b"next")) as server,
        transport_to(server, read_timeout=30.0) as (transport, origin),
    ):
        resp = await transport.request(origin, b"POST", b"/v1/x", [], b"{}")
        async with resp:
            assert await resp.receive() == b"01234"
            start = anyio.current_time()
            with pytest.raises(ReadTimeoutError):
                await resp.receive()
            assert anyio.current_time() - start == pytest.approx(30.0, abs=1e-6)
        assert transport.statistics().connections == 0
        assert await post(transport, origin) == [b"next"]
        assert (transport.statistics().opened, server.connections) == (2, 2)


# -- through the client -----------------------------------------------------------

REQ = ChatCompletionRequest(model="m", messages=[Message(role=Role.USER, content="Hi")])


def sse(content: str | None, finish: str | None = None) -> bytes:
    delta = "{}" if content is None else f'{{"content":"{content}"}}'
    reason = "null" if finish is None else f'"{finish}"'
    return (
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":%b,"finish_reason":%b}]}\n\n'
        % (delta.encode(), reason.encode())
    )


def chunk(data: bytes, ext: bytes = b"") -> bytes:
    return b"%X%b\r\n%b\r\n" % (len(data), ext, data)


async def test_stream_over_a_chunked_body_with_extensions_and_trailers(
    anyio_backend: str,
) -> None:
    events = [sse("Hel"), sse("lo"), sse(None, "stop"), b"data: [DONE]\n\n"]
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    first = chunk(events[0], b";seq=1")
    reply = Reply(
        (
            head + first[:7],
            first[7:] + chunk(events[1])[:1],
            chunk(events[1])[1:] + chunk(events[2]) + chunk(events[3], b";last"),
            b"0\r\nX-Usage: 1\r\n\r\n",
        )
    )
    async with scripted(reply, reply) as server:
        provider = Provider.custom("raw", f"http://127.0.0.1:{server.port}/v1")
        options = ConnectionOptions(http2=False, max_concurrency=2)
        async with AiClient(provider, options) as client:
            for _ in range(2):
                async with client.chat_completion_stream(REQ) as stream:
                    texts = [c.choices[0].delta.content async for c in stream]
                assert texts == ["Hel", "lo", None]
                assert stream.finish_reason == "stop"
            assert client.statistics().opened == 1
            assert_clean(client, 2)
        assert server.connections == 1


async def test_stream_over_fake_server_http1_reuses_the_connection(
    h1_server: Served,
) -> None:
    req = ChatCompletionRequest(
        model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
    )
    async with h1_server.client(max_concurrency=2) as client:
        for _ in range(3):
            async with client.chat_completion_stream(req) as stream:
                assert stream.http_version == "HTTP/1.1"
                texts = [
                    c.choices[0].delta.content or "" async for c in stream if c.choices
                ]
            assert stream.finish_reason == "stop"
            assert "".join(texts) == "Hello! How can I assist you today?"
        assert client.statistics().opened == 1
        assert_clean(client, 2)
    assert h1_server.server.connections_opened == 1
