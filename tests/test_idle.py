"""Idle connections: closed after ``idle_timeout``, and a dead one (dropped on
the way by a NAT or load balancer, which tells neither end) never costs a
request its ``read_timeout``.

The client talks to a cleartext fake server through :class:`DroppingProxy`,
whose ``blackhole()`` silently drops the connections it carries. Virtual time
(tests/_clock.py): the idle periods cost no real time; elapsed times below are
virtual. No retry policy: a request that hit a dead connection would fail.
Both backends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConnectionOptions,
    Message,
    Provider,
    Role,
)
from ailib_sc.testing import FakeProviderServer

from ._clock import VirtualBackend, approx_time, virtual_backend
from ._dropping_proxy import DroppingProxy
from .conftest import assert_clean

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)
TEXT = "Hello! How can I assist you today?"
READ_TIMEOUT = 30.0
IDLE_TIMEOUT = 15.0  # ConnectionOptions.idle_timeout's default
# Past the PING_AFTER of ailib_sc/_transport/_h2.py (5 s), before IDLE_TIMEOUT.
IDLE_PAST_PING = 8.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> VirtualBackend:
    return virtual_backend(request.param)


@pytest.fixture
async def server(anyio_backend: VirtualBackend) -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer() as server:
        yield server


@pytest.fixture
async def proxy(server: FakeProviderServer) -> AsyncIterator[DroppingProxy]:
    async with DroppingProxy(server.port) as proxy:
        yield proxy


def _client(proxy: DroppingProxy, *, http2: bool) -> AiClient:
    options = ConnectionOptions(
        http2=http2, read_timeout=READ_TIMEOUT, max_concurrency=4
    )
    return AiClient(Provider.custom("idle", proxy.url("/v1")), options)


async def _ask(client: AiClient) -> str:
    return (await client.chat_completion(REQ)).first_text()


# ---------------------------------------------------------------- HTTP/2


async def test_h2_dropped_idle_connection_is_pinged_and_replaced(
    server: FakeProviderServer, proxy: DroppingProxy
) -> None:
    async with _client(proxy, http2=True) as client:
        assert await _ask(client) == TEXT
        proxy.blackhole()
        await anyio.sleep(IDLE_PAST_PING)
        # Nothing tells the client: the connection still looks fine.
        assert client.statistics().http2_connections == 1
        start = anyio.current_time()
        assert await _ask(client) == TEXT
        elapsed = anyio.current_time() - start
        # A short PING timeout, not read_timeout, found the connection dead.
        assert elapsed <= 2.5
        assert proxy.discarded >= 17  # the PING frame (9 + 8 bytes), lost
        assert proxy.accepted == 2
        stats = client.statistics()
        assert (stats.opened, stats.http2_connections) == (2, 1)
        assert_clean(client, 4)
    # The server saw both requests, on two connections.
    assert [r.connection_id for r in server.requests] == [0, 1]


async def test_h2_live_idle_connection_answers_the_ping_and_is_reused(
    server: FakeProviderServer, proxy: DroppingProxy
) -> None:
    async with _client(proxy, http2=True) as client:
        assert await _ask(client) == TEXT
        await anyio.sleep(IDLE_PAST_PING)
        start = anyio.current_time()
        assert await _ask(client) == TEXT
        assert anyio.current_time() - start == approx_time(0.0)
        assert proxy.accepted == 1
        stats = client.statistics()
        assert (stats.opened, stats.http2_connections) == (1, 1)
        assert_clean(client, 4)
    assert [r.connection_id for r in server.requests] == [0, 0]


async def test_h2_idle_connection_closed_after_idle_timeout(
    server: FakeProviderServer, proxy: DroppingProxy
) -> None:
    async with _client(proxy, http2=True) as client:
        assert await _ask(client) == TEXT
        await anyio.sleep(IDLE_TIMEOUT - 1)
        assert client.statistics().http2_connections == 1
        assert proxy.closed == 0
        await anyio.sleep(2)  # idle for 16 s: past idle_timeout
        stats = client.statistics()
        assert (stats.connections, stats.http2_connections) == (0, 0)
        with anyio.fail_after(1):
            await proxy.wait_closed(1)  # the client closed its socket
        assert proxy.open_connections == 0
        assert await _ask(client) == TEXT
        assert proxy.accepted == 2
        stats = client.statistics()
        assert (stats.opened, stats.http2_connections) == (2, 1)
        assert_clean(client, 4)
    assert [r.connection_id for r in server.requests] == [0, 1]


# ---------------------------------------------------------------- HTTP/1.1


async def test_h1_cold_bottom_connection_reaped_while_top_one_stays_busy(
    server: FakeProviderServer, proxy: DroppingProxy
) -> None:
    hold = anyio.Event()
    server.script(200, hold_until=hold, times=2)
    async with _client(proxy, http2=False) as client:
        # Two requests at once: two connections, both idle afterwards.
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(_ask, client)
            await server.wait_for_requests(2)
            hold.set()
        assert (client.statistics().idle, proxy.accepted) == (2, 2)
        # A request every 4 s reuses the connection on top of the idle stack;
        # the one under it goes cold.
        for _ in range(3):
            await anyio.sleep(4)
            assert await _ask(client) == TEXT
            assert client.statistics().idle == 2  # 12 s: not past idle_timeout
        await anyio.sleep(4)
        assert await _ask(client) == TEXT  # 16 s: the cold one is reaped
        stats = client.statistics()
        assert (stats.idle, stats.connections, stats.opened) == (1, 1, 2)
        with anyio.fail_after(1):
            await proxy.wait_closed(1)
        assert (proxy.open_connections, proxy.accepted) == (1, 2)
        assert_clean(client, 4)
    ids = [r.connection_id for r in server.requests]
    assert sorted(ids[:2]) == [0, 1]
    assert ids[2:] == [ids[2]] * 4  # always the one on top


async def test_h1_dropped_connection_idle_past_idle_timeout_is_replaced(
    server: FakeProviderServer, proxy: DroppingProxy
) -> None:
    async with _client(proxy, http2=False) as client:
        assert await _ask(client) == TEXT
        proxy.blackhole()
        await anyio.sleep(IDLE_TIMEOUT + 1)
        start = anyio.current_time()
        assert await _ask(client) == TEXT
        assert anyio.current_time() - start == approx_time(0.0)
        assert proxy.discarded == 0  # nothing was sent on the dead connection
        assert proxy.accepted == 2
        stats = client.statistics()
        assert (stats.opened, stats.idle, stats.connections) == (2, 1, 1)
        assert_clean(client, 4)
    assert [r.connection_id for r in server.requests] == [0, 1]
