"""Connection recycling never loses or duplicates a request: GOAWAY every 100
streams on HTTP/2, ``Connection: close`` every 100 responses on HTTP/1.1, refused
streams, idle connections closed by the server; and a smart batch against an
enforced rate limit."""

from __future__ import annotations

import anyio
import pytest

from ailib_sc import (
    AiClient,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ConnectionOptions,
    Message,
    Provider,
    RateLimitError,
    RequestRefusedError,
    RetryPolicy,
    Role,
)
from ailib_sc._policy import is_safe_to_retry
from ailib_sc.testing import FakeProviderServer

from ._clock import virtual_time

pytestmark = pytest.mark.anyio

TEXT = "Hello! How can I assist you today?"


def _all_idle_hung_up(client: AiClient) -> bool:
    pools = client._engine.transport._pools.values()
    return all(conn.server_hung_up() for pool in pools for conn, _ in pool.idle)


def req(i: int) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="gpt-4o-mini", messages=[Message(role=Role.USER, content=f"item {i}")]
    )


@pytest.mark.parametrize("http2", [True, False], ids=["h2c-goaway", "http1-close"])
async def test_1000_requests_through_recycling_lose_and_duplicate_nothing(
    anyio_backend: str, http2: bool
) -> None:
    kind = {"goaway_after": 100} if http2 else {"close_after": 100}
    async with FakeProviderServer(**kind) as server:  # type: ignore[arg-type]
        provider = Provider.custom("fake", server.base_url)
        async with AiClient(provider, ConnectionOptions(http2=http2)) as client:
            results = await client.chat_completion_batch(
                [req(i) for i in range(1000)], concurrency=32
            )
    failures = [
        (i, r)
        for i, r in enumerate(results)
        if not isinstance(r, ChatCompletionResponse)
    ]
    assert failures == []
    assert all(r.first_text() == TEXT for r in results)  # type: ignore[union-attr]
    assert server.processed_total == 1000
    assert len(server.processed) == 1000
    assert max(server.processed.values()) == 1
    assert server.connections_opened >= 10  # it really recycled: 100 per connection
    assert results.statistics is not None
    assert results.statistics.retries == 0  # re-routing is not a retry


async def test_refused_streams_are_resent_invisibly(anyio_backend: str) -> None:
    async with FakeProviderServer() as server:
        server.script_refuse(times=3)
        provider = Provider.custom("fake", server.base_url)
        async with AiClient(provider, ConnectionOptions(http2=True)) as client:
            resp = await client.chat_completion(req(0))
    assert resp.first_text() == TEXT
    assert resp.stats is not None
    assert resp.stats.attempts == 1
    assert server.processed_total == 1


@pytest.mark.parametrize("http2", [True, False], ids=["h2c", "http1"])
async def test_server_closing_idle_connections(anyio_backend: str, http2: bool) -> None:
    async with FakeProviderServer(idle_close=0.1) as server:
        provider = Provider.custom("fake", server.base_url)
        async with AiClient(provider, ConnectionOptions(http2=http2)) as client:
            await client.chat_completion(req(0))
            with anyio.fail_after(5):
                # The server's idle timer is the behaviour under test: poll until
                # its close reached our socket (the FIN, not just its counter).
                while server.open_connections or not _all_idle_hung_up(client):  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            resp = await client.chat_completion(req(1))
    assert resp.first_text() == TEXT
    assert server.processed_total == 2
    assert server.connections_opened == 2


@virtual_time()
async def test_smart_batch_settles_under_an_enforced_rate_limit(
    anyio_backend: object,
) -> None:
    # 6,000 requests per minute = 100/s, burst 20: 400 requests need ~4 s.
    # Server and client share the virtual clock, so no real time passes.
    async with FakeProviderServer(
        rate_limit_rpm=6000, rate_limit_burst=20, clock=anyio.current_time
    ) as server:
        provider = Provider.custom("fake", server.base_url, api_key="sk-batch")
        async with AiClient(provider, ConnectionOptions(http2=True)) as client:
            results = await client.chat_completion_batch_smart(
                [req(i) for i in range(400)], initial_concurrency=8, max_concurrency=64
            )
    assert all(isinstance(r, ChatCompletionResponse) for r in results)
    s = results.statistics
    assert s is not None
    assert (s.succeeded, s.attempts, s.retries) == (400, 400, 0)
    assert max(server.processed.values()) == 1
    # No request is ever rejected: once x-ratelimit-remaining-requests falls
    # to the concurrency, starts are spaced at 1.05x the refill interval.
    assert len(server.requests) == server.processed_total == 400
    assert s.throttled == 0
    # The bucket serves 20 at once, then 100/s: 380 more take 3.8 s at least;
    # pacing spaces the 400 starts by 10.5 ms at most: 4.2 s.
    assert 3.8 <= s.elapsed <= 400 * 0.0105
    assert 0 < s.rate_limit_wait <= 400 * 0.0105


@virtual_time()
async def test_plain_batch_under_rate_limit_reports_429s_in_slots(
    anyio_backend: object,
) -> None:
    # All 10 requests reach the bucket at the same virtual instant: 5 tokens,
    # none refilled (1 per second), so 5 succeed and 5 are told to wait 1 s.
    async with FakeProviderServer(
        rate_limit_rpm=60, rate_limit_burst=5, clock=anyio.current_time
    ) as server:
        provider = Provider.custom("fake", server.base_url, api_key="sk-plain")
        async with AiClient(provider, ConnectionOptions(http2=True)) as client:
            results = await client.chat_completion_batch([req(i) for i in range(10)])
    ok = [r for r in results if isinstance(r, ChatCompletionResponse)]
    limited = [r for r in results if isinstance(r, RateLimitError)]
    assert (len(ok), len(limited)) == (5, 5)
    assert [e.retry_after for e in limited] == [1.0] * 5
    assert server.processed_total == 5


async def test_goaway_every_3_streams_loses_nothing(anyio_backend: str) -> None:
    async with FakeProviderServer(goaway_after=3) as server:
        provider = Provider.custom("fake", server.base_url)
        async with AiClient(provider, ConnectionOptions(http2=True)) as client:
            results = await client.chat_completion_batch(
                [req(i) for i in range(300)], concurrency=64
            )
            stats = client.statistics()
    assert all(isinstance(r, ChatCompletionResponse) for r in results)
    assert server.processed_total == 300
    assert max(server.processed.values()) == 1
    assert stats.rerouted > 0


async def test_server_refusing_everything_gives_a_safe_error(
    anyio_backend: str,
) -> None:
    async with FakeProviderServer() as server:
        server.script_refuse(times=20)
        provider = Provider.custom("fake", server.base_url)
        async with AiClient(provider, ConnectionOptions(http2=True)) as client:
            with pytest.raises(RequestRefusedError, match="never processed") as info:
                await client.chat_completion(req(0))
            assert client.statistics().rerouted == 8
            # Safe to retry by any policy: the next attempt gets through.
            server.reset()
            resp = await client.chat_completion(req(1), retry=RetryPolicy(base_delay=0))
    assert info.value.is_retryable()
    assert is_safe_to_retry(info.value)
    assert resp.first_text() == TEXT
    assert server.processed_total == 1
