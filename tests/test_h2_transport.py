"""HTTP/2 transport behaviour against a scripted peer (tests/_h2_peer.py) on
virtual time: error classification (what may have been processed), one error
object per stream, cleanup that never waits on a stuck peer, a closing pool.

Each test names the bug it guards; each failed on the transport before the
writer-task rewrite (shared out-buffer, lock and shielded writes)."""

from __future__ import annotations

from typing import Any

import anyio
import h2.settings
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ClientClosedError,
    ConnectionOptions,
    InvalidRequestError,
    Message,
    Provider,
    RemoteProtocolError,
    Role,
    TransportError,
    WriteTimeoutError,
)
from ailib_sc._config import resolve
from ailib_sc._transport import Origin, Transport

from ._clock import virtual_backend
from ._h2_peer import PeerConn, chat_json, goaway, serve_h2, sse_chunk
from .conftest import API_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return virtual_backend(str(request.param))


def _req(text: str = "Hello") -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="gpt-4o-mini", messages=[Message(role=Role.USER, content=text)]
    )


def _client(url: str, **options: Any) -> AiClient:
    opts: dict[str, Any] = {"http2": True, "read_timeout": 30.0}
    opts.update(options)
    return AiClient(
        Provider.custom("peer", url + "/v1", api_key=API_KEY),
        ConnectionOptions(**opts),
    )


# ---------------------------------------------------------------- :status


@pytest.mark.parametrize(
    "status",
    [None, b"abc", b"20", b"2000", b"101", b"099", b"600"],
    ids=["missing", "letters", "two-digits", "four-digits", "101", "099", "600"],
)
async def test_bad_or_missing_status_is_a_protocol_error_at_once(
    anyio_backend: Any, status: bytes | None
) -> None:
    # Before: a missing :status waited out read_timeout (it looked like 1xx),
    # letters raised a raw ValueError from the reader.
    async def handler(conn: PeerConn) -> None:
        sid = await conn.request()
        head = [] if status is None else [(b":status", status)]
        await conn.raw_headers(
            sid, [*head, (b"content-type", b"application/json")], end_stream=False
        )
        sid = await conn.request()  # the connection is still good
        await conn.respond(sid, chat_json("second"))

    async with serve_h2(handler) as peer, _client(peer.url) as client:
        start = anyio.current_time()
        with pytest.raises(RemoteProtocolError, match=r":status; the request may"):
            await client.chat_completion(_req())
        assert anyio.current_time() - start < 1.0  # virtual: no read_timeout
        resp = await client.chat_completion(_req())
        assert resp.first_text() == "second"
        assert len(peer.connections) == 1


async def test_repeated_status_is_a_protocol_error(anyio_backend: Any) -> None:
    async def handler(conn: PeerConn) -> None:
        sid = await conn.request()
        await conn.raw_headers(sid, [(b":status", b"200"), (b":status", b"204")])

    async with serve_h2(handler) as peer, _client(peer.url) as client:
        with pytest.raises(RemoteProtocolError, match="malformed :status"):
            await client.chat_completion(_req())


# ---------------------------------------------------------------- GOAWAY


@pytest.mark.parametrize(
    "frame",
    [goaway(0, payload=b"\x00\x00\x00\x03"), goaway(0, sid=1), goaway(3, sid=3)],
    ids=["short-payload", "on-stream-1", "on-stream-3"],
)
async def test_malformed_goaway_means_maybe_processed(
    anyio_backend: Any, frame: bytes
) -> None:
    # Before: a malformed GOAWAY read as "last_stream_id 0": both requests were
    # "not processed" and went out again on a new connection (processed twice).
    async def handler(conn: PeerConn) -> None:
        await conn.request()
        await conn.request()
        await conn.send_raw(frame)

    errors: list[BaseException] = []

    async def one(client: AiClient) -> None:
        try:
            await client.chat_completion(_req())
        except TransportError as exc:
            errors.append(exc)

    async with serve_h2(handler) as peer, _client(peer.url) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, client)
            tg.start_soon(one, client)
        assert [type(e) for e in errors] == [RemoteProtocolError] * 2
        assert all("malformed GOAWAY" in str(e) for e in errors)
        assert len(peer.connections) == 1
        assert len(peer.connections[0].requests) == 2


async def test_goaway_sends_only_unprocessed_streams_elsewhere(
    anyio_backend: Any,
) -> None:
    # The well-formed counterpart: stream 1 is promised, stream 3 is not.
    async def handler(conn: PeerConn) -> None:
        if len(peer.connections) == 1:
            first = await conn.request()
            await conn.request()
            await conn.send_raw(goaway(first))
            await conn.respond(first, chat_json("kept"))
        else:
            sid = await conn.request()
            await conn.respond(sid, chat_json("moved"))

    texts: list[str] = []

    async def one(client: AiClient) -> None:
        texts.append((await client.chat_completion(_req())).first_text())

    async with serve_h2(handler) as peer, _client(peer.url) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, client)
            tg.start_soon(one, client)
        assert sorted(texts) == ["kept", "moved"]
        assert [len(c.requests) for c in peer.connections] == [2, 1]


# ---------------------------------------------------------------- per-stream errors


async def test_every_stream_gets_its_own_error_and_partial(anyio_backend: Any) -> None:
    # Before: every stream on a dying connection raised the same exception
    # object, so one stream's err.partial held another stream's text.
    async def handler(conn: PeerConn) -> None:
        first = await conn.request()
        second = await conn.request()
        for sid, word in ((first, "alpha"), (second, "beta")):
            await conn.stream_head(sid)
            await conn.data(sid, sse_chunk('{"role":"assistant","content":""}'))
            await conn.data(sid, sse_chunk(f'{{"content":"{word}"}}'))
        await conn.stream.aclose()

    errors: dict[str, RemoteProtocolError] = {}
    got: dict[str, list[str]] = {}

    async def one(client: AiClient, name: str) -> None:
        got[name] = []
        try:
            async with client.chat_completion_stream(_req(name)) as stream:
                async for chunk in stream:
                    got[name].append(chunk.choices[0].delta.content or "")
        except RemoteProtocolError as exc:
            errors[name] = exc

    async with serve_h2(handler) as peer, _client(peer.url) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, client, "a")
            await peer_requests(peer, 1)
            tg.start_soon(one, client, "b")
        first = peer.connections[0].requests
        assert len(first) == 2
    assert got == {"a": ["", "alpha"], "b": ["", "beta"]}
    a, b = errors["a"], errors["b"]
    assert a is not b
    assert a.__cause__ is b.__cause__
    assert isinstance(a.__cause__, RemoteProtocolError)
    assert a.partial is not None
    assert b.partial is not None
    assert a.partial.first_text() == "alpha"
    assert b.partial.first_text() == "beta"


async def peer_requests(peer: Any, n: int) -> None:
    """Let the event loop run until the peer has seen ``n`` requests (it reads
    as soon as bytes arrive; loopback delivers them within the write)."""
    with anyio.fail_after(5):
        while sum(len(c.requests) for c in peer.connections) < n:
            await anyio.lowlevel.checkpoint()


# ---------------------------------------------------------------- bounded cleanup


@pytest.mark.timeout(30)
async def test_a_peer_that_stops_reading_hangs_nothing(anyio_backend: Any) -> None:
    # Before: callers wrote under one lock, cleanup writes shielded and without
    # a deadline. When the big request's write timed out with the socket
    # buffers full, its own cleanup (an RST_STREAM written in a shielded write
    # with no timeout) hung for ever, whatever close_timeout said; stream exits
    # then queued behind the lock until close_timeout.
    async def handler(conn: PeerConn) -> None:
        if len(peer.connections) == 1:
            sid = await conn.request()
            await conn.stream_head(sid)
            await conn.data(sid, sse_chunk('{"role":"assistant","content":""}'))
            await conn.hold()  # never reads again
        else:
            sid = await conn.request()
            await conn.respond(sid, chat_json("fresh"))

    big = _req("x" * (32 << 20))  # far more than the socket buffers hold
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: (1 << 31) - 1}
    failures: list[BaseException] = []

    async def send_big(client: AiClient) -> None:
        try:
            await client.chat_completion(big)
        except TransportError as exc:
            failures.append(exc)

    async with serve_h2(handler, settings=settings, window=1 << 30) as peer:
        client = _client(peer.url, write_timeout=5.0, close_timeout=1.0)
        async with client, anyio.create_task_group() as tg:
            async with client.chat_completion_stream(_req()) as stream:
                await stream.__anext__()
                tg.start_soon(send_big, client)
                await anyio.sleep(8)  # virtual: past write_timeout
                resp = await client.chat_completion(_req())
                assert resp.first_text() == "fresh"
                left = anyio.current_time()
            assert anyio.current_time() - left < 0.1
        assert [type(e) for e in failures] == [WriteTimeoutError]
        assert len(peer.connections) == 2


# ---------------------------------------------------------------- header validation


async def test_headers_h2_refuses_are_invalid_not_refused(anyio_backend: Any) -> None:
    # Before: h2's outbound header validation error read as "the state machine
    # is closed, not processed": the request went round the pool eight times
    # and surfaced as a retryable RequestRefusedError.
    async def handler(conn: PeerConn) -> None:
        await conn.request()

    async with serve_h2(handler) as peer:
        settings = resolve(
            Provider.custom("peer", peer.url + "/v1", api_key=API_KEY),
            ConnectionOptions(http2=True),
        )
        async with Transport(settings) as transport:
            with pytest.raises(
                InvalidRequestError, match=r"header 'te' over HTTP/2"
            ) as info:
                await transport.request(
                    Origin.from_url(peer.url),
                    b"POST",
                    b"/v1/chat/completions",
                    [(b"te", b"gzip")],
                    b"{}",
                )
            assert not info.value.is_retryable()
            stats = transport.statistics()
            assert (stats.active_streams, stats.rerouted, stats.opened) == (0, 0, 1)
        assert peer.connections[0].requests == {}


# ---------------------------------------------------------------- closing pool


async def test_requests_meeting_a_closing_pool_get_client_closed(
    anyio_backend: Any,
) -> None:
    # Before: a request waiting for a stream slot, and one in flight, got a
    # retryable RemoteProtocolError when the client closed.
    async def handler(conn: PeerConn) -> None:
        await conn.request()  # answer nothing

    errors: list[BaseException] = []

    async def one(client: AiClient) -> None:
        try:
            await client.chat_completion(_req())
        except Exception as exc:
            errors.append(exc)

    limit = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
    async with serve_h2(handler, settings=limit) as peer:
        client = _client(peer.url, pool_size=1)
        async with client, anyio.create_task_group() as tg:
            tg.start_soon(one, client)
            await peer_requests(peer, 1)
            tg.start_soon(one, client)
            while client.statistics().active_streams < 1:
                await anyio.lowlevel.checkpoint()
            for _ in range(10):  # let the second one reach the slot wait
                await anyio.lowlevel.checkpoint()
            await client.aclose()
        assert [type(e) for e in errors] == [ClientClosedError] * 2
        assert not any(isinstance(e, TransportError) for e in errors)


async def test_events_after_the_peer_closes_are_not_lost(anyio_backend: Any) -> None:
    # A response completed just before the peer hangs up is delivered whole.
    async def handler(conn: PeerConn) -> None:
        sid = await conn.request()
        await conn.respond(sid, chat_json("complete"))
        await conn.stream.aclose()

    async with serve_h2(handler) as peer, _client(peer.url) as client:
        resp = await client.chat_completion(_req())
        assert resp.first_text() == "complete"
