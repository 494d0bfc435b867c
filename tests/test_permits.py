"""The client-wide ``max_concurrency`` permits: taken per call (never per task),
held by a stream for its life, and always given back, on success, on every
error and on every cancellation. ``statistics().free_permits`` says how many
are free; every test here ends by checking that all are."""

from __future__ import annotations

import anyio
import pytest

from ailib_sc import (
    AiClient,
    AiLibError,
    ApiError,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ConnectError,
    ConnectionOptions,
    Message,
    Provider,
    RetryPolicy,
    Role,
    ServerError,
)

from .conftest import Served

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)
TEXT = "Hello! How can I assist you today?"


async def test_a_call_inside_a_stream_block_takes_its_own_permit(
    served: Served,
) -> None:
    async with served.client(max_concurrency=2) as client:
        assert client.statistics().free_permits == 2
        async with client.chat_completion_stream(REQ) as stream:
            assert client.statistics().free_permits == 1
            resp = await client.chat_completion(REQ)
            assert client.statistics().free_permits == 1
            text = "".join([t async for t in stream.text()])
        assert client.statistics().free_permits == 2
    assert (resp.first_text(), text) == (TEXT, TEXT)


async def test_two_streams_open_in_one_task(served: Served) -> None:
    async with served.client(max_concurrency=2) as client:
        async with (
            client.chat_completion_stream(REQ) as a,
            client.chat_completion_stream(REQ) as b,
        ):
            assert client.statistics().free_permits == 0
            texts = ["".join([t async for t in s.text()]) for s in (a, b)]
        assert client.statistics().free_permits == 2
    assert texts == [TEXT, TEXT]


@pytest.mark.parametrize("status", [400, 429, 500])
async def test_a_failed_call_gives_its_permit_back(
    h2_server: Served, status: int
) -> None:
    h2_server.server.script(status)
    async with h2_server.client(max_concurrency=1) as client:
        with pytest.raises(ApiError):
            await client.chat_completion(REQ)
        assert client.statistics().free_permits == 1
        assert (await client.chat_completion(REQ)).first_text() == TEXT


async def test_each_attempt_of_a_retried_call_holds_one_permit(
    h1_server: Served,
) -> None:
    h1_server.server.script(503, times=2)
    policy = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002)
    async with h1_server.client(max_concurrency=1, retry=policy) as client:
        resp = await client.chat_completion(REQ)
        assert client.statistics().free_permits == 1
    assert resp.stats is not None
    assert resp.stats.attempts == 3


async def test_a_call_cancelled_while_awaiting_headers_gives_it_back(
    served: Served,
) -> None:
    release = anyio.Event()
    served.server.script(200, hold_until=release)
    async with served.client(max_concurrency=1) as client:
        with anyio.CancelScope() as scope:

            async def cancel_when_sent() -> None:
                await served.server.wait_for_requests(1)
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_when_sent)
                await client.chat_completion(REQ)
        assert scope.cancelled_caught
        assert client.statistics().free_permits == 1
        release.set()
        assert (await client.chat_completion(REQ)).first_text() == TEXT


async def test_a_call_cancelled_while_waiting_for_a_permit_takes_none(
    h2_server: Served,
) -> None:
    async with h2_server.client(max_concurrency=1) as client:
        async with client.chat_completion_stream(REQ) as stream:
            with anyio.CancelScope() as scope:

                async def give_up() -> None:
                    await anyio.wait_all_tasks_blocked()
                    scope.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(give_up)
                    await client.chat_completion(REQ)  # waits for the permit
            assert scope.cancelled_caught
            assert client.statistics().free_permits == 0  # the stream's
            await stream.final()
        assert client.statistics().free_permits == 1
    assert len(h2_server.server.requests) == 1


async def test_a_transport_failure_gives_the_permit_back(anyio_backend: str) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now: connection refused
    provider = Provider.custom("gone", f"http://127.0.0.1:{port}/v1")
    options = ConnectionOptions(max_concurrency=1)
    async with AiClient(provider, options) as client:
        with pytest.raises(ConnectError):
            await client.chat_completion(REQ)
        with pytest.raises(ConnectError):
            async with client.chat_completion_stream(REQ):
                pass
        assert client.statistics().free_permits == 1


async def test_a_batch_with_failures_gives_every_permit_back(
    h2_server: Served,
) -> None:
    h2_server.server.script(500, times=4)
    reqs = [REQ] * 20
    async with h2_server.client(max_concurrency=3) as client:
        results = await client.chat_completion_batch(reqs, concurrency=10)
        assert client.statistics().free_permits == 3
    assert sum(isinstance(r, ServerError) for r in results) == 4
    assert sum(isinstance(r, ChatCompletionResponse) for r in results) == 16


async def test_a_batch_stream_cancelled_midway_gives_every_permit_back(
    h2_server: Served,
) -> None:
    release = anyio.Event()
    h2_server.server.script(200, hold_until=release, times=10)
    async with h2_server.client(max_concurrency=2) as client:
        async with client.chat_completion_batch_stream([REQ] * 10, concurrency=4):
            await h2_server.server.wait_for_requests(2)
            assert client.statistics().free_permits == 0
        # Leaving the block cancelled the items in flight.
        assert client.statistics().free_permits == 2
        release.set()


async def test_no_max_concurrency_reports_none(h2_server: Served) -> None:
    async with h2_server.client() as client:
        await client.chat_completion(REQ)
        assert client.statistics().free_permits is None


async def test_a_mid_stream_error_gives_the_permit_back(served: Served) -> None:
    served.server.script_stream(error_at=3)
    async with served.client(max_concurrency=1) as client:
        with pytest.raises(AiLibError):
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    pass
        assert client.statistics().free_permits == 1
