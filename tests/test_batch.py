"""Batches on real servers: one result per input in input order, failures in their
own slots, cancellation that keeps what finished, as-completed streaming with
bounded memory.

Order tests run against ``FakeProviderServer(echo=True)``: request ``i`` says
``"item i"`` and its reply says ``"echo: item i"``, so a result attached to the
wrong slot (or index) fails the test, not just a result missing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from ailib_sc import (
    AiLibError,
    BadRequestError,
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
from ailib_sc.testing import FakeProviderServer

from .conftest import API_KEY, Served, assert_clean

pytestmark = pytest.mark.anyio


def req(i: int, **kw: object) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="gpt-4o-mini",
        messages=[Message(role=Role.USER, content=f"item {i}")],
        **kw,  # type: ignore[arg-type]
    )


def echo(i: int) -> str:
    """What ``FakeProviderServer(echo=True)`` answers to ``req(i)``."""
    return f"echo: item {i}"


def text_of(result: object) -> str:
    assert isinstance(result, ChatCompletionResponse), result
    return result.first_text()


@pytest.fixture
async def echoing_h2(anyio_backend: str) -> AsyncIterator[Served]:
    async with FakeProviderServer(api_key=API_KEY, echo=True) as server:
        yield Served(server, "h2c", "HTTP/2")


async def test_batch_of_500_keeps_order_and_isolates_failures(
    echoing: Served,
) -> None:
    # Every 10th item is invalid and fails alone, before any I/O.
    reqs = [req(i, temperature=9.0 if i % 10 == 0 else None) for i in range(500)]
    async with echoing.client(max_concurrency=64) as client:
        results = await client.chat_completion_batch(reqs, concurrency=32)
        assert_clean(client, 64)
    assert isinstance(results, BatchResults)
    assert len(results) == 500
    for i, r in enumerate(results):
        if i % 10 == 0:
            assert isinstance(r, InvalidRequestError), i
            assert "temperature" in r.message
            assert r.attempts == 0
        else:
            assert text_of(r) == echo(i), i
    bodies = {r.json()["messages"][0]["content"] for r in echoing.server.requests}
    assert bodies == {f"item {i}" for i in range(500) if i % 10}
    assert len(echoing.server.requests) == 450
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
    assert echoing.server.max_concurrent_requests <= 32


async def test_server_failures_stay_in_their_slots(echoing_h2: Served) -> None:
    echoing_h2.server.script(500, times=7)
    async with echoing_h2.client(max_concurrency=8) as client:
        results = await client.chat_completion_batch([req(i) for i in range(40)])
        assert_clean(client, 8)
    assert len(results) == 40
    errors = [r for r in results if isinstance(r, AiLibError)]
    assert len(errors) == 7
    assert all(isinstance(e, ServerError) and e.status == 500 for e in errors)
    for i, r in enumerate(results):
        if not isinstance(r, AiLibError):
            assert text_of(r) == echo(i), i
    assert results.statistics is not None
    assert results.statistics.failed == 7


async def test_batch_retries_per_item(echoing_h2: Served) -> None:
    echoing_h2.server.script(503, times=5)
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02)
    async with echoing_h2.client(max_concurrency=4) as client:
        results = await client.chat_completion_batch(
            [req(i) for i in range(20)], concurrency=4, retry=policy
        )
        assert_clean(client, 4)
    # A retry re-sends its own item's request: each answer is still its own.
    assert [text_of(r) for r in results] == [echo(i) for i in range(20)]
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


async def test_smart_batch_keeps_order_through_failures_and_retries(
    echoing: Served,
) -> None:
    # Retryable failures (503, 429) and final ones (400) arrive in whatever order
    # the requests do, interleaved with successes and with items that fail
    # locally (every 7th is invalid). Each 503/429 costs its item one retry.
    server = echoing.server
    server.script(503, times=4)
    server.script(400, times=2)
    server.script(429, times=4)
    policy = RetryPolicy(max_attempts=20, base_delay=0.001, max_delay=0.005)
    reqs = [req(i, temperature=9.0 if i % 7 == 0 else None) for i in range(60)]
    async with echoing.client(max_concurrency=8) as client:
        results = await client.chat_completion_batch_smart(
            reqs, initial_concurrency=4, max_concurrency=8, retry=policy
        )
        assert_clean(client, 8)
    assert len(results) == 60
    rejected = []
    for i, r in enumerate(results):
        if i % 7 == 0:
            assert isinstance(r, InvalidRequestError), (i, r)
            assert r.attempts == 0
        elif isinstance(r, BadRequestError):
            assert r.status == 400
            rejected.append(i)
        else:
            assert text_of(r) == echo(i), i
    assert len(rejected) == 2
    s = results.statistics
    assert s is not None
    assert (s.requests, s.succeeded, s.failed) == (60, 60 - 9 - 2, 9 + 2)
    assert (s.retries, s.throttled) == (8, 8)
    assert s.attempts == len(server.requests) == 60 - 9 + 8
    # Every retry went out under its item's request id, with its item's body.
    by_id: dict[str, set[str]] = {}
    for sent in server.requests:
        rid = sent.header("x-client-request-id")
        assert rid is not None
        by_id.setdefault(rid, set()).add(sent.json()["messages"][0]["content"])
    assert len(by_id) == 60 - 9
    assert all(len(bodies) == 1 for bodies in by_id.values())
    assert sum(server.processed.values()) == 60 - 9 + 8


async def test_cancelling_a_batch_keeps_finished_results(echoing: Served) -> None:
    server = echoing.server
    release = anyio.Event()
    # The first 10 requests are answered at once; the rest wait forever.
    server.script(200, times=10)
    server.script(200, times=100, hold_until=release)
    slots: list[ChatCompletionResponse | AiLibError | None] = []
    async with echoing.client(max_concurrency=20) as client:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def run() -> None:
                    await client.chat_completion_batch(
                        [req(i) for i in range(30)], concurrency=15, results=slots
                    )

                tg.start_soon(run)
                await server.wait_for_requests(25)
                scope.cancel()
        assert_clean(client, 20)
        release.set()
    assert len(slots) == 30
    done = {i: text_of(r) for i, r in enumerate(slots) if r is not None}
    assert done == {i: echo(i) for i in done}
    assert len(done) == 10
    # Exactly the items whose requests were answered at once finished.
    answered = [r.json()["messages"][0]["content"] for r in server.requests[:10]]
    assert sorted(f"item {i}" for i in done) == sorted(answered)


async def test_bad_concurrency(h1_server: Served) -> None:
    async with h1_server.client() as client:
        with pytest.raises(ConfigurationError) as info:
            await client.chat_completion_batch([req(0)], concurrency=0)
        assert str(info.value) == (
            "concurrency must be an int >= 1 or None (the default, 16), got 0"
        )
        with pytest.raises(ConfigurationError, match="max_concurrency must be"):
            await client.chat_completion_batch_smart([req(0)], max_concurrency=0)
        with pytest.raises(ConfigurationError) as info:
            await client.chat_completion_batch_smart(
                [req(0)], initial_concurrency=9, max_concurrency=4
            )
        assert str(info.value) == (
            "initial_concurrency must be <= max_concurrency (4), got 9; lower "
            "initial_concurrency or raise max_concurrency"
        )
        with pytest.raises(ConfigurationError) as info:
            client.chat_completion_batch_stream_smart(
                [req(0)], initial_concurrency=5, max_concurrency=4
            )
        assert str(info.value).startswith(
            "initial_concurrency must be <= max_concurrency (4), got 5;"
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


async def test_smart_initial_concurrency_defaults_to_8_or_the_maximum(
    h2_server: Served,
) -> None:
    # A max_concurrency below 8 used to be refused unless initial_concurrency
    # was given too (the default 8 was above it).
    async with h2_server.client() as client:
        low = await client.chat_completion_batch_smart([req(0)], max_concurrency=4)
        high = await client.chat_completion_batch_smart([req(0)], max_concurrency=9)
        async with client.chat_completion_batch_stream_smart(
            [req(0)], max_concurrency=2
        ) as stream:
            assert stream.concurrency == 2
            assert [i async for i, _ in stream] == [0]
    assert low.statistics is not None
    assert high.statistics is not None
    assert low.statistics.initial_concurrency == 4
    assert high.statistics.initial_concurrency == 8
    assert stream.statistics().initial_concurrency == 2


async def test_empty_batch(h1_server: Served) -> None:
    async with h1_server.client() as client:
        results = await client.chat_completion_batch([])
    assert results == []
    assert results.statistics is not None
    assert results.statistics.requests == 0


async def test_batch_stream_yields_each_index_once(echoing: Served) -> None:
    async with echoing.client(max_concurrency=8) as client:
        seen: dict[int, str] = {}
        async with client.chat_completion_batch_stream(
            [req(i) for i in range(100)], concurrency=8
        ) as results:
            async for index, result in results:
                assert index not in seen
                seen[index] = text_of(result)
        assert_clean(client, 8)
    assert seen == {i: echo(i) for i in range(100)}


async def test_batch_stream_ties_indices_through_failures(echoing_h2: Served) -> None:
    # An async source, items that fail locally, server failures and retries.
    echoing_h2.server.script(503, times=3)
    echoing_h2.server.script(500, times=1)

    async def source() -> AsyncIterator[ChatCompletionRequest]:
        for i in range(30):
            yield req(i, temperature=9.0 if i % 5 == 0 else None)

    policy = RetryPolicy(max_attempts=1)
    async with echoing_h2.client(max_concurrency=4, retry=policy) as client:
        async with client.chat_completion_batch_stream(
            source(), concurrency=4
        ) as results:
            pairs = [pair async for pair in results]
        assert_clean(client, 4)
    got = dict(pairs)
    assert sorted(index for index, _ in pairs) == list(range(30))  # each index once
    failed = 0
    for i, r in got.items():
        if i % 5 == 0:
            assert isinstance(r, InvalidRequestError), i
        elif isinstance(r, ServerError):
            failed += 1
        else:
            assert text_of(r) == echo(i), i
    assert failed == 4


async def test_batch_stream_cancelled_midway_keeps_what_it_yielded(
    echoing: Served,
) -> None:
    release = anyio.Event()
    echoing.server.script(200, times=6)
    echoing.server.script(200, times=100, hold_until=release)
    got: list[tuple[int, str]] = []
    async with echoing.client(max_concurrency=4) as client:
        async with client.chat_completion_batch_stream(
            [req(i) for i in range(20)], concurrency=4
        ) as results:
            async for index, result in results:
                got.append((index, text_of(result)))
                if len(got) == 6:
                    break
        assert_clean(client, 4)
        release.set()
    assert got == [(i, echo(i)) for i, _ in got]
    assert len({i for i, _ in got}) == 6


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


async def test_smart_batch_stream_ties_indices_through_failures_and_retries(
    echoing: Served,
) -> None:
    # The smart batch's mix (retryable 503/429, final 400, local rejections)
    # as completed results: every index once, each with its own item's result,
    # and the same statistics the list form reports.
    server = echoing.server
    server.script(503, times=4)
    server.script(400, times=2)
    server.script(429, times=4)
    policy = RetryPolicy(max_attempts=20, base_delay=0.001, max_delay=0.005)

    async def source() -> AsyncIterator[ChatCompletionRequest]:
        for i in range(60):
            yield req(i, temperature=9.0 if i % 7 == 0 else None)

    got: dict[int, object] = {}
    async with echoing.client(max_concurrency=8) as client:
        async with client.chat_completion_batch_stream_smart(
            source(), initial_concurrency=4, max_concurrency=8, retry=policy
        ) as results:
            async for index, result in results:
                assert index not in got
                got[index] = result
        assert_clean(client, 8)
    assert sorted(got) == list(range(60))
    rejected = 0
    for i, r in got.items():
        if i % 7 == 0:
            assert isinstance(r, InvalidRequestError), (i, r)
            assert r.attempts == 0
        elif isinstance(r, BadRequestError):
            rejected += 1
        else:
            assert text_of(r) == echo(i), i
    assert rejected == 2
    s = results.statistics()
    assert (s.requests, s.succeeded, s.failed) == (60, 60 - 9 - 2, 9 + 2)
    assert (s.retries, s.throttled) == (8, 8)
    assert s.attempts == len(server.requests) == 60 - 9 + 8
    assert s.initial_concurrency == 4
    assert 1 <= s.final_concurrency <= s.peak_concurrency <= 8
    assert results.concurrency == s.final_concurrency


async def test_smart_batch_stream_memory_is_bounded_by_the_maximum(
    h2_server: Served,
) -> None:
    pulled = 0

    async def source() -> AsyncIterator[ChatCompletionRequest]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield req(i)

    async with h2_server.client() as client:
        async with client.chat_completion_batch_stream_smart(
            source(), initial_concurrency=2, max_concurrency=4
        ) as results:
            taken = 0
            async for _index, _result in results:
                taken += 1
                await anyio.wait_all_tasks_blocked()
                # Read and waiting for a permit or in flight (4) + waiting to
                # be taken (4) + the one just taken.
                assert pulled - taken <= 9
                if taken == 50:
                    break
        stats = client.statistics()
    assert pulled < 70
    assert (stats.in_use, stats.active_streams) == (0, 0)


async def test_batch_stream_left_by_an_outer_cancellation_closes_its_channel(
    h2_server: Served,
) -> None:
    # Leaving the block because an outer scope was cancelled never reached the
    # channel's close: "Unclosed MemoryObjectReceiveStream" (an error here).
    never = anyio.Event()
    h2_server.server.script(200, hold_until=never, times=10)
    async with h2_server.client() as client:
        with anyio.CancelScope() as scope:
            async with client.chat_completion_batch_stream(
                [req(i) for i in range(4)], concurrency=2
            ) as results:
                await h2_server.server.wait_for_requests(2)
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
        assert (results.submitted, results.completed) == (2, 0)
        with pytest.raises(StopAsyncIteration):
            await results.__anext__()
        stats = client.statistics()
    never.set()
    assert (stats.in_use, stats.active_streams) == (0, 0)


async def test_batch_stream_reports_input_failure_after_results(
    h1_server: Served,
) -> None:
    async def source() -> AsyncIterator[ChatCompletionRequest]:
        for i in range(5):
            yield req(i)
        raise ValueError("the input file is corrupt")

    async with h1_server.client(max_concurrency=2) as client:
        got = []
        with pytest.raises(ValueError, match="corrupt"):
            async with client.chat_completion_batch_stream(
                source(), concurrency=2
            ) as rs:
                async for index, _ in rs:
                    got.append(index)
        assert_clean(client, 2)
    assert sorted(got) == [0, 1, 2, 3, 4]


async def test_batch_stream_body_exception_propagates_unwrapped(
    h1_server: Served,
) -> None:
    async with h1_server.client(max_concurrency=4) as client:
        with pytest.raises(KeyError):
            async with client.chat_completion_batch_stream(
                [req(i) for i in range(50)], concurrency=4
            ) as results:
                async for _ in results:
                    raise KeyError("mine")
        assert_clean(client, 4)


async def test_batch_items_honour_the_attempt_timeout(h2_server: Served) -> None:
    release = anyio.Event()
    h2_server.server.script(200, hold_until=release)
    policy = RetryPolicy(max_attempts=1, attempt_timeout=0.2)
    async with h2_server.client(max_concurrency=2) as client:
        results = await client.chat_completion_batch(
            [req(0), req(1)], concurrency=1, retry=policy
        )
        assert_clean(client, 2)
        release.set()
    first, second = results
    assert isinstance(first, TransportTimeoutError)
    assert "attempt_timeout" in first.message
    assert first.attempts == 1
    assert isinstance(second, ChatCompletionResponse)
