"""HTTP/2 flow control never stalls, whatever the consumer's pace.

The client's per-stream window is 1 MiB: a response longer than that keeps
flowing only if the credit the consumer gives back (as it takes the data) goes
out as WINDOW_UPDATEs without waiting for some other write, and streams whose
consumers are slow (their data waits, unread, in the client) must not use up
connection-level credit the others need.

Everything runs on virtual time (tests/_clock.py): a consumer's 1 ms per chunk
and 1 s before reading are its simulated speed and cost no real time, and a
stall shows up as a :class:`ReadTimeoutError` after ``READ_TIMEOUT`` virtual
seconds instead of a hang. Each test runs against the fake server and against
hypercorn (h2c by prior knowledge, both), on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ChatCompletionStream,
    ConnectionOptions,
    Message,
    Provider,
    Role,
)
from ailib_sc._config import resolve
from ailib_sc._transport._connect import Origin
from ailib_sc._transport._transport import Transport
from ailib_sc.testing import FakeProviderServer

from ._clock import VirtualBackend, virtual_backend
from ._hypercorn import serve_asgi
from .conftest import assert_clean

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from ailib_sc._transport._response import Response

    AsgiMessage = dict[str, Any]
    Receive = Callable[[], Awaitable[AsgiMessage]]
    Send = Callable[[AsgiMessage], Awaitable[None]]

pytestmark = pytest.mark.anyio

READ_TIMEOUT = 30.0  # virtual seconds: a stall fails fast, it never hangs
WINDOW = 1 << 20  # the client's per-stream flow-control window
OLD_CONNECTION_WINDOW = 1 << 24  # before the fix: slow streams could use it up
REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)
CHAT_PATH = b"/v1/chat/completions"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> VirtualBackend:
    return virtual_backend(request.param)


def _pieces(count: int, size: int) -> list[str]:
    """``count`` distinct text pieces of ``size`` characters: the number of the
    piece, then a letter repeated (any reordering or loss changes the text)."""
    return [
        f"{i:06d}".ljust(size, "abcdefghijklmnopqrstuvwxyz"[i % 26])
        for i in range(count)
    ]


# ---------------------------------------------------------------- the servers


def _chunk(delta: bytes, finish: bytes = b"null") -> bytes:
    # The shape of the Streaming example in openai-openapi.yaml
    # (paths./chat/completions.post.x-oaiMeta.examples), "usage": null as
    # OpenAI sends with stream_options.include_usage.
    return (
        b'data: {"id":"chatcmpl-flow","object":"chat.completion.chunk",'
        b'"created":1694268190,"model":"gpt-4o-mini",'
        b'"system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":'
        + delta
        + b',"logprobs":null,"finish_reason":'
        + finish
        + b'}],"usage":null}\n\n'
    )


def _openai_events(pieces: list[str]) -> tuple[bytes, ...]:
    """A streamed chat completion as OpenAI sends it: the role chunk, one chunk
    per piece, the finish chunk, the usage-only chunk, ``[DONE]``."""
    usage = (
        b'data: {"id":"chatcmpl-flow","object":"chat.completion.chunk",'
        b'"created":1694268190,"model":"gpt-4o-mini",'
        b'"system_fingerprint":"fp_44709d6fcb","choices":[],"usage":'
        b'{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}}\n\n'
    )
    return (
        _chunk(b'{"role":"assistant","content":""}'),
        *(_chunk(b'{"content":"' + p.encode() + b'"}') for p in pieces),
        _chunk(b"{}", b'"stop"'),
        usage,
        b"data: [DONE]\n\n",
    )


@dataclass
class SseApp:
    """An ASGI app answering every request with :attr:`events`, each event sent
    as its own body message (its own HTTP/2 DATA frame), once :attr:`hold` (if
    any) is set."""

    events: tuple[bytes, ...] = ()
    content_type: str = "text/event-stream"
    hold: anyio.Event | None = None
    requests: int = 0
    clients: set[object] = field(default_factory=set)
    _arrived: anyio.Event | None = None

    async def wait_for_requests(self, count: int) -> None:
        while self.requests < count:
            self._arrived = anyio.Event()
            await self._arrived.wait()

    async def __call__(self, scope: AsgiMessage, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        while (await receive()).get("more_body"):
            pass
        self.requests += 1
        self.clients.add(tuple(scope["client"]))
        if self._arrived is not None:
            self._arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", self.content_type.encode())],
            }
        )
        for event in self.events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Upstream:
    """The fake server or hypercorn, scripted the same way."""

    name: str
    base_url: str  # ".../v1"
    fake: FakeProviderServer | None = None
    app: SseApp | None = None

    def script_chat(
        self, pieces: list[str], *, times: int = 1, hold: anyio.Event | None = None
    ) -> None:
        """The next ``times`` streamed chats send ``pieces`` as content chunks."""
        if self.fake is not None:
            self.fake.script_stream(
                chunks=len(pieces), text="".join(pieces), hold_until=hold, times=times
            )
        else:
            assert self.app is not None
            self.app.events = _openai_events(pieces)
            self.app.hold = hold

    def script_body(self, chunks: tuple[bytes, ...]) -> None:
        """The next request gets ``chunks``, one DATA frame each."""
        if self.fake is not None:
            self.fake.script(
                200, body=chunks, headers={"content-type": "application/octet-stream"}
            )
        else:
            assert self.app is not None
            self.app.events = chunks
            self.app.content_type = "application/octet-stream"

    async def wait_for_requests(self, count: int) -> None:
        if self.fake is not None:
            await self.fake.wait_for_requests(count)
        else:
            assert self.app is not None
            await self.app.wait_for_requests(count)

    def connections(self) -> int:
        """TCP connections the server accepted."""
        if self.fake is not None:
            return self.fake.connections_opened
        assert self.app is not None
        return len(self.app.clients)

    def client(self, **options: Any) -> AiClient:
        opts = ConnectionOptions(http2=True, read_timeout=READ_TIMEOUT, **options)
        return AiClient(Provider.custom("flow", self.base_url), opts)


@pytest.fixture(params=["fake", "hypercorn"])
async def upstream(
    request: pytest.FixtureRequest, anyio_backend: VirtualBackend
) -> AsyncIterator[Upstream]:
    if request.param == "fake":
        async with FakeProviderServer() as server:
            yield Upstream("fake", server.base_url, fake=server)
    else:
        app = SseApp()
        async with serve_asgi(app) as url:
            yield Upstream("hypercorn", f"{url}/v1", app=app)


# ---------------------------------------------------------------- consumers


@dataclass(frozen=True)
class Consumer:
    """How fast a consumer reads: ``before`` seconds before its first read,
    then ``per_chunk`` seconds after each chunk (virtual time)."""

    before: float
    per_chunk: float


CONSUMERS = [
    pytest.param(Consumer(before=0.0, per_chunk=0.001), id="1ms-per-chunk"),
    pytest.param(Consumer(before=1.0, per_chunk=0.0), id="1s-before-reading"),
]


async def _read_chat(stream: ChatCompletionStream, per_chunk: float) -> tuple[str, int]:
    """The stream's text, and how many chunks it yielded."""
    parts: list[str] = []
    count = 0
    async for chunk in stream:
        count += 1
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if per_chunk:
            await anyio.sleep(per_chunk)
    return "".join(parts), count


async def _read_raw(response: Response, per_chunk: float) -> bytes:
    parts: list[bytes] = []
    while (data := await response.receive()) is not None:
        parts.append(data)
        if per_chunk:
            await anyio.sleep(per_chunk)
    return b"".join(parts)


# ---------------------------------------------------------------- one long stream

PIECES_3MB = _pieces(3000, 1000)  # 3,000,000 characters of text, 3000 chunks


@pytest.mark.parametrize("consumer", CONSUMERS)
async def test_3mb_chat_stream_completes(
    upstream: Upstream, consumer: Consumer
) -> None:
    upstream.script_chat(PIECES_3MB)
    async with upstream.client(max_concurrency=1) as client:
        async with client.chat_completion_stream(REQ) as stream:
            assert stream.http_version == "HTTP/2"
            await anyio.sleep(consumer.before)
            text, count = await _read_chat(stream, consumer.per_chunk)
        # Role chunk, 3000 content chunks, finish chunk, usage-only chunk.
        assert count == 3003
        assert text == "".join(PIECES_3MB)
        assert stream.finish_reason == "stop"
        stats = client.statistics()
        assert (stats.opened, stats.http2_connections) == (1, 1)
        assert_clean(client, 1)
    assert upstream.connections() == 1


@pytest.mark.parametrize("consumer", CONSUMERS)
async def test_3mb_raw_body_completes(upstream: Upstream, consumer: Consumer) -> None:
    # The same through the transport alone: Response.receive() per chunk.
    chunks = tuple(p.encode() for p in PIECES_3MB)
    upstream.script_body(chunks)
    options = ConnectionOptions(http2=True, read_timeout=READ_TIMEOUT)
    settings = resolve(Provider.custom("flow", upstream.base_url), options, env={})
    async with Transport(settings) as transport:
        response = await transport.request(
            Origin.from_url(upstream.base_url),
            b"POST",
            CHAT_PATH,
            [(b"content-type", b"application/json")],
            b"{}",
        )
        async with response:
            assert (response.status, response.http_version) == (200, "HTTP/2")
            await anyio.sleep(consumer.before)
            body = await _read_raw(response, consumer.per_chunk)
        assert len(body) == 3_000_000
        assert body == b"".join(chunks)
        stats = transport.statistics()
        assert (stats.opened, stats.active_streams) == (1, 0)


# ---------------------------------------------------------------- 50 streams

STREAMS = 50
SLOW = 25
PIECES_50 = _pieces(160, 8000)  # 1.28 MB of text per stream: more than WINDOW


async def test_slow_consumers_do_not_hold_back_fast_ones(upstream: Upstream) -> None:
    """25 slow consumers read nothing until the 25 fast ones have finished.
    Each slow stream holds a full window unread (25 MiB in all, more than the
    old 16 MiB connection window); the fast ones still finish, on the same
    connection, and then so do the slow ones."""
    assert len("".join(PIECES_50)) > WINDOW
    assert SLOW * WINDOW > OLD_CONNECTION_WINDOW
    go = anyio.Event()  # the server answers once all 50 requests arrived
    fast_done = anyio.Event()
    upstream.script_chat(PIECES_50, times=STREAMS, hold=go)
    fast_texts: list[str] = []
    slow_texts: list[str] = []

    async def fast(client: AiClient) -> None:
        async with client.chat_completion_stream(REQ) as stream:
            text, count = await _read_chat(stream, 0.0)
        assert count == len(PIECES_50) + 3
        fast_texts.append(text)
        if len(fast_texts) == STREAMS - SLOW:
            fast_done.set()

    async def slow(client: AiClient) -> None:
        async with client.chat_completion_stream(REQ) as stream:
            await fast_done.wait()
            text, count = await _read_chat(stream, 0.0)
        assert count == len(PIECES_50) + 3
        slow_texts.append(text)

    async with upstream.client(max_concurrency=STREAMS) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(SLOW):
                tg.start_soon(fast, client)
                tg.start_soon(slow, client)
            await upstream.wait_for_requests(STREAMS)
            go.set()
        stats = client.statistics()
        assert (stats.opened, stats.http2_connections) == (1, 1)
        assert_clean(client, STREAMS)
    expected = "".join(PIECES_50)
    assert fast_texts == [expected] * (STREAMS - SLOW)
    assert slow_texts == [expected] * SLOW
    assert upstream.connections() == 1
