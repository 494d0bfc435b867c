"""Streams end to end: chunks, helpers, stats, and the cleanup contract — leaving
the block for any reason ends the exchange at once, the server sees it, the pool
and the permit are clean, and the next request succeeds. Both backends; HTTP/1.1,
h2c and h2 over TLS."""

from __future__ import annotations

import anyio
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ConnectionOptions,
    IncompleteStreamError,
    Message,
    Provider,
    RateLimitError,
    ReadTimeoutError,
    RemoteProtocolError,
    ResponseDecodeError,
    Role,
    ServerError,
)
from ailib_sc.testing import FakeProviderServer

from .conftest import Served, assert_clean

pytestmark = pytest.mark.anyio

REQ = ChatCompletionRequest(
    model="gpt-4o-mini", messages=[Message(role=Role.USER, content="Hello")]
)
TEXT = "Hello! How can I assist you today?"


# Every stream test runs under a client-wide max_concurrency, so that a permit
# not given back (on any path: end, break, error, cancellation) fails it.
PERMITS = 4


async def _outcome(served: Served, count: int = 1) -> object:
    await served.server.wait_for_stream_outcomes(count)
    return served.server.stream_outcomes[count - 1]


def _ended_early(served: Served, outcome: object) -> bool:
    if served.http_version == "HTTP/2":
        return bool(outcome.client_reset)  # type: ignore[attr-defined]
    return bool(outcome.client_closed)  # type: ignore[attr-defined]


async def test_full_stream(served: Served) -> None:
    async with served.client(max_concurrency=PERMITS) as client:
        async with client.chat_completion_stream(REQ) as stream:
            assert stream.http_version == served.http_version
            chunks = [chunk async for chunk in stream]
        texts = [c.choices[0].delta.content for c in chunks if c.choices]
        assert "".join(t or "" for t in texts) == TEXT
        assert chunks[0].choices[0].delta.role is Role.ASSISTANT
        assert chunks[-1].choices == []  # the usage-only chunk
        assert stream.usage is not None
        assert (stream.usage.prompt_tokens, stream.usage.total_tokens) == (19, 29)
        assert stream.finish_reason == "stop"
        assert stream.cancelled is False
        final = await stream.final()
        assert final.first_text() == TEXT
        assert final.usage == stream.usage
        stats = stream.stats
        assert stats is not None
        assert stats.chunks == len(chunks)
        assert stats.http_version == served.http_version
        assert stats.request_id is not None
        assert stats.request_id.startswith("req_")
        assert stats.time_to_headers is not None
        assert stats.time_to_first_token is not None
        assert stats.time_to_headers <= stats.time_to_first_token <= stats.latency
        assert stats.max_gap is not None
        assert stats.mean_gap is not None
        assert stats.mean_gap <= stats.max_gap
        assert_clean(client, PERMITS)
        outcome = await _outcome(served)
        assert outcome.completed  # type: ignore[attr-defined]
        body = served.server.requests[0].json()
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        # The connection is reused afterwards.
        assert (await client.chat_completion(REQ)).first_text() == TEXT
    assert served.server.connections_opened == 1


async def test_text_and_final_inside_the_block(h2_server: Served) -> None:
    h2_server.server.script_stream(text="one two three four")
    async with h2_server.client(max_concurrency=PERMITS) as client:
        async with client.chat_completion_stream(REQ) as stream:
            first = [t async for t in stream.text()][:2]
        assert "".join(first) in "one two three four"
        h2_server.server.script_stream(text="alpha beta")
        async with client.chat_completion_stream(REQ) as stream:
            final = await stream.final()
        assert final.first_text() == "alpha beta"
        assert final.choices[0].finish_reason == "stop"
        assert final.stats is not None
        assert final.stats.chunks == stream.stats.chunks  # type: ignore[union-attr]


async def test_tool_call_stream_assembles(h1_server: Served) -> None:
    h1_server.server.script_stream(
        tool_call=("get_weather", '{"location": "Paris, FR"}')
    )
    async with h1_server.client(max_concurrency=PERMITS) as client:
        async with client.chat_completion_stream(REQ) as stream:
            final = await stream.final()
    (call,) = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"location": "Paris, FR"}'
    assert call.id.startswith("call_")
    assert final.choices[0].finish_reason == "tool_calls"


async def test_break_ends_exchange_and_pool_is_clean(served: Served) -> None:
    served.server.script_stream(chunks=50, delay=0.01)
    async with served.client(max_concurrency=PERMITS) as client:
        async with client.chat_completion_stream(REQ) as stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
        outcome = await _outcome(served)
        assert _ended_early(served, outcome)
        assert not outcome.completed  # type: ignore[attr-defined]
        assert stream.partial.first_text() != ""
        assert stream.finish_reason is None
        assert_clean(client, PERMITS)
        with pytest.raises(IncompleteStreamError) as info:
            await stream.final()
        assert info.value.partial is not None
        assert (await client.chat_completion(REQ)).first_text() == TEXT
    expected = 1 if served.http_version == "HTTP/2" else 2
    assert served.server.connections_opened == expected


async def test_exception_in_loop_body_propagates_and_cleans(served: Served) -> None:
    served.server.script_stream(chunks=50, delay=0.01)
    async with served.client(max_concurrency=PERMITS) as client:
        with pytest.raises(KeyError):
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    raise KeyError("mine")
        assert _ended_early(served, await _outcome(served))
        assert_clean(client, PERMITS)
        assert stream.cancelled is False


async def test_cancel_from_another_task(served: Served) -> None:
    served.server.script_stream(chunks=200, delay=0.01)
    seen: list[str] = []
    async with served.client(max_concurrency=1) as client:
        async with client.chat_completion_stream_with_cancel(REQ) as (stream, handle):
            third = anyio.Event()

            async def watchdog() -> None:
                await third.wait()
                handle.cancel()
                handle.cancel()  # idempotent

            async with anyio.create_task_group() as tg:
                tg.start_soon(watchdog)
                async for text in stream.text():
                    seen.append(text)
                    if len(seen) == 3:
                        third.set()
        assert handle.cancelled
        assert stream.cancelled
        assert stream.partial.first_text() == "".join(seen)
        assert 3 <= len(seen) < 200
        assert _ended_early(served, await _outcome(served))
        assert_clean(client, 1)
        # The single max_concurrency permit was released.
        assert (await client.chat_completion(REQ)).first_text() == TEXT


async def test_outer_cancellation_mid_body(served: Served) -> None:
    served.server.script_stream(chunks=200, delay=0.01)
    async with served.client(max_concurrency=PERMITS) as client:
        with anyio.CancelScope() as scope:
            async with client.chat_completion_stream(REQ) as stream:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        scope.cancel()
        assert scope.cancelled_caught
        assert stream.cancelled is False
        assert _ended_early(served, await _outcome(served))
        assert_clean(client, PERMITS)
        assert (await client.chat_completion(REQ)).first_text() == TEXT


async def test_cancel_while_awaiting_headers(served: Served) -> None:
    release = anyio.Event()
    served.server.script_stream(hold_until=release)
    async with served.client(max_concurrency=PERMITS) as client:
        stream = client.chat_completion_stream(REQ)

        async def cancel_when_sent() -> None:
            await served.server.wait_for_requests(1)
            stream.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when_sent)
            async with stream:
                chunks = [c async for c in stream]
        assert chunks == []
        assert stream.cancelled
        assert_clean(client, PERMITS)
        if served.http_version == "HTTP/2":
            await served.server.wait_for_resets(1)
        release.set()
        assert (await client.chat_completion(REQ)).first_text() == TEXT


async def test_cancel_before_entering(h2_server: Served) -> None:
    async with h2_server.client(max_concurrency=PERMITS) as client:
        stream = client.chat_completion_stream(REQ)
        stream.cancel()
        async with stream:
            assert [c async for c in stream] == []
        assert stream.cancelled
        assert h2_server.server.requests == []


async def test_cancel_while_connecting(anyio_backend: str) -> None:
    # A TCP peer that never answers the TLS handshake: the client is connecting.
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    accepted = anyio.Event()

    async def hold(conn: anyio.abc.SocketStream) -> None:
        accepted.set()
        async with conn:
            await anyio.sleep_forever()

    provider = Provider.custom("silent", f"https://127.0.0.1:{port}/v1")
    async with anyio.create_task_group() as server_tg:
        server_tg.start_soon(listener.serve, hold)
        options = ConnectionOptions(max_concurrency=PERMITS)
        async with AiClient(provider, options) as client:
            stream = client.chat_completion_stream(REQ)

            async def cancel_when_accepted() -> None:
                await accepted.wait()
                stream.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_when_accepted)
                async with stream:
                    assert [c async for c in stream] == []
            assert stream.cancelled
            assert client.statistics().connections == 0
            assert client.statistics().free_permits == PERMITS
        server_tg.cancel_scope.cancel()
    await listener.aclose()


async def test_cancel_while_sending_a_large_body(anyio_backend: str) -> None:
    # A peer that accepts and never reads: a 32 MiB body blocks in send.
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    accepted = anyio.Event()

    async def hold(conn: anyio.abc.SocketStream) -> None:
        accepted.set()
        async with conn:
            await anyio.sleep_forever()

    big = ChatCompletionRequest(
        model="m", messages=[Message(role=Role.USER, content="x" * (32 << 20))]
    )
    provider = Provider.custom("deaf", f"http://127.0.0.1:{port}/v1")
    async with anyio.create_task_group() as server_tg:
        server_tg.start_soon(listener.serve, hold)
        options = ConnectionOptions(http2=False, max_concurrency=PERMITS)
        async with AiClient(provider, options) as client:
            stream = client.chat_completion_stream(big)

            async def cancel_soon() -> None:
                await accepted.wait()
                await anyio.wait_all_tasks_blocked()
                stream.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_soon)
                async with stream:
                    pass
            assert stream.cancelled
            stats = client.statistics()
            assert (stats.connections, stats.in_use) == (0, 0)
            assert stats.free_permits == PERMITS
        server_tg.cancel_scope.cancel()
    await listener.aclose()


async def test_cleanup_survives_cancellation_during_close(served: Served) -> None:
    served.server.script_stream(chunks=100, delay=0.01)
    async with served.client(max_concurrency=PERMITS) as client:
        with anyio.CancelScope() as scope:
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    scope.cancel()  # cancelled while we are about to close
                    break
        assert _ended_early(served, await _outcome(served))
        assert_clean(client, PERMITS)
        assert (await client.chat_completion(REQ)).first_text() == TEXT


async def test_stall_raises_read_timeout_with_partial(served: Served) -> None:
    served.server.script_stream(chunks=20, stall_after=4)
    async with served.client(read_timeout=0.3, max_concurrency=PERMITS) as client:
        with pytest.raises(ReadTimeoutError) as info:
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    pass
        partial = info.value.partial
        assert partial is not None
        assert partial.first_text() != ""
        assert stream.error is info.value
        assert_clean(client, PERMITS)
        assert _ended_early(served, await _outcome(served))
        assert (await client.chat_completion(REQ)).first_text() == TEXT


async def test_long_healthy_stream_never_times_out(h2_server: Served) -> None:
    # 25 gaps of 0.05 s: 1.25 s in all, each gap well under read_timeout.
    h2_server.server.script_stream(chunks=25, delay=0.05)
    async with h2_server.client(read_timeout=0.5, max_concurrency=PERMITS) as client:
        async with client.chat_completion_stream(REQ) as stream:
            final = await stream.final()
    assert final.choices[0].finish_reason == "stop"
    assert stream.stats is not None
    assert stream.stats.latency > 0.5


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"error_at": 3}, ServerError),
        ({"malformed_at": 3}, ResponseDecodeError),
        ({"disconnect_after": 3}, RemoteProtocolError),
    ],
)
async def test_faults_mid_stream_carry_partial(
    served: Served, fault: dict[str, int], error: type[Exception]
) -> None:
    served.server.script_stream(chunks=10, **fault)
    async with served.client(max_concurrency=PERMITS) as client:
        with pytest.raises(error) as info:
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    pass
        partial = info.value.partial  # type: ignore[attr-defined]
        assert partial is not None
        assert partial.choices[0].message.role is Role.ASSISTANT
        assert stream.partial.first_text() == partial.first_text()
        assert_clean(client, PERMITS)
        assert (await client.chat_completion(REQ)).first_text() == TEXT


async def test_server_reset_mid_stream_keeps_connection(h2_server: Served) -> None:
    h2_server.server.script_stream(chunks=10, reset_after=3)
    async with h2_server.client(max_concurrency=PERMITS) as client:
        with pytest.raises(RemoteProtocolError, match="reset the stream"):
            async with client.chat_completion_stream(REQ) as stream:
                async for _ in stream:
                    pass
        assert (await client.chat_completion(REQ)).first_text() == TEXT
    assert h2_server.server.connections_opened == 1


async def test_error_status_raises_on_entry(served: Served) -> None:
    served.server.script(429, headers={"x-request-id": "req_limit", "retry-after": "7"})
    async with served.client(max_concurrency=PERMITS) as client:
        with pytest.raises(RateLimitError) as info:
            async with client.chat_completion_stream(REQ):
                pytest.fail("the block must not run")
        assert info.value.request_id == "req_limit"
        assert info.value.retry_after == 7.0
        assert_clean(client, PERMITS)


async def test_permit_is_held_for_the_stream_life(h2_server: Served) -> None:
    h2_server.server.script_stream(chunks=5)
    done = anyio.Event()
    async with h2_server.client(max_concurrency=1) as client:

        async def other() -> None:
            await client.chat_completion(REQ)
            done.set()

        async with anyio.create_task_group() as tg:
            async with client.chat_completion_stream(REQ) as stream:
                tg.start_soon(other)
                await anyio.wait_all_tasks_blocked()
                assert len(h2_server.server.requests) == 1  # `other` is queued
                async for _ in stream:
                    pass
                await anyio.wait_all_tasks_blocked()
                assert not done.is_set()  # still inside the block: permit held
            await done.wait()
    assert len(h2_server.server.requests) == 2


async def test_100_streams_on_one_connection_half_cancelled(anyio_backend: str) -> None:
    async with FakeProviderServer() as server:
        server.script_stream(chunks=30, delay=0.01, times=100)
        provider = Provider.custom("fake", server.base_url)
        results: dict[int, str] = {}
        cancelled: dict[int, bool] = {}
        options = ConnectionOptions(http2=True, max_concurrency=100)
        async with AiClient(provider, options) as client:

            async def one(i: int) -> None:
                async with client.chat_completion_stream(REQ) as stream:
                    n = 0
                    async for _chunk in stream:
                        n += 1
                        if i % 2 and n == 5:
                            stream.cancel()  # the block ends at the next await
                cancelled[i] = stream.cancelled
                if not stream.cancelled:
                    results[i] = (await stream.final()).first_text()

            async with anyio.create_task_group() as tg:
                for i in range(100):
                    tg.start_soon(one, i)
            stats = client.statistics()
        await server.wait_for_stream_outcomes(100)
    assert server.connections_opened == 1
    assert (stats.http2_connections, stats.active_streams) == (1, 0)
    assert stats.free_permits == 100
    assert sorted(i for i, c in cancelled.items() if c) == list(range(1, 100, 2))
    assert sorted(results) == list(range(0, 100, 2))
    expected = results[0]
    assert expected.startswith(TEXT.split()[0])
    assert all(text == expected for text in results.values())
    outcomes = server.stream_outcomes
    assert sum(o.completed for o in outcomes) == 50
    assert sum(o.client_reset for o in outcomes) == 50
