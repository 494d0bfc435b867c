"""Requests that meet a closing client get ClientClosedError (not retryable),
on HTTP/1.1 and HTTP/2: the one in flight and the one waiting for a connection."""

from __future__ import annotations

import anyio
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ClientClosedError,
    Message,
    Role,
)
from ailib_sc.testing import FakeProviderServer

from .conftest import API_KEY, Served

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)


@pytest.mark.parametrize("protocol", ["http1", "h2c"])
async def test_in_flight_and_waiting_requests_get_client_closed(
    anyio_backend: str, protocol: str
) -> None:
    # Before: both got a retryable RemoteProtocolError ("the client is
    # closing" / "connection closed by the client").
    never = anyio.Event()
    async with FakeProviderServer(api_key=API_KEY, max_concurrent_streams=1) as server:
        server.script(200, hold_until=never, times=2)
        served = Served(server, protocol, "")
        errors: list[BaseException] = []

        async def one(client: AiClient) -> None:
            try:
                await client.chat_completion(REQ)
            except Exception as exc:
                errors.append(exc)

        client = served.client(pool_size=1)
        async with client, anyio.create_task_group() as tg:
            tg.start_soon(one, client)
            with anyio.fail_after(5):
                while len(server.requests) < 1:
                    await anyio.lowlevel.checkpoint()
            tg.start_soon(one, client)
            for _ in range(20):  # let the second reach the wait for a connection
                await anyio.lowlevel.checkpoint()
            await client.aclose()
        assert [type(e) for e in errors] == [ClientClosedError] * 2
        assert not any(e.is_retryable() for e in errors if hasattr(e, "is_retryable"))
        never.set()
