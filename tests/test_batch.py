"""Batches on real servers: one result per input in input order, failures in their
own slots, cancellation that keeps what finished, as-completed streaming with
bounded memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from ailib_sc import (
    AiLibError,
    BatchResults,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ConfigurationError,
    InvalidRequestError,
    Message,
    RetryPolicy,
    Role,
    ServerError,
    TransportTimeoutError,
)

from .conftest import Served

pytestmark = pytest.mark.anyio

TEXT = "Hello! How can I assist you today?"


def req(i: int, **kw: object) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="gpt-4o-mini",
        messages=[Message(role=Role.USER, content=f"item {i}")],
        **kw,  # type: ignore[arg-type]
    )


async def test_batch_of_500_keeps_order_and_isolates_failures(served: Served) -> None:
    # Every 10th item is invalid and fails alone, before any I/O.
    reqs = [req(i, temperature=9.0 if i % 10 == 0 else None) for i in range(500)]
    async with served.client() as client:
        results = await client.chat_completion_batch(reqs, concurrency=32)
        stats = client.statistics()
    assert isinstance(results, BatchResults)
    assert len(results) == 500
    for i, r in enumerate(results):
        if i % 10 == 0:
            assert isinstance(r, InvalidRequestError), i
            assert "temperature" in r.message
            assert r.attempts == 0
        else:
            assert isinstance(r, ChatCompletionResponse), (i, r)
            assert r.first_text() == TEXT
    bodies = {r.json()["messages"][0]["content"] for r in served.server.requests}
    assert bodies == {f"item {i}" for i in range(500) if i % 10}
    assert len(served.server.requests) == 450
    s = results.statistics
    assert s is not None
    assert (s.requests, s.succeeded, s.failed, s.attempts, s.retries) == (
        500,
        450,
        50,
        450,
        0,
    )
    assert (s.initial_concurrency, s.final_concurrency) == (32, 32)
    assert served.server.max_concurrent_requests <= 32
    assert (stats.in_use, stats.active_streams) == (0, 0)


async def test_server_failures_stay_in_their_slots(h2_server: Served) -> None:
    h2_server.server.script(500, times=7)
    async with h2_server.client() as client:
        results = await client.chat_completion_batch([req(i) for i in range(40)])
    errors = [r for r in results if isinstance(r, AiLibError)]
    assert len(results) == 40
    assert len(errors) == 7
    assert all(isinstance(e, ServerError) and e.status == 500 for e in errors)
    assert results.statistics is not None
    assert results.statistics.failed == 7


async def test_batch_retries_per_item(h2_server: Served) -> None:
    h2_server.server.script(503, times=5)
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02)
    async with h2_server.client() as client:
        results = await client.chat_completion_batch(
            [req(i) for i in range(20)], concurrency=4, retry=policy
        )
    assert all(isinstance(r, ChatCompletionResponse) for r in results)
    s = results.statistics
    assert s is not None
    assert (s.attempts, s.retries, s.succeeded) == (25, 5, 20)
    retried = [
        r
        for r in results
        if isinstance(r, ChatCompletionResponse)
        and r.stats is not None
        and r.stats.attempts > 1
    ]
    assert sum(r.stats.attempts - 1 for r in retried if r.stats) == 5


async def test_cancelling_a_batch_keeps_finished_results(served: Served) -> None:
    release = anyio.Event()
    # The first 10 requests are answered at once; the rest wait forever.
    served.server.script(200, times=10)
    served.server.script(200, times=100, hold_until=release)
    slots: list[ChatCompletionResponse | AiLibError | None] = []
    async with served.client() as client:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def run() -> None:
                    await client.chat_completion_batch(
                        [req(i) for i in range(30)], concurrency=15, results=slots
                    )

                tg.start_soon(run)
                await served.server.wait_for_requests(25)
                scope.cancel()
        stats = client.statistics()
        assert (stats.in_use, stats.active_streams) == (0, 0)
        release.set()
    assert len(slots) == 30
    done = [s for s in slots if s is not None]
    assert len(done) == 10
    assert all(isinstance(s, ChatCompletionResponse) for s in done)


async def test_bad_concurrency(h1_server: Served) -> None:
    async with h1_server.client() as client:
        with pytest.raises(ConfigurationError) as info:
            await client.chat_completion_batch([req(0)], concurrency=0)
        assert str(info.value) == (
            "concurrency must be an int >= 1 or None (the default, 16), got 0"
        )
        with pytest.raises(ConfigurationError, match="max_concurrency must be"):
            await client.chat_completion_batch_smart([req(0)], max_concurrency=0)
        with pytest.raises(ConfigurationError, match=r"batch concurrency must be"):
            await client.chat_completion_batch_smart(
                [req(0)], initial_concurrency=9, max_concurrency=4
            )
        with pytest.raises(ConfigurationError, match="concurrency must be an int"):
            client.chat_completion_batch_stream([req(0)], concurrency=True)


async def test_concurrency_none_means_the_default(h2_server: Served) -> None:
    async with h2_server.client() as client:
        results = await client.chat_completion_batch(
            [req(i) for i in range(3)], concurrency=None
        )
        smart = await client.chat_completion_batch_smart(
            [req(0)], initial_concurrency=None, max_concurrency=None
        )
        async with client.chat_completion_batch_stream(
            [req(0)], concurrency=None
        ) as stream:
            streamed = [item async for item in stream]
    assert results.statistics is not None
    assert results.statistics.initial_concurrency == 16
    assert smart.statistics is not None
    assert smart.statistics.initial_concurrency == 8
    assert [i for i, _ in streamed] == [0]


async def test_empty_batch(h1_server: Served) -> None:
    async with h1_server.client() as client:
        results = await client.chat_completion_batch([])
    assert results == []
    assert results.statistics is not None
    assert results.statistics.requests == 0


async def test_batch_stream_yields_each_index_once(served: Served) -> None:
    async with served.client() as client:
        seen: dict[int, str] = {}
        async with client.chat_completion_batch_stream(
            [req(i) for i in range(100)], concurrency=8
        ) as results:
            async for index, result in results:
                assert index not in seen
                assert isinstance(result, ChatCompletionResponse)
                seen[index] = result.first_text()
    assert sorted(seen) == list(range(100))
    assert set(seen.values()) == {TEXT}


async def test_batch_stream_memory_is_bounded(h2_server: Served) -> None:
    pulled = 0

    async def source() -> AsyncIterator[ChatCompletionRequest]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield req(i)

    async with h2_server.client() as client:
        async with client.chat_completion_batch_stream(
            source(), concurrency=4
        ) as results:
            taken = 0
            async for _index, _result in results:
                taken += 1
                await anyio.wait_all_tasks_blocked()
                # In flight (4) + waiting to be taken (4) + the one just taken.
                assert pulled - taken <= 9
                if taken == 50:
                    break
        stats = client.statistics()
    assert pulled < 70  # leaving early stopped reading the input
    assert (stats.in_use, stats.active_streams) == (0, 0)


async def test_batch_stream_reports_input_failure_after_results(
    h1_server: Served,
) -> None:
    async def source() -> AsyncIterator[ChatCompletionRequest]:
        for i in range(5):
            yield req(i)
        raise ValueError("the input file is corrupt")

    async with h1_server.client() as client:
        got = []
        with pytest.raises(ValueError, match="corrupt"):
            async with client.chat_completion_batch_stream(
                source(), concurrency=2
            ) as rs:
                async for index, _ in rs:
                    got.append(index)
    assert sorted(got) == [0, 1, 2, 3, 4]


async def test_batch_stream_body_exception_propagates_unwrapped(
    h1_server: Served,
) -> None:
    async with h1_server.client() as client:
        with pytest.raises(KeyError):
            async with client.chat_completion_batch_stream(
                [req(i) for i in range(50)], concurrency=4
            ) as results:
                async for _ in results:
                    raise KeyError("mine")
        assert client.statistics().in_use == 0


async def test_batch_items_honour_the_attempt_timeout(h2_server: Served) -> None:
    release = anyio.Event()
    h2_server.server.script(200, hold_until=release)
    policy = RetryPolicy(max_attempts=1, attempt_timeout=0.2)
    async with h2_server.client() as client:
        results = await client.chat_completion_batch(
            [req(0), req(1)], concurrency=1, retry=policy
        )
        release.set()
    first, second = results
    assert isinstance(first, TransportTimeoutError)
    assert "attempt_timeout" in first.message
    assert first.attempts == 1
    assert isinstance(second, ChatCompletionResponse)
