"""Our connection pool against real loopback servers: connection bounds, HTTP/2
multiplexing, reuse, cancellation at each phase, timeouts, limits."""

from __future__ import annotations

import socket

import anyio
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConnectError,
    InvalidRequestError,
    Message,
    PoolTimeoutError,
    Provider,
    ReadTimeoutError,
    Role,
)
from ailib_sc.testing import FakeProviderServer

from .conftest import API_KEY, Served

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)
TEXT = "Hello! How can I assist you today?"


async def _many(client: AiClient, n: int) -> list[str]:
    out: list[str] = [""] * n

    async def one(i: int) -> None:
        out[i] = (await client.chat_completion(REQ)).first_text()

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return out


async def test_http1_200_concurrent_never_exceed_pool_size(h1_server: Served) -> None:
    async with h1_server.client(pool_size=10) as client:
        results = await _many(client, 200)
        stats = client.statistics()
    assert results == [TEXT] * 200
    assert len(h1_server.server.requests) == 200
    assert h1_server.server.max_open_connections <= 10
    assert h1_server.server.connections_opened <= 10
    assert stats.opened <= 10
    assert (stats.in_use, stats.http2_connections) == (0, 0)
    assert stats.idle == stats.connections <= 10


async def test_http1_sequential_requests_reuse_one_connection(
    h1_server: Served,
) -> None:
    async with h1_server.client() as client:
        for _ in range(3):
            assert (await client.chat_completion(REQ)).first_text() == TEXT
        assert client.statistics().idle == 1
    assert h1_server.server.connections_opened == 1
    assert [r.connection_id for r in h1_server.server.requests] == [0, 0, 0]


async def test_http1_server_closing_connection_is_not_reused(h1_server: Served) -> None:
    h1_server.server.script(200, headers={"connection": "close"})
    async with h1_server.client() as client:
        assert (await client.chat_completion(REQ)).first_text() == TEXT
        assert client.statistics().connections == 0
        assert (await client.chat_completion(REQ)).first_text() == TEXT
    assert h1_server.server.connections_opened == 2


async def test_h2_multiplexes_100_requests_on_one_connection(
    anyio_backend: str,
) -> None:
    async with FakeProviderServer(api_key=API_KEY) as server:
        served = Served(server, "h2c", "HTTP/2")
        release = anyio.Event()
        server.script(200, times=100, hold_until=release)
        async with served.client() as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_many, client, 100)
                await server.wait_for_requests(100)
                assert client.statistics().active_streams == 100
                release.set()
            stats = client.statistics()
    assert server.connections_opened == 1
    assert server.max_concurrent_requests == 100
    assert {r.http_version for r in server.requests} == {"HTTP/2"}
    assert (stats.http2_connections, stats.active_streams) == (1, 0)


async def test_h2_opens_a_new_connection_only_when_all_are_full(
    anyio_backend: str,
) -> None:
    async with FakeProviderServer(max_concurrent_streams=10) as server:
        release = anyio.Event()
        server.script(200, times=25, hold_until=release)
        provider = Provider.custom("fake", server.base_url)
        async with AiClient(provider, Served(server, "h2c", "").options()) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_many, client, 25)
                await server.wait_for_requests(25)
                stats = client.statistics()
                release.set()
    assert server.connections_opened == 3
    assert (stats.http2_connections, stats.active_streams) == (3, 25)
    per_conn = [
        sum(1 for r in server.requests if r.connection_id == c) for c in range(3)
    ]
    assert sorted(per_conn) == [5, 10, 10]


async def test_cancel_while_awaiting_headers_cleans_up(served: Served) -> None:
    release = anyio.Event()
    served.server.script(200, hold_until=release)
    async with served.client() as client:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.chat_completion, REQ)
                await served.server.wait_for_requests(1)
                scope.cancel()
        stats = client.statistics()
        assert (stats.in_use, stats.active_streams) == (0, 0)
        if served.http_version == "HTTP/2":
            await served.server.wait_for_resets(1)
            assert stats.http2_connections == 1  # the connection survives the reset
        else:
            assert stats.connections == 0  # an unread HTTP/1.1 exchange is closed
        release.set()
        assert (await client.chat_completion(REQ)).first_text() == TEXT
    expected = 1 if served.http_version == "HTTP/2" else 2
    assert served.server.connections_opened == expected


async def test_read_timeout_is_typed_and_pool_stays_usable(served: Served) -> None:
    release = anyio.Event()
    served.server.script(200, hold_until=release)
    async with served.client(read_timeout=0.2) as client:
        with pytest.raises(ReadTimeoutError) as info:
            await client.chat_completion(REQ)
        assert info.value.is_retryable()
        assert info.value.provider == "fake"
        release.set()
        assert (await client.chat_completion(REQ)).first_text() == TEXT
        stats = client.statistics()
        assert (stats.in_use, stats.active_streams) == (0, 0)


async def test_pool_timeout_http1(h1_server: Served) -> None:
    release = anyio.Event()
    h1_server.server.script(200, hold_until=release)
    async with h1_server.client(pool_size=1, pool_timeout=0.2) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.chat_completion, REQ)
            await h1_server.server.wait_for_requests(1)
            with pytest.raises(PoolTimeoutError, match="pool_size"):
                await client.chat_completion(REQ)
            release.set()
    assert len(h1_server.server.requests) == 1


async def test_pool_timeout_http2(anyio_backend: str) -> None:
    async with FakeProviderServer(max_concurrent_streams=1) as server:
        release = anyio.Event()
        server.script(200, hold_until=release)
        provider = Provider.custom("fake", server.base_url)
        options = Served(server, "h2c", "").options(pool_size=1, pool_timeout=0.2)
        async with AiClient(provider, options) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.chat_completion, REQ)
                await server.wait_for_requests(1)
                with pytest.raises(PoolTimeoutError, match="stream slot"):
                    await client.chat_completion(REQ)
                release.set()
    assert len(server.requests) == 1


async def test_max_concurrency_limits_in_flight_requests(h2_server: Served) -> None:
    release = anyio.Event()
    h2_server.server.script(200, times=10, hold_until=release)
    async with h2_server.client(max_concurrency=3) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_many, client, 10)
            await h2_server.server.wait_for_requests(3)
            await anyio.wait_all_tasks_blocked()
            assert len(h2_server.server.requests) == 3
            assert client.statistics().active_streams == 3
            release.set()
    assert len(h2_server.server.requests) == 10
    assert h2_server.server.max_concurrent_requests == 3


async def test_connect_refused_is_connect_error(anyio_backend: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = Provider.custom("nowhere", f"http://127.0.0.1:{port}/v1")
    async with AiClient(provider) as client:
        with pytest.raises(ConnectError) as info:
            await client.chat_completion(REQ)
    assert info.value.is_retryable()
    assert info.value.provider == "nowhere"
    assert client.statistics().connections == 0


async def test_a_request_h11_refuses_is_invalid_not_retryable(
    h1_server: Served,
) -> None:
    # The header checks stop such values when the client is built; below them,
    # the transport maps h11's LocalProtocolError to InvalidRequestError (our
    # side broke HTTP/1.1: nothing was sent, retrying cannot help), not to a
    # retryable RemoteProtocolError.
    async with h1_server.client(max_concurrency=1) as client:
        engine = client._engine
        with pytest.raises(InvalidRequestError, match="cannot send") as info:
            await engine.transport.request(
                engine.origin, b"POST", b"/v1/chat/completions", [(b"x-a", b" x")], b""
            )
        assert not info.value.is_retryable()
        stats = client.statistics()
        assert (stats.in_use, stats.connections) == (0, 0)
        assert (await client.chat_completion(REQ)).first_text() == TEXT
    assert len(h1_server.server.requests) == 1
